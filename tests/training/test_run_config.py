"""A run directory belongs to one experiment: a changed config is refused or recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from distgan.config import load_config
from distgan.training.run_config import RunConfigChanged, config_changes, may_change
from tests.training.helpers import launch, outcome, reset_accelerate, tiny_config, train_cli, train_in_process


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_what_may_change():
    assert may_change("train.steps") and may_change("eval.every") and may_change("tracking.project")
    assert not may_change("loss.name") and not may_change("train.batch_size") and not may_change("optim.g.lr")
    assert not may_change("train.stepsize")  # a prefix match only where the entry ends in "."
    assert not may_change("aug.name") and not may_change("aug.p") and not may_change("aug.target")


def test_changes_against_an_older_config_count_only_real_differences():
    new = load_config("mnist_dcgan", ["loss.name=hinge"])
    old = new.model_dump(mode="json")
    del old["schedule"]  # written by a distgan before schedules: its defaults are what ran
    old["loss"]["name"] = "nonsaturating"
    assert config_changes(old, new) == {"loss.name": ("nonsaturating", "hinge")}


def test_finished_run_with_another_loss_is_refused_and_nothing_is_rewritten(tmp_path: Path, mnist_dir: Path):
    run = tmp_path / "run"
    train_in_process(run, mnist_dir, "train.steps=3", "train.checkpoint_every=2")
    before = snapshot(run)
    result = train_cli(run, mnist_dir, "train.steps=3", "train.checkpoint_every=2", "loss.name=hinge")
    assert result.returncode == 2, outcome(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "loss.name 'nonsaturating' -> 'hinge'" in lines[0] and "new output_dir=DIR" in lines[0]
    assert snapshot(run) == before


def test_run_without_checkpoints_is_compared_with_its_config(tmp_path: Path, mnist_dir: Path):
    """checkpoint_every=0 leaves nothing to resume: starting over must not relabel it either."""
    run = tmp_path / "run"
    train_in_process(run, mnist_dir, "train.steps=2")
    before = snapshot(run)
    from distgan.training.loop import Trainer

    reset_accelerate()
    with pytest.raises(RunConfigChanged, match=r"train.batch_size 8 -> 16.*config.yaml"):
        Trainer(tiny_config(run, mnist_dir, "train.steps=2", "train.batch_size=16"))
    assert snapshot(run) == before


def test_allowed_changes_continue_and_are_recorded(tmp_path: Path, mnist_dir: Path):
    run = tmp_path / "run"
    train_in_process(run, mnist_dir, "train.steps=2", "train.checkpoint_every=2")
    train_in_process(run, mnist_dir, "train.steps=4", "train.checkpoint_every=2", "train.log_every=2")
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 4]
    (record,) = [json.loads(line) for line in (run / "config_changes.jsonl").read_text().splitlines()]
    assert record["step"] == 2
    assert record["changes"] == {"train.steps": {"from": 2, "to": 4}, "train.log_every": {"from": 1, "to": 2}}
    # Each checkpoint holds the config it was written under, which is what a resume compares with.
    stored = yaml.safe_load((run / "checkpoints" / "step_4" / "config.yaml").read_text())
    assert stored["train"]["steps"] == 4


def test_checkpoint_config_wins_over_the_run_directory(tmp_path: Path, mnist_dir: Path):
    """train.resume=PATH from another run: its checkpoint's config is the one compared."""
    source = tmp_path / "source"
    train_in_process(source, mnist_dir, "train.steps=2", "train.checkpoint_every=2", "loss.name=hinge")
    from distgan.training.loop import Trainer

    reset_accelerate()
    with pytest.raises(RunConfigChanged, match=r"loss.name 'hinge' -> 'nonsaturating'.*checkpoint step_2"):
        Trainer(tiny_config(tmp_path / "new", mnist_dir, f"train.resume={source / 'checkpoints' / 'step_2'}"))
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_two_processes_refuse_together_with_one_line(tmp_path: Path, mnist_dir: Path):
    run = tmp_path / "run"
    first = launch(run, mnist_dir, 2, "train.steps=2", "train.checkpoint_every=2")
    assert first.returncode == 0, outcome(first)
    before = snapshot(run)
    second = launch(run, mnist_dir, 2, "train.steps=2", "optim.d.lr=0.001")
    assert second.returncode != 0, outcome(second)
    assert second.stderr.count("distgan: error:") == 1, outcome(second)
    assert "optim.d.lr 0.0002 -> 0.001" in second.stderr
    assert snapshot(run) == before
