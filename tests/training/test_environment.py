"""environment.jsonl: one line per start of a run, appended on resume."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import distgan
from tests.training.helpers import train_in_process


def read_starts(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "environment.jsonl").read_text().splitlines()]


def test_each_start_appends_its_environment(tmp_path: Path, mnist_dir: Path):
    run = tmp_path / "run"
    train_in_process(run, mnist_dir, "train.steps=2", "train.checkpoint_every=2")
    (first,) = read_starts(run)
    assert first["start_step"] == 0 and first["world_size"] == 1
    assert first["distgan"] == distgan.__version__
    assert first["torch"] == metadata.version("torch") and first["accelerate"] == metadata.version("accelerate")
    assert first["python"] == platform.python_version()
    assert first["device_type"] == "cpu" and first["mixed_precision"] == "no"
    assert first["hostname"] and first["command"] and first["start_time"]
    assert (run / "config.yaml").is_file()

    train_in_process(run, mnist_dir, "train.steps=3", "train.resume=auto")
    starts = read_starts(run)
    assert len(starts) == 2 and starts[0] == first
    assert starts[1]["start_step"] == 2 and starts[1]["start_time"] >= first["start_time"]
