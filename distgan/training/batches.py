"""Where the trainer's real images come from: an in-memory tensor or a DataLoader.

Both present the same interface, an iterable of `{"image": uint8 [b, C, R, R], "label": [b]}`
on the accelerator's device holding this rank's slice of each global micro-batch, in the
same order (distgan.data.memory proves it), so the loop never knows which one it reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from accelerate import Accelerator
from torch import Tensor
from torch.utils.data import Dataset

from distgan.config import Config
from distgan.data import ImageDataset, build_loader
from distgan.data.memory import InMemoryBatches, decoded_tensors, fits_in_memory
from distgan.paths import cache_dir


def real_batches(dataset: Dataset, cfg: Config, accelerator: Accelerator, start: int) -> Iterable[dict[str, Tensor]]:
    """`data.in_memory` (auto: when the decoded pixels fit in distgan.data.memory.AUTO_MAX_BYTES):
    decode once (cached on disk), hold on the device when `data.on_device`, gather batches there.
    Otherwise the DataLoader with `data.num_workers` workers, pinned memory and prefetch."""
    acc = accelerator
    micro = cfg.train.batch_size // cfg.train.grad_accum
    # A dataset of your own streams: decoding it into the cache needs distgan's ImageDataset.
    if not isinstance(dataset, ImageDataset) or not fits_in_memory(cfg.data.in_memory, dataset):
        return acc.prepare(build_loader(dataset, micro, cfg.seed, start, cfg.data.num_workers))
    cache = Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else cache_dir()
    # One decoding per machine; the other local processes then map the cached file.
    with acc.local_main_process_first():
        images, labels = decoded_tensors(dataset, cfg.data, cache, log=acc.print)
    if cfg.data.on_device:
        images, labels = images.to(acc.device), labels.to(acc.device)
    return InMemoryBatches(images, labels, micro, cfg.seed, start, acc.process_index, acc.num_processes, acc.device)
