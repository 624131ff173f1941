"""W&B offline, read back from the run files: config, scalars at their steps, sample images,
FID, and one W&B run continued across a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.evaluation import wandb_records
from tests.training.helpers import launch, outcome

ENV = {"WANDB_MODE": "offline", "WANDB_API_KEY": "", "WANDB_PROJECT": "distgan-test", "HF_HUB_OFFLINE": "1"}


@pytest.mark.slow
def test_wandb_records_tell_the_story_and_resume_continues_the_run(eval_assets: dict[str, Path], tmp_path: Path):
    out = tmp_path / "run"
    common = [
        "tracker=wandb",
        "train.log_every=2",
        "train.sample_every=2",
        "train.checkpoint_every=2",
        "eval.every=2",
        f"eval.inception={eval_assets['extractor']}",
        "eval.num_images=16",
        "eval.batch_size=8",
        "eval.kid_subsets=2",
        "eval.kid_subset_size=8",
        f"eval.stats_cache={tmp_path / 'cache'}",
    ]
    first = launch(out, eval_assets["data"], 1, *common, "train.steps=4", env=ENV)
    assert first.returncode == 0, outcome(first)
    (run_file,) = wandb_records.offline_runs(out)
    records = wandb_records.read_records(run_file)
    rows = wandb_records.history(records)
    assert sorted({r["_step"] for r in rows if "loss_d" in r}) == [2, 4]
    assert all("img_per_s" in r for r in rows if "loss_d" in r)
    # An image is logged as nested keys samples/_type, samples/path, ...
    images = {r["_step"]: r for r in rows if "samples/_type" in r}
    assert sorted(images) == [2, 4] and all(r["samples/_type"] == "image-file" for r in images.values())
    assert all((run_file.parent / "files" / r["samples/path"]).is_file() for r in images.values()), [
        str(p) for p in run_file.parent.rglob("*.png")
    ]
    logged_fid = {r["_step"]: r["fid"] for r in rows if "fid" in r}
    jsonl = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert logged_fid == {r["step"]: r["fid"] for r in jsonl if "fid" in r} and set(logged_fid) == {2, 4}
    assert all(r["eval_images"] == 16 and r["eval_extractor"].startswith("torchscript:") for r in rows if "fid" in r)
    cfg = wandb_records.config(records)
    assert cfg["eval"]["every"] == 2 and cfg["train"]["steps"] == 4 and cfg["model"]["name"] == "dcgan"

    second = launch(out, eval_assets["data"], 1, *common, "train.steps=6", env=ENV)
    assert second.returncode == 0, outcome(second)
    runs = wandb_records.offline_runs(out)
    assert len(runs) == 2
    ids = [wandb_records.run_ids(wandb_records.read_records(p)) for p in runs]
    assert ids[0] == ids[1] and len(ids[0]) == 1  # the id came back from the checkpoint
    resumed_steps = {r["_step"] for r in wandb_records.history(wandb_records.read_records(runs[1])) if "loss_d" in r}
    assert resumed_steps == {6}
