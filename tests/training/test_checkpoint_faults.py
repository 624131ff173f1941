"""Checkpoint faults: damaged files are named and skipped, a kill mid-write or a full disk loses nothing."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distgan.training.checkpoint import find_damage, list_checkpoints, resolve_resume
from tests.training.helpers import REPO, TINY, reset_accelerate, tiny_config, train_in_process


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize(
    ("damage", "file", "message"),
    [
        (flip_byte, "model.safetensors", "model.safetensors does not match its SHA-256 in the manifest"),
        (truncate, "optimizer_1.bin", r"optimizer_1.bin has \d+ bytes, the manifest says \d+"),
    ],
)
def test_damaged_checkpoint_is_named_and_auto_resumes_from_the_previous(tmp_path, mnist_dir, damage, file, message):
    from distgan.training.loop import Trainer

    out = tmp_path / "run"
    train_in_process(out, mnist_dir, "train.steps=2", "train.checkpoint_every=1")
    damage(out / "checkpoints" / "step_2" / file)
    with pytest.warns(UserWarning, match=f"skipping damaged checkpoint .*step_2: .*{message}"):
        reset_accelerate()
        trainer = Trainer(tiny_config(out, mnist_dir, "train.steps=3"))
    assert trainer.state.step == 1
    assert (out / "checkpoints" / "step_2" / file).exists()  # left for inspection


def _cli(out: Path, data: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "distgan.train", *TINY, f"output_dir={out}", f"data.path={data}", *overrides]


@pytest.mark.slow
def test_kill_during_a_checkpoint_write_leaves_the_previous_one_newest(tmp_path, mnist_dir):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        _cli(out, mnist_dir, "train.steps=100000", "train.checkpoint_every=1", "train.keep_checkpoints=100"),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, torn = time.monotonic() + 120, None
        while torn is None and time.monotonic() < deadline:
            torn = (
                next((p for p in (out / "checkpoints").glob(".tmp-step_*") if p.name != ".tmp-step_1"), None)
                if (out / "checkpoints").is_dir()
                else None
            )
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert torn is not None, "no checkpoint write was seen"
    torn_step = int(torn.name.removeprefix(".tmp-step_"))
    newest = resolve_resume("auto", out / "checkpoints")
    # Killed before the rename: the previous checkpoint is the newest; after it, this one is.
    expected = torn_step - 1 if torn.exists() else torn_step
    assert newest is not None and newest.name == f"step_{expected}"
    assert all(find_damage(path) is None for path in list_checkpoints(out / "checkpoints"))
    # ...and the run goes on from it.
    env["PYTHONWARNINGS"] = "ignore"
    result = subprocess.run(
        _cli(out, mnist_dir, f"train.steps={expected + 2}"),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and f"resumed from {newest} at step {expected}" in result.stdout, result.stderr


@pytest.fixture
def small_disk(tmp_path: Path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is emulated with a small tmpfs, which needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_full_disk_keeps_the_previous_checkpoint_and_stops_with_a_clear_error(small_disk, mnist_dir):
    out = small_disk / "run"
    train_in_process(out, mnist_dir, "train.steps=1", "train.checkpoint_every=1")
    first = out / "checkpoints" / "step_1"
    size = sum(f.stat().st_size for f in first.rglob("*"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}

    def fill_and_run(room: int, steps: int) -> subprocess.CompletedProcess:
        (small_disk / "filler").unlink(missing_ok=True)
        free = shutil.disk_usage(small_disk).free
        with open(small_disk / "filler", "wb") as handle:
            handle.write(b"\0" * (free - room))
        cli = _cli(out, mnist_dir, f"train.steps={steps}", "train.checkpoint_every=1")
        return subprocess.run(cli, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)

    # Room for half a checkpoint: refused before any work.
    result = fill_and_run(size // 2, steps=3)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "free and one checkpoint of these networks needs about" in result.stderr.strip().splitlines()[-1]
    assert list_checkpoints(out / "checkpoints") == [first]
    # Room for one and a half: step 2's checkpoint fits, step 3's does not (the disk filled mid-run).
    result = fill_and_run(size + size // 2, steps=3)
    assert result.returncode == 2, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    second = out / "checkpoints" / "step_2"
    assert error.startswith(f"distgan: error: could not write checkpoint {out / 'checkpoints' / 'step_3'}: "), error
    assert re.search(r": the disk is full \([\d.]+ MiB free, a checkpoint takes [\d.]+ MiB\): ", error), error
    assert f"the newest checkpoint is still {second}" in error
    assert list_checkpoints(out / "checkpoints") == [first, second] and find_damage(second) is None
    assert not list((out / "checkpoints").glob(".tmp-*"))  # the partial write gave its space back
