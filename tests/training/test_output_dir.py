"""The output directory is checked before work: writable, with room for a checkpoint."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from distgan.training.output_dir import checkpoint_bytes
from tests.training.helpers import launch, outcome, train_cli


@contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A real small or read-only file system (root can write through any permission bits)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only or full output_dir is emulated with a tmpfs mount, which needs root")
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"this machine refuses a tmpfs mount ({mounted.stderr.decode().strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_read_only_output_dir_is_one_line_before_work(tmp_path: Path, mnist_dir: Path):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as disk:
        result = train_cli(disk / "run", mnist_dir, "train.steps=2")
    assert result.returncode == 2, outcome(result)
    lines = result.stderr.strip().splitlines()
    assert (
        lines[-1].startswith("distgan: error: output_dir=") and "cannot be written (Read-only file system)" in lines[-1]
    )
    assert "Traceback" not in result.stderr
    assert "distgan: data:" not in result.stdout  # refused before the data was read


def test_full_output_dir_is_one_line_before_work(tmp_path: Path, mnist_dir: Path):
    with tmpfs(tmp_path / "small", "size=64k") as disk:  # the probe fits, a checkpoint (~100 KiB) does not
        result = train_cli(disk / "run", mnist_dir, "train.steps=2")
        leftover = sorted(p.name for p in disk.rglob("*"))
    assert result.returncode == 2, outcome(result)
    assert "KiB free and one checkpoint of these networks needs about" in result.stderr, outcome(result)
    assert leftover == []  # nothing written: no run directory, config, metrics or probe file


def test_checkpoint_estimate_counts_weights_moments_and_ema():
    import torch

    g, d = torch.nn.Linear(10, 10), torch.nn.Linear(10, 1)  # 110 and 11 parameters
    assert checkpoint_bytes(g, d) == (110 + 11) * 4 * 3 + 110 * 4


@pytest.mark.parametrize("processes", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_a_write_failing_mid_run_checkpoints_and_stops_every_rank_with_one_line(
    tmp_path: Path, mnist_dir: Path, processes: int
):
    """samples/ on a full file system: the grid at step 2 fails on the main process; every rank
    checkpoints step 2 and stops (none waits in a collective), and the same command resumes."""
    out = tmp_path / "run"
    (out / "samples").mkdir(parents=True)
    overrides = ["train.steps=4", "train.sample_every=2", "train.checkpoint_every=0"]
    (out / "samples").rmdir()
    with tmpfs(out / "samples", "size=4k") as samples:
        (samples / "filler").write_bytes(b"x" * 4096)
        stopped = launch(out, mnist_dir, processes, *overrides, timeout=180)
    assert stopped.returncode != 0, outcome(stopped)
    errors = [line for line in stopped.stderr.splitlines() if line.startswith("distgan: error:")]
    assert len(errors) == 1, outcome(stopped)
    assert "stopped at step 2: could not write" in errors[0] and "step_2.png" in errors[0], errors[0]
    assert "checkpoint step_2 written" in errors[0] and "run the same command to resume" in errors[0]
    assert (out / "checkpoints" / "step_2").is_dir()
    resumed = launch(out, mnist_dir, processes, *overrides, timeout=180)
    assert resumed.returncode == 0 and "at step 2" in resumed.stdout, outcome(resumed)
    assert (out / "samples" / "step_4.png").is_file()
