"""Preemption without a scheduler: a real signal stops the loop at a step boundary with a checkpoint."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from distgan.errors import DistganError
from distgan.training.checkpoint import find_damage, list_checkpoints
from distgan.training.preemption import requeue_signal, slurm_job_id
from tests.training.helpers import reset_accelerate, tiny_config


@pytest.mark.parametrize("sig", ["USR1", "TERM"])
def test_signal_stops_at_a_step_with_a_checkpoint(tmp_path: Path, mnist_dir: Path, monkeypatch, capsys, sig: str):
    from distgan.training.loop import Trainer

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    reset_accelerate()
    trainer = Trainer(tiny_config(tmp_path / "run", mnist_dir, "train.steps=100000"))

    def send_after_three_steps() -> None:
        while trainer.state.step < 3:
            time.sleep(0.01)
        os.kill(os.getpid(), getattr(signal, f"SIG{sig}"))

    threading.Thread(target=send_after_three_steps, daemon=True).start()
    trainer.run()
    stopped = trainer.state.step
    assert 3 <= stopped < 100000
    newest = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    assert newest.name == f"step_{stopped}" and find_damage(newest) is None
    assert not (tmp_path / "run" / "final").exists()
    expected = "not under SLURM: not requeued" if sig == "USR1" else "not requeued (SIGTERM)"
    out = capsys.readouterr().out
    assert f"stopped at step {stopped} on SIG{sig}: checkpoint" in out and expected in out, out
    # The handlers stay until exit; restore defaults so the next tests see a clean process.
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def test_array_tasks_are_requeued_by_their_own_id(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "1234")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    assert slurm_job_id() == "1234"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "1200")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "34")
    assert slurm_job_id() == "1200_34"


def test_requeue_signal_names(monkeypatch):
    for name, expected in (("USR2", signal.SIGUSR2), ("SIGUSR1", signal.SIGUSR1), ("12", signal.SIGUSR2)):
        monkeypatch.setenv("DISTGAN_REQUEUE_SIGNAL", name)
        assert requeue_signal() == expected
    monkeypatch.setenv("DISTGAN_REQUEUE_SIGNAL", "USR9")
    with pytest.raises(DistganError, match="DISTGAN_REQUEUE_SIGNAL='USR9' is not a signal; use e.g. USR1 or USR2"):
        requeue_signal()


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step(tmp_path: Path, mnist_dir: Path):
    """SIGTERM to rank 1 only (2 gloo processes): the ranks agree through the asynchronous flag,
    write one checkpoint at the same step, and all exit 0."""
    import json
    import subprocess

    from tests.training.helpers import REPO, launch_command, training_pid

    out = tmp_path / "run"
    cmd = launch_command(out, mnist_dir, 2, "train.steps=100000", "train.log_every=5")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("SLURM_JOB_ID", None)
    launcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        metrics = out / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
            assert time.monotonic() < deadline and launcher.poll() is None, "training did not reach step 10"
            time.sleep(0.05)
        os.kill(training_pid(1, f"output_dir={out}"), signal.SIGTERM)
        stdout, stderr = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode == 0, stderr[-3000:]
    stopped = int(stdout.split("stopped at step ")[1].split()[0])
    assert f"on SIGTERM: checkpoint {out / 'checkpoints' / f'step_{stopped}'} written" in stdout
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == [f"step_{stopped}"]
    assert find_damage(out / "checkpoints" / f"step_{stopped}") is None
    assert json.loads(metrics.read_text().splitlines()[-1])["step"] <= stopped


def _train_command(out: Path, data: Path, *overrides: str) -> list[str]:
    """`python -m distgan.train ...` as a user runs it in a terminal."""
    import sys

    from tests.training.helpers import TINY

    return [sys.executable, "-m", "distgan.train", *TINY, f"output_dir={out}", f"data.path={data}", *overrides]


def _quiet_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    env.pop("SLURM_JOB_ID", None)
    return env


def _wait_until(condition, process, failure: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline and process.poll() is None, failure
        time.sleep(0.02)


def _wait_for_steps(out: Path, steps: int, process) -> None:
    metrics = out / "metrics.jsonl"
    enough = lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= steps  # noqa: E731
    _wait_until(enough, process, f"training did not reach step {steps}")


@pytest.mark.parametrize("sig", ["INT", "HUP"])
def test_ctrl_c_and_hangup_checkpoint_the_step_and_resume_exactly(tmp_path: Path, mnist_dir: Path, sig: str):
    """Ctrl-C (SIGINT) or SIGHUP at step 60+ of a run checkpointing every 50: a checkpoint of the
    step it stopped at, exit 0, and the same command resumes to weights bit-identical to a run
    that was never stopped."""
    import subprocess

    import torch

    from tests.training.helpers import REPO, final_weights

    out, every = tmp_path / "run", "train.checkpoint_every=50"
    run = subprocess.Popen(
        _train_command(out, mnist_dir, "train.steps=100000", every),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_quiet_env(),
        cwd=REPO,
    )
    try:
        _wait_for_steps(out, 60, run)
        run.send_signal(getattr(signal, f"SIG{sig}"))
        stdout, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0, stderr[-3000:]
    stopped = int(stdout.split("stopped at step ")[1].split()[0])
    assert stopped >= 60
    checkpoints = list_checkpoints(out / "checkpoints")
    newest = checkpoints[-1]
    assert [p.name for p in checkpoints] == ["step_50", f"step_{stopped}"] and find_damage(newest) is None
    assert f"on SIG{sig}: checkpoint {newest} written; not requeued (SIG{sig}); run the same command" in stdout
    assert ("Ctrl-C again aborts" in stderr) == (sig == "INT"), stderr[-3000:]
    runs = {
        path: subprocess.Popen(
            _train_command(path, mnist_dir, f"train.steps={stopped + 10}", every),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_quiet_env(),
            cwd=REPO,
        )
        for path in (out, tmp_path / "whole")  # the same command resumes; a run never stopped
    }
    logs = {path: process.communicate(timeout=120) for path, process in runs.items()}
    assert all(process.returncode == 0 for process in runs.values()), logs
    assert f"resumed from {newest} at step {stopped}" in logs[out][0]
    a, b = final_weights(out), final_weights(tmp_path / "whole")
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_a_second_ctrl_c_aborts_at_once_without_saving(tmp_path: Path, mnist_dir: Path):
    """The run is held inside a step (tests/training/holding_nets.py), so the first Ctrl-C cannot
    reach its checkpoint; a second one exits 130 at once with one line, no traceback."""
    import subprocess

    from tests.training.helpers import REPO

    out, hold = tmp_path / "run", tmp_path / "hold"
    model = "model.name=tests.training.holding_nets:HoldingGAN"
    log = (tmp_path / "stderr").open("w+")
    run = subprocess.Popen(
        _train_command(out, mnist_dir, "train.steps=100000", "train.checkpoint_every=50", model),
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
        env=_quiet_env(DISTGAN_TEST_HOLD=str(hold)),
        cwd=REPO,
    )
    try:
        _wait_for_steps(out, 55, run)
        hold.touch()
        _wait_until(lambda: hold.with_suffix(".held0").exists(), run, "the run was not held")
        run.send_signal(signal.SIGINT)
        _wait_until(lambda: "Ctrl-C again" in (tmp_path / "stderr").read_text(), run, "no word on the first Ctrl-C")
        run.send_signal(signal.SIGINT)
        sent = time.monotonic()
        run.wait(timeout=30)
        waited = time.monotonic() - sent
    finally:
        run.kill()
        log.close()
    stderr = (tmp_path / "stderr").read_text()
    assert run.returncode == 130, stderr[-3000:]
    assert waited < 5 and "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if "Ctrl-C" in line]
    assert len(lines) == 2 and lines[1].startswith("distgan: aborted by a second Ctrl-C, not saved"), stderr[-3000:]
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step_50"]


def test_ctrl_c_before_the_first_step_exits_130_in_one_line(tmp_path: Path, mnist_dir: Path):
    """Ctrl-C while the trainer is being built (held in the model's constructor): one line, 130."""
    import subprocess

    from tests.training.helpers import REPO

    hold = tmp_path / "hold"
    hold.touch()
    run = subprocess.Popen(
        _train_command(tmp_path / "run", mnist_dir, "model.name=tests.training.holding_nets:HoldingGAN"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_quiet_env(DISTGAN_TEST_HOLD=str(hold)),
        cwd=REPO,
    )
    try:
        _wait_until(lambda: hold.with_suffix(".held0").exists(), run, "the model was not built")
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert stderr.splitlines()[-1].startswith("distgan: interrupted outside the training steps, nothing saved")


@pytest.mark.slow
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_in_a_terminal_under_accelerate_launch(tmp_path: Path, mnist_dir: Path, presses: int):
    """Ctrl-C in a terminal signals its foreground process group: under `accelerate launch`
    (torchrun, 2 gloo ranks) that is the launcher alone, whose agent forwards it to the ranks.
    Once: the ranks checkpoint one step together and exit 0, the launcher exits 130. Twice: the
    agent sends SIGTERM, and the ranks abort at once without saving. The ranks are held inside a
    step (holding_nets) until the presses are in, so the run cannot finish first."""
    import subprocess

    from tests.training.helpers import REPO, launch_command

    out, hold, log = tmp_path / "run", tmp_path / "hold", tmp_path / "stderr"
    model = "model.name=tests.training.holding_nets:HoldingGAN"
    cmd = launch_command(out, mnist_dir, 2, "train.steps=100000", "train.checkpoint_every=50", model)
    with log.open("w") as stderr:
        launcher = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=_quiet_env(DISTGAN_TEST_HOLD=str(hold)),
            cwd=REPO,
            start_new_session=True,  # its own process group, as a terminal's foreground job has
        )
    try:
        _wait_for_steps(out, 55, launcher)
        hold.touch()
        # Rank 0 waits in Python (so it takes the signal at once); rank 1 then waits in G's forward
        # too, or, when it was already past it, in the step's next collective, for rank 0.
        held = lambda: hold.with_suffix(".held0").exists()  # noqa: E731
        _wait_until(held, launcher, "rank 0 was not held")
        os.killpg(launcher.pid, signal.SIGINT)
        _wait_until(lambda: "Ctrl-C again" in log.read_text(), launcher, "no word on the Ctrl-C")
        if presses == 2:
            os.killpg(launcher.pid, signal.SIGINT)
            launcher.wait(timeout=10)  # torchrun's own limit before it kills the ranks is 30 s
        hold.unlink()
        stdout, _ = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    stderr = log.read_text()
    assert launcher.returncode == 130, stderr[-3000:]
    assert stderr.count("Ctrl-C again aborts") == 1 and stderr.count("aborted by a second Ctrl-C") == presses - 1
    checkpoints = [p.name for p in list_checkpoints(out / "checkpoints")]
    if presses == 2:
        assert checkpoints == ["step_50"] and "stopped at step" not in stdout, stdout[-2000:]
        return
    stopped = int(stdout.split("stopped at step ")[1].split()[0])
    assert stopped >= 55 and f"on SIGINT: checkpoint {out / 'checkpoints' / f'step_{stopped}'} written" in stdout
    assert checkpoints == ["step_50", f"step_{stopped}"]
    assert find_damage(out / "checkpoints" / f"step_{stopped}") is None


def test_closing_the_terminal_checkpoints_and_exits_0(tmp_path: Path, mnist_dir: Path):
    """A run in a real pseudo-terminal (its session's controlling terminal, progress bar on) whose
    terminal closes: the kernel sends SIGHUP and later writes to the terminal fail (EIO), which
    must not turn the stop after the checkpoint into a crash."""
    import fcntl
    import pty
    import subprocess
    import termios

    from tests.training.helpers import REPO

    def own_terminal() -> None:  # in the child: a new session whose controlling terminal is the pty
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    out = tmp_path / "run"
    master, terminal = pty.openpty()
    run = subprocess.Popen(
        _train_command(out, mnist_dir, "train.steps=100000", "train.checkpoint_every=50", "train.progress=true"),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=_quiet_env(),
        cwd=REPO,
        preexec_fn=own_terminal,
    )
    os.close(terminal)
    os.set_blocking(master, False)

    def read_terminal() -> bool:  # what a terminal shows, so the run never blocks on a full pty
        try:
            os.read(master, 1 << 16)
        except BlockingIOError:
            pass
        metrics = out / "metrics.jsonl"
        return metrics.exists() and len(metrics.read_text().splitlines()) >= 60

    try:
        _wait_until(read_terminal, run, "training did not reach step 60")
        os.close(master)  # the terminal window closes
        run.wait(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0
    checkpoints = list_checkpoints(out / "checkpoints")
    assert len(checkpoints) == 2 and int(checkpoints[-1].name.split("_")[1]) >= 60
    assert find_damage(checkpoints[-1]) is None
