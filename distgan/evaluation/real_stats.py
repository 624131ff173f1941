"""Reference (real-data) features, cached on disk keyed by everything that changes them.

The key holds the data source and its resolved path or hub id, the split, resolution,
channel count, number of images, resizer and extractor name (which includes a TorchScript
file's hash). A cache entry is `<key>.npz` (features float32, mu and sigma float64) plus
`<key>.json` saying what it was computed from; both are written under temporary names and
renamed, so an entry is complete or absent. Delete the directory to recompute.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from distgan.config import Config
from distgan.evaluation.extract import dataset_features
from distgan.evaluation.features import RESIZER, EvaluationError, Extractor
from distgan.evaluation.fid import feature_statistics
from distgan.paths import cache_dir as distgan_cache_dir


@dataclass
class RealStats:
    features: torch.Tensor  # [N, D] float32, for KID
    mu: np.ndarray  # float64
    sigma: np.ndarray  # float64
    description: dict[str, Any]


def cache_dir(cfg: Config) -> Path:
    if cfg.eval.stats_cache:
        return Path(cfg.eval.stats_cache).expanduser()
    return distgan_cache_dir() / "fid_stats"


def describe_reference(cfg: Config, num_real: int, extractor: Extractor) -> dict[str, Any]:
    data = cfg.data
    path = data.path
    if path and Path(path).expanduser().exists():
        path = str(Path(path).expanduser().resolve())
    return {
        "source": data.source,
        "path": path,
        "split": real_split(cfg),
        "resolution": data.resolution,
        "channels": data.channels or (1 if data.source == "mnist" else 3),
        "num_images": num_real,
        "resizer": RESIZER,
        "extractor": extractor.name,
    }


def real_split(cfg: Config) -> str:
    return cfg.eval.real_split or cfg.data.split


def cache_key(description: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]


def load_or_compute(accelerator: Accelerator, cfg: Config, extractor: Extractor) -> RealStats | None:
    """The reference statistics on the main process (None elsewhere); computed by every
    rank in shards and written to the cache on a miss. Call on every rank."""
    from distgan.data import build_dataset

    dataset = build_dataset(cfg.data.model_copy(update={"split": real_split(cfg)}))
    num_real = min(cfg.eval.num_real or len(dataset), len(dataset))
    if num_real < 2:
        raise EvaluationError(
            f"the reference split {real_split(cfg)!r} has {len(dataset)} image(s): FID needs at least 2"
        )
    description = describe_reference(cfg, num_real, extractor)
    entry = cache_dir(cfg) / cache_key(description)
    # The main process decides for all ranks, so a rank that cannot see the cache waits, not hangs.
    hit = [entry.with_suffix(".npz").is_file()] if accelerator.is_main_process else [None]
    hit = broadcast_object_list(hit)[0] if accelerator.num_processes > 1 else hit[0]
    if hit:
        if not accelerator.is_main_process:
            return None
        with np.load(entry.with_suffix(".npz")) as saved:
            return RealStats(torch.from_numpy(saved["features"]), saved["mu"], saved["sigma"], description)
    features = dataset_features(accelerator, dataset, num_real, cfg.eval.batch_size, extractor, cfg.data.num_workers)
    if not accelerator.is_main_process:
        return None
    mu, sigma = feature_statistics(features)
    _write_entry(entry, features.numpy(), mu, sigma, description)
    return RealStats(features, mu, sigma, description)


def _write_entry(
    entry: Path, features: np.ndarray, mu: np.ndarray, sigma: np.ndarray, description: dict[str, Any]
) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, features=features.astype(np.float32), mu=mu, sigma=sigma)
    entry.with_suffix(".json").write_text(json.dumps(description, indent=1) + "\n")
    os.replace(tmp, entry.with_suffix(".npz"))
