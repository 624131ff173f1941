"""The DataLoader of GLOBAL micro-batches, its collate, and the uint8 -> [-1, 1] conversion.

Batches stay uint8 on the host (4x less to copy and pin than float32); the trainer moves them
to the device and calls `to_float_images` there. See distgan.data.sampler for how to
`accelerator.prepare` the loader.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from distgan.data.sampler import GlobalBatchSampler

PREFETCH_FACTOR = 4  # batches in flight per worker: small uint8 batches, so cheap to hold


def collate_images(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """[{"image": uint8 [C,R,R], "label": int64 []}] -> {"image": uint8 [b,C,R,R], "label": int64 [b]}."""
    return {"image": torch.stack([it["image"] for it in items]), "label": torch.stack([it["label"] for it in items])}


def build_loader(dataset: Dataset, global_micro_batch: int, seed: int, start: int, num_workers: int) -> DataLoader:
    """An infinite loader of global micro-batches drawn by `GlobalBatchSampler(len(dataset), ...)`."""
    extra = {"persistent_workers": True, "prefetch_factor": PREFETCH_FACTOR} if num_workers > 0 else {}
    return DataLoader(
        dataset,
        batch_sampler=GlobalBatchSampler(len(dataset), global_micro_batch, seed, start),
        num_workers=num_workers,
        collate_fn=collate_images,
        pin_memory=torch.cuda.is_available(),
        # Worker seeds come from this generator instead of the global torch RNG, so starting
        # iteration does not consume global randomness (the model's stream stays as it was).
        generator=torch.Generator().manual_seed(seed),
        **extra,
    )


def to_float_images(images: Tensor) -> Tensor:
    """uint8 images (any shape, any device) -> float32 in [-1, 1]: 0 -> -1, 255 -> 1."""
    if images.dtype != torch.uint8:
        raise TypeError(f"to_float_images expects uint8 images, got {images.dtype}: convert only once")
    return images.float().div_(127.5).sub_(1.0)
