"""Reference (real-data) features, cached on disk keyed by everything that changes them.

The key holds a format version, the data source and its resolved path or hub id, a stamp of
its contents (the decoded-data cache's: name, size and mtime of every file, or the hub
dataset's fingerprint), the split, image column, resolution, channel count, number of
images and the seed of their subset, resizer and extractor name (which includes a
TorchScript file's hash). The label column is left out: it changes neither the images nor
the subset. A cache entry is `<key>.npz` (features float32, mu and sigma float64) plus
`<key>.json` saying what it was computed from; both are written under temporary names and
renamed, so each file is complete or absent. Delete the directory to recompute.

`eval.num_real` below the split's size takes a uniform random subset drawn from the run's
seed on the CPU, so every world size (and every later run with that seed) measures the
same images; a class-sorted folder is sampled across its classes, not cut after the first.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from distgan.config import Config
from distgan.evaluation.extract import dataset_features
from distgan.evaluation.features import EvaluationError, Extractor
from distgan.evaluation.fid import feature_statistics
from distgan.paths import cache_dir as distgan_cache_dir

if TYPE_CHECKING:
    from distgan.data.dataset import ImageDataset

STATS_VERSION = 2  # bump when the statistics of the same key would change


@dataclass
class RealStats:
    features: torch.Tensor  # [N, D] float32, for KID
    mu: np.ndarray  # float64
    sigma: np.ndarray  # float64
    description: dict[str, Any]
    labels: np.ndarray | None = None  # [N] int64 class ids of the rows of `features` (-1: unlabelled)


def cache_dir(cfg: Config) -> Path:
    if cfg.eval.stats_cache:
        return Path(cfg.eval.stats_cache).expanduser()
    return distgan_cache_dir() / "fid_stats"


def describe_reference(cfg: Config, dataset: ImageDataset, num_real: int, extractor: Extractor) -> dict[str, Any]:
    """What the reference statistics of `dataset` (the reference split) are computed from."""
    from distgan.data.memory import source_stamp

    data = cfg.data.model_copy(update={"split": real_split(cfg)})
    path = data.path
    if path and Path(path).expanduser().exists():
        path = str(Path(path).expanduser().resolve())
    # The stamp lists every file, so the description keeps only its digest.
    stamp = json.dumps(source_stamp(data, dataset), default=str).encode()
    return {
        "version": STATS_VERSION,
        "source": data.source,
        "path": path,
        "source_stamp": hashlib.sha256(stamp).hexdigest()[:20],
        "split": data.split,
        "image_column": data.image_column,
        "resolution": data.resolution,
        "channels": data.channels or (1 if data.source == "mnist" else 3),
        "num_images": num_real,
        "subset_seed": cfg.seed if num_real < len(dataset) else None,
        "resizer": extractor.resizer,
        "extractor": extractor.name,
    }


def reference_indices(total: int, num: int, seed: int) -> list[int]:
    """All `total` indices, or `num` of them drawn uniformly without replacement from `seed`
    (on the CPU: the same on every device and world size), sorted so reads stay in order."""
    if num >= total:
        return list(range(total))
    return sorted(torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:num].tolist())


def real_split(cfg: Config) -> str:
    return cfg.eval.real_split or cfg.data.split


def check_split(cfg: Config) -> None:
    """Raises DataError now when an image folder has no reference split (the full dataset
    is only built at the first evaluation)."""
    if cfg.data.source == "imagefolder" and cfg.data.path and Path(cfg.data.path).expanduser().is_dir():
        from distgan.data.folder import split_root

        split_root(Path(cfg.data.path).expanduser(), real_split(cfg))


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
    description = describe_reference(cfg, dataset, num_real, extractor)
    entry = cache_dir(cfg) / cache_key(description)
    # The main process decides for all ranks, so a rank that cannot see the cache waits, not hangs.
    hit = [entry.with_suffix(".npz").is_file()] if accelerator.is_main_process else [None]
    hit = broadcast_object_list(hit)[0] if accelerator.num_processes > 1 else hit[0]
    indices = reference_indices(len(dataset), num_real, cfg.seed)
    # Labels are not cached: the dataset holds them, and the subset is the same seeded draw.
    labels = np.asarray(dataset.labels)[indices] if hasattr(dataset, "labels") else None
    if hit:
        if not accelerator.is_main_process:
            return None
        with np.load(entry.with_suffix(".npz")) as saved:
            return RealStats(torch.from_numpy(saved["features"]), saved["mu"], saved["sigma"], description, labels)
    features = dataset_features(accelerator, dataset, indices, cfg.eval.batch_size, extractor, cfg.data.num_workers)
    if not accelerator.is_main_process:
        return None
    mu, sigma = feature_statistics(features)
    _write_entry(entry, features.numpy(), mu, sigma, description)
    return RealStats(features, mu, sigma, description, labels)


def _write_entry(
    entry: Path, features: np.ndarray, mu: np.ndarray, sigma: np.ndarray, description: dict[str, Any]
) -> None:
    """Both files under temporary names, then renamed: a crash leaves the old files or none,
    never a truncated one (and the .npz, whose presence is a hit, is renamed last)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp_npz = entry.with_name(f".{entry.name}.{os.getpid()}.tmp.npz")
    tmp_json = entry.with_name(f".{entry.name}.{os.getpid()}.tmp.json")
    try:
        np.savez(tmp_npz, features=features.astype(np.float32), mu=mu, sigma=sigma)
        tmp_json.write_text(json.dumps(description, indent=1) + "\n")
        os.replace(tmp_json, entry.with_suffix(".json"))
        os.replace(tmp_npz, entry.with_suffix(".npz"))
    finally:
        tmp_npz.unlink(missing_ok=True)
        tmp_json.unlink(missing_ok=True)
