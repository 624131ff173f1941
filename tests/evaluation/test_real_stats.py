"""Reference statistics: computed once, cached under a key of everything that changes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from distgan.config import load_config
from distgan.evaluation import real_stats
from distgan.evaluation.extract import dataset_features
from distgan.evaluation.features import build_extractor
from tests.training.helpers import TINY


def _cfg(assets: dict[str, Path], cache: Path, *overrides: str):
    return load_config(
        "mnist_dcgan",
        [*TINY, f"data.path={assets['data']}", f"eval.stats_cache={cache}", "eval.batch_size=7", *overrides],
    )


def test_cache_written_once_then_reused(eval_assets: dict[str, Path], tmp_path: Path):
    acc = Accelerator(cpu=True)
    extractor = build_extractor(str(eval_assets["extractor"]), acc.device)
    cfg = _cfg(eval_assets, tmp_path, "eval.real_split=test")
    first = real_stats.load_or_compute(acc, cfg, extractor)
    entries = sorted(tmp_path.glob("*.npz"))
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    second = real_stats.load_or_compute(acc, cfg, extractor)
    assert entries[0].stat().st_mtime_ns == stamp  # read, not recomputed and rewritten
    assert torch.equal(first.features, second.features) and np.array_equal(first.sigma, second.sigma)
    assert first.features.shape == (32, 32)  # the 32 test images of the fixture's MNIST, 32 features each
    description = json.loads(entries[0].with_suffix(".json").read_text())
    assert description["split"] == "test" and description["resolution"] == 16 and description["num_images"] == 32
    assert description["resizer"] == "uint8-(x-128)/128-bilinear-299"
    assert description["extractor"] == extractor.name


def test_features_are_the_dataset_rows_in_order(eval_assets: dict[str, Path], tmp_path: Path):
    from distgan.data import build_dataset
    from distgan.evaluation.features import to_rgb_uint8

    acc = Accelerator(cpu=True)
    extractor = build_extractor(str(eval_assets["extractor"]), acc.device)
    cfg = _cfg(eval_assets, tmp_path)
    dataset = build_dataset(cfg.data)
    features = dataset_features(acc, dataset, 10, batch_size=4, extractor=extractor)
    one_by_one = torch.cat([extractor(to_rgb_uint8(dataset[i]["image"][None]))[0] for i in range(10)])
    assert torch.allclose(features, one_by_one, atol=1e-5)


@pytest.mark.parametrize("change", ["eval.real_split=test", "data.resolution=32", "eval.num_real=20", "extractor"])
def test_key_changes_with_what_changes_the_statistics(eval_assets: dict[str, Path], tmp_path: Path, change: str):
    acc = Accelerator(cpu=True)
    base_extractor = build_extractor(str(eval_assets["extractor"]), acc.device)
    base = real_stats.describe_reference(_cfg(eval_assets, tmp_path), 64, base_extractor)
    if change == "extractor":
        other = real_stats.describe_reference(
            _cfg(eval_assets, tmp_path), 64, build_extractor(str(eval_assets["extractor_logits"]), acc.device)
        )
    else:
        cfg = _cfg(eval_assets, tmp_path, change)
        other = real_stats.describe_reference(cfg, cfg.eval.num_real or 64, base_extractor)
    assert real_stats.cache_key(base) != real_stats.cache_key(other)
