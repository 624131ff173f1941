"""Trackers: TensorBoard scalars read back, W&B offline, and W&B unreachable never stops training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.helpers import REPO, TINY, launch, outcome, train_in_process


@pytest.mark.slow
def test_tensorboard_scalars_at_logged_steps(tmp_path: Path, mnist_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = train_in_process(
        tmp_path / "run", mnist_dir, "tracker=tensorboard", "train.steps=4", "train.log_every=2", "train.sample_every=4"
    )
    readers = [EventAccumulator(str(p.parent)) for p in (out / "tensorboard").rglob("events.out.tfevents.*")]
    for reader in readers:
        reader.Reload()
    with_scalars = [r for r in readers if "loss_d" in r.Tags()["scalars"]]
    assert len(with_scalars) == 1
    acc = with_scalars[0]
    assert [e.step for e in acc.Scalars("loss_d")] == [2, 4]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert acc.Scalars("loss_g")[-1].value == pytest.approx(rows[-1]["loss_g"], rel=1e-6)
    assert "samples" in acc.Tags()["images"]


def _offline_records(out: Path) -> bytes:
    files = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    return files[0].read_bytes()


@pytest.mark.slow
def test_wandb_offline_needs_no_account(tmp_path: Path, mnist_dir: Path):
    env = {"WANDB_MODE": "offline", "WANDB_API_KEY": "", "WANDB_PROJECT": "distgan-test"}
    out = tmp_path / "run"
    result = launch(out, mnist_dir, 1, "tracker=wandb", "train.steps=2", env=env)
    assert result.returncode == 0, outcome(result)
    records = _offline_records(out)
    assert b"loss_d" in records and b"distgan-test" in records
    assert (out / "metrics.jsonl").read_text().count("\n") == 2


@pytest.mark.slow
def test_unreachable_wandb_server_falls_back_offline(tmp_path: Path, mnist_dir: Path):
    env = {
        "WANDB_MODE": "online",
        "WANDB_BASE_URL": "http://127.0.0.1:9",  # nothing listens there
        "WANDB_API_KEY": "x" * 40,
        "WANDB_INIT_TIMEOUT": "5",
    }
    out = tmp_path / "run"
    result = launch(out, mnist_dir, 1, "tracker=wandb", "train.steps=2", env=env)
    assert result.returncode == 0, outcome(result)
    assert "W&B could not start" in result.stderr
    assert (out / "final" / "generator_ema.safetensors").is_file()
    assert b"loss_d" in _offline_records(out)


@pytest.mark.parametrize("tracker", ["tensorboard", "wandb"])
def test_tracker_without_its_package_is_one_line_before_any_work(tmp_path: Path, mnist_dir: Path, tracker: str):
    # A module of the tracker's name first on the path makes its import fail for real.
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / f"{tracker}.py").write_text(f"raise ImportError('no module named {tracker}')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO)]), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "distgan.train", *TINY, f"output_dir={out}", f"data.path={mnist_dir}"]
    result = subprocess.run(
        [*cmd, f"tracker={tracker}", "train.steps=1"], capture_output=True, text=True, timeout=120, env=env, cwd=REPO
    )
    assert result.returncode == 2, outcome(result)
    expected = f"distgan: error: tracker={tracker} needs the {tracker} package: pip install {tracker}\n"
    assert result.stderr.endswith(expected), outcome(result)
    assert not out.exists()  # refused before any work
