"""Stopping cleanly when the scheduler wants the resources back.

The requeue signal (`DISTGAN_REQUEUE_SIGNAL`, default USR1: what `sbatch --signal=USR1@T`
sends ahead of the time limit) and SIGTERM (preemption, `scancel`, the time limit itself)
only set a flag. At the next step boundary all ranks agree on it, the loop writes a
checkpoint, and on the requeue signal the main process requeues the SLURM job; every rank
then exits 0 and the restarted job resumes from that checkpoint.

SIGTERM does not requeue: a preempting SLURM requeues the job itself, and a user's
`scancel` must stay a cancel.
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
        self.received: signal.Signals | None = None
        # DataLoader workers are forked with these handlers installed; only this pid acts.
        self._owner_pid = os.getpid()
        self._previous = {}
        for sig in (self.requeue_signal, signal.SIGTERM):
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
        # A requeue request is not downgraded by the SIGTERM that a requeue itself brings.
        if self.received != self.requeue_signal:
            self.received = signal.Signals(signum)

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
            agreed = {0: None, 1: signal.SIGTERM}.get(int(self._flag[0]), self.requeue_signal)
        if agreed is None:  # every rank takes the same branch: the next all-reduce matches up
            self._flag.fill_({None: 0, signal.SIGTERM: 1}.get(self.received, 2))  # the last result is read
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
