"""Datasets that fit in memory: decoded once to one uint8 tensor, cached on disk, and batched
where the model runs.

    images, labels = decoded_tensors(dataset, cfg.data, channels, cache_dir)   # [N,C,R,R] uint8, [N] int64
    batches = InMemoryBatches(images.to(device), labels.to(device), micro, seed, start, rank, world)

`InMemoryBatches` yields exactly what the DataLoader path yields on the same rank (the same
`GlobalBatchSampler` stream, rank r's contiguous slice of every global micro-batch), so the
world-size equivalence and bit-exact resume of the DataLoader path carry over unchanged.
The cache file is keyed by the source (path and the size and mtime of every file under it,
or the `datasets` fingerprint of a hub dataset), split, image column, resolution and channels.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from distgan.config import DataConfig
from distgan.data.dataset import ImageDataset
from distgan.data.loader import collate_images
from distgan.data.mnist import BUNDLED_DIR
from distgan.data.sampler import epoch_permutation

# `data.in_memory=auto` holds a dataset in memory when its decoded pixels take at most this.
AUTO_MAX_BYTES = 4 * 2**30
DECODE_BATCH = 512
CACHE_VERSION = 1  # bump when the decoded bytes of the same source would change


def decoded_bytes(dataset: ImageDataset) -> int:
    return len(dataset) * dataset.channels * dataset.resolution**2


def fits_in_memory(setting: bool | str, dataset: ImageDataset) -> bool:
    if setting == "auto":
        return decoded_bytes(dataset) <= AUTO_MAX_BYTES
    return bool(setting)


def source_stamp(cfg: DataConfig, dataset: ImageDataset) -> list:
    """What identifies the images: every file under a local path (the bundled MNIST folder when
    there is none; name, size, mtime), else the fingerprint `datasets` gives a hub dataset. Also
    keys the reference statistics of distgan.evaluation.real_stats."""
    local = Path(cfg.path).expanduser() if cfg.path else BUNDLED_DIR if cfg.source == "mnist" else None
    if local is None or not local.exists():
        return [cfg.path, dataset.hf._fingerprint]
    root = local.resolve()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    stamp = [str(root)]
    for path in files:
        info = path.stat()
        stamp.append([str(path.relative_to(root)) if path != root else "", info.st_size, info.st_mtime_ns])
    return stamp


def cache_key(cfg: DataConfig, dataset: ImageDataset) -> str:
    fields = {
        "version": CACHE_VERSION,
        "source": cfg.source,
        "split": cfg.split,
        "image_column": cfg.image_column,
        "label_column": cfg.label_column,
        "resolution": dataset.resolution,
        "channels": dataset.channels,
        "rows": len(dataset),
        "stamp": source_stamp(cfg, dataset),
    }
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return f"{cfg.source}-{cfg.split}-{dataset.resolution}px-{dataset.channels}ch-{digest}"


def decode_all(dataset: ImageDataset, num_workers: int) -> tuple[Tensor, Tensor]:
    """Every image once, in index order, through the dataset's own decoder (so the pixels are
    the DataLoader path's, bit for bit), with `num_workers` processes decoding."""
    c, r = dataset.channels, dataset.resolution
    images = torch.empty(len(dataset), c, r, r, dtype=torch.uint8)
    labels = torch.empty(len(dataset), dtype=torch.int64)
    loader = DataLoader(
        dataset, batch_size=DECODE_BATCH, shuffle=False, num_workers=num_workers, collate_fn=collate_images
    )
    at = 0
    for batch in loader:
        n = len(batch["label"])
        images[at : at + n] = batch["image"]
        labels[at : at + n] = batch["label"]
        at += n
    return images, labels


def decoded_tensors(dataset: ImageDataset, cfg: DataConfig, cache_dir: Path, log=print) -> tuple[Tensor, Tensor]:
    """The decoded dataset, read from the cache (memory-mapped: processes share the pages)
    or decoded now and written there atomically (a crash leaves no partial cache file)."""
    path = cache_dir / f"{cache_key(cfg, dataset)}.pt"
    if not path.is_file():
        log(
            f"distgan: decoding {len(dataset)} images once into {path} "
            f"({decoded_bytes(dataset) / 2**20:.0f} MiB; data.in_memory=false streams them instead)"
        )
        images, labels = decode_all(dataset, cfg.num_workers)
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save({"images": images, "labels": labels}, partial)
        os.replace(partial, path)
    data = torch.load(path, mmap=True, weights_only=True)
    return data["images"], data["labels"]


class InMemoryBatches:
    """This rank's part of each global micro-batch, gathered from tensors on `images.device`.

    Iterates like `accelerator.prepare(build_loader(...))` with split_batches=True: global
    micro-batch k is `stream[start + k*B : start + (k+1)*B]` of the `GlobalBatchSampler`
    stream, and rank r gets its contiguous slice. Indices live on the images' device, so a
    batch is one gather there with no host sync; an epoch's permutation is uploaded once.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        global_micro_batch: int,
        seed: int,
        start: int,
        rank: int = 0,
        world: int = 1,
        device: torch.device | None = None,
    ) -> None:
        if global_micro_batch % world:
            raise ValueError(f"global micro-batch {global_micro_batch} does not split over {world} ranks")
        self.images, self.labels = images, labels
        self.size, self.seed, self.start = global_micro_batch, seed, start
        self.per_rank = global_micro_batch // world
        self.offset = rank * self.per_rank
        self.device = device or images.device

    def _permutation(self, epoch: int) -> Tensor:
        order = epoch_permutation(len(self.images), self.seed, epoch)
        if self.images.device.type == "cuda":
            return order.pin_memory().to(self.images.device, non_blocking=True)
        return order.to(self.images.device)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        n = len(self.images)
        epoch, skip = divmod(self.start, n)
        pending = self._permutation(epoch)[skip:]
        non_blocking = self.device.type == "cuda"
        while True:
            while len(pending) < self.size:
                epoch += 1
                pending = torch.cat([pending, self._permutation(epoch)])
            mine = pending[self.offset : self.offset + self.per_rank]
            pending = pending[self.size :]
            batch = {"image": self.images[mine], "label": self.labels[mine]}
            if batch["image"].device != self.device:  # held on the host, trained on a GPU
                batch = {
                    k: v.pin_memory().to(self.device, non_blocking=non_blocking) if non_blocking else v.to(self.device)
                    for k, v in batch.items()
                }
            yield batch
