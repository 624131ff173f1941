"""Evaluation inside training: metrics rows, best checkpoint, curves, an untouched training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from distgan.evaluation.features import EvaluationError
from tests.training.helpers import final_weights, max_abs_diff, train_in_process


def _eval_overrides(assets: dict[str, Path], cache: Path) -> list[str]:
    return [
        "eval.every=2",
        f"eval.inception={assets['extractor']}",
        "eval.num_images=24",
        "eval.batch_size=8",
        "eval.kid_subsets=3",
        "eval.kid_subset_size=10",
        f"eval.stats_cache={cache}",
        "eval.real_split=test",
    ]


def test_fid_rows_best_checkpoint_and_curves(eval_assets: dict[str, Path], tmp_path: Path):
    out = train_in_process(
        tmp_path / "run",
        eval_assets["data"],
        "train.steps=5",
        "train.log_every=1",
        *_eval_overrides(eval_assets, tmp_path / "cache"),
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "fid" in r]
    assert [r["step"] for r in evals] == [2, 4, 5]  # every 2 steps and at the end
    for row in evals:
        assert row["eval_images"] == 24 and row["eval_real_images"] == 32 and row["eval_real_split"] == "test"
        assert row["eval_extractor"].startswith("torchscript:tiny.pt@") and row["fid"] > 0 and "kid" in row
        assert row["eval_protocol"] == "fid-inception/bilinear-uint8" and row["eval_resolution"] == 16
    best = json.loads((out / "final" / "best" / "metrics.json").read_text())
    assert best["fid"] == min(r["fid"] for r in evals)
    assert {p.name for p in (out / "final" / "best").glob("*.safetensors")} == {
        "generator.safetensors",
        "generator_ema.safetensors",
        "discriminator.safetensors",
    }
    assert Image.open(out / "curves.png").size[0] > 500
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1  # reference features computed once


def test_evaluation_does_not_change_training(eval_assets: dict[str, Path], tmp_path: Path):
    with_eval = train_in_process(
        tmp_path / "a", eval_assets["data"], "train.steps=3", *_eval_overrides(eval_assets, tmp_path / "cache")
    )
    without = train_in_process(tmp_path / "b", eval_assets["data"], "train.steps=3")
    assert max_abs_diff(final_weights(with_eval), final_weights(without)) == 0.0


def test_wrong_extractor_stops_before_training(eval_assets: dict[str, Path], tmp_path: Path):
    with pytest.raises(EvaluationError, match="no such file"):
        train_in_process(
            tmp_path / "run",
            eval_assets["data"],
            "train.steps=2",
            "eval.every=1",
            f"eval.inception={tmp_path / 'missing.pt'}",
        )
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "final").exists()


def test_one_kid_subset_logs_no_kid_std(eval_assets: dict[str, Path], tmp_path: Path):
    overrides = [o for o in _eval_overrides(eval_assets, tmp_path / "cache") if not o.startswith("eval.kid_subsets")]
    out = train_in_process(
        tmp_path / "run", eval_assets["data"], "train.steps=2", "tracker=tensorboard", "eval.kid_subsets=1", *overrides
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "fid" in r]
    assert evals and all(r["kid_std"] is None and isinstance(r["kid"], float) for r in evals)
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))  # the tracker took the row
