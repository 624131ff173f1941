"""Stopping cleanly when the scheduler wants the resources back, or the user presses Ctrl-C.

The requeue signal (`DISTGAN_REQUEUE_SIGNAL`, default USR1: what `sbatch --signal=USR1@T`
sends ahead of the time limit) and SIGTERM (preemption, `scancel`, the time limit itself)
only set a flag. At the next step boundary all ranks agree on it, the loop writes a
checkpoint, and on the requeue signal the main process requeues the SLURM job; every rank
then exits 0 and the restarted job resumes from that checkpoint.

SIGTERM does not requeue: a preempting SLURM requeues the job itself, and a user's
`scancel` must stay a cancel. Ctrl-C (SIGINT) and SIGHUP (a closed terminal) stop the same
way; a second Ctrl-C aborts at once without saving (exit 130).
"""

from __future__ import annotations

import os
import signal
import subprocess
from types import FrameType

import torch
import torch.distributed as dist
from accelerate import Accelerator

REQUEUE_SIGNAL_ENV = "DISTGAN_REQUEUE_SIGNAL"
REQUEUE_ENV = "DISTGAN_REQUEUE"
UNDER_TORCHRUN = "TORCHELASTIC_RUN_ID" in os.environ  # accelerate launch's multi-process launcher
ABORTED = "distgan: aborted by a second Ctrl-C, not saved; run the same command to resume from the newest checkpoint"
INTERRUPTED = "distgan: interrupted outside the training steps, nothing saved; run the same command to resume"


def requeue_signal() -> signal.Signals:
    """The signal named by DISTGAN_REQUEUE_SIGNAL (USR1, SIGUSR2, 12, ...), default SIGUSR1."""
    name = os.environ.get(REQUEUE_SIGNAL_ENV, "USR1").strip().upper()
    try:
        return (
            signal.Signals(int(name))
            if name.isdigit()
            else signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]
        )
    except (KeyError, ValueError):
        from distgan.errors import DistganError

        raise DistganError(f"{REQUEUE_SIGNAL_ENV}={name!r} is not a signal; use e.g. USR1 or USR2") from None


class PreemptionWatch:
    """Installs the handlers on creation; `stop_requested()` is the collective check."""

    def __init__(self, accelerator: Accelerator) -> None:
        self.accelerator = accelerator
        self.requeue_signal = requeue_signal()
        # Ordered by precedence, the all-reduced code is the index: a requeue request wins
        # (it is not downgraded by the SIGTERM that a requeue itself brings).
        stopping = [s for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM) if s != self.requeue_signal]
        self._codes: list[signal.Signals | None] = [None, *stopping, self.requeue_signal]
        self.received: signal.Signals | None = None
        self._ctrl_c = False
        self._terminal_fds = [fd for fd in (1, 2) if os.isatty(fd)]
        # DataLoader workers are forked with these handlers installed; only this pid acts.
        self._owner_pid = os.getpid()
        self._previous = {}
        for sig in self._codes[1:]:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        self._group = None
        self._flag = torch.zeros(1, dtype=torch.int32)
        self._pending: dist.Work | None = None
        if accelerator.num_processes > 1 and dist.get_backend() != "gloo":
            # A CPU all-reduce over gloo: agreeing on the flag never waits for the GPU stream.
            self._group = dist.new_group(backend="gloo")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._owner_pid:
            return
        sig = signal.Signals(signum)
        if sig == signal.SIGINT and sig != self.requeue_signal:
            self._on_ctrl_c()
        elif sig == signal.SIGTERM and self._ctrl_c and UNDER_TORCHRUN:
            # torchrun runs the ranks in their own session, so only its agent sees the terminal: it
            # forwards the first Ctrl-C and answers a second one with SIGTERM.
            abort()
        elif sig == signal.SIGHUP and sig != self.requeue_signal:
            _silence_lost_terminal(self._terminal_fds)
        if self._codes.index(sig) > self._codes.index(self.received):
            self.received = sig

    def _on_ctrl_c(self) -> None:
        if self._ctrl_c:
            abort()
        self._ctrl_c = True
        if self.accelerator.is_main_process:
            _say("distgan: Ctrl-C: checkpointing at the next step, then stopping (Ctrl-C again aborts, not saved)")

    def stop_requested(self) -> signal.Signals | None:
        """Collective: the signal that some rank received (the requeue signal first), or None.

        Asynchronous: each call starts an all-reduce of this rank's flag over a CPU gloo
        group and returns the result of the previous call's, which has long arrived, so
        the step never waits on a network round trip (between nodes) and every rank gets
        the same answer at the same step. A signal therefore stops the run one step later.
        """
        if self.accelerator.num_processes == 1:
            return self.received
        agreed = None
        if self._pending is not None:
            self._pending.wait()
            self._pending = None
            agreed = self._codes[int(self._flag[0])]
        if agreed is None:  # every rank takes the same branch: the next all-reduce matches up
            self._flag.fill_(self._codes.index(self.received))  # the last result is read
            self._pending = dist.all_reduce(self._flag, op=dist.ReduceOp.MAX, group=self._group, async_op=True)
        return agreed

    def requeue(self) -> str | None:
        """On the main process under SLURM: `scontrol requeue` this job. Returns a status line."""
        if not self.accelerator.is_main_process:
            return None
        job = slurm_job_id()
        if job is None:
            return "not under SLURM: not requeued"
        if os.environ.get(REQUEUE_ENV, "1") == "0":
            return f"{REQUEUE_ENV}=0: job {job} not requeued"
        try:
            result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"scontrol requeue {job} failed ({err}); resubmit to resume"
        if result.returncode != 0:
            return f"scontrol requeue {job} failed ({result.stderr.strip() or result.returncode}); resubmit to resume"
        return f"requeued SLURM job {job}"

    def close(self) -> None:
        if self._pending is not None:  # every rank started it: it completes
            self._pending.wait()
            self._pending = None
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def slurm_job_id() -> str | None:
    """`<array job>_<task>` for an array task (requeueing SLURM_JOB_ID alone would miss it), else the job id."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def abort(line: str = ABORTED) -> None:
    """Exit 130 now with one line (from rank 0). Not a KeyboardInterrupt: unwinding would run
    collectives and the gloo teardown that wait for ranks which are aborting too."""
    if os.environ.get("RANK", "0") == "0":
        _say(line)
    os._exit(130)


def _say(line: str) -> None:
    # os.write: print() from a signal handler can re-enter a write the main code is in.
    try:
        os.write(2, f"{line}\n".encode())
    except OSError:
        pass


def _silence_lost_terminal(terminal_fds: list[int]) -> None:
    """Once a terminal hangs up, writes to it fail (EIO) and would crash the stop after its checkpoint.
    A hung-up terminal is no longer a tty; a SIGHUP from `kill` leaves a live one as it is."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in terminal_fds:
        if not os.isatty(fd):
            os.dup2(devnull, fd)
    os.close(devnull)
