"""The data layer: datasets of uint8 images and the infinite, rank-sliceable loader.

dataset = build_dataset(cfg.data)                  # items {"image": uint8 [C,R,R], "label": int64 []}
loader = build_loader(dataset, micro, seed, start, cfg.data.num_workers)
loader = accelerator.prepare(loader)               # DataLoaderConfiguration(split_batches=True)
real = to_float_images(next(batches)["image"])     # on the device: float32 in [-1, 1]
"""

from distgan.data.dataset import ImageDataset
from distgan.data.images import ImageDecodeError
from distgan.data.loader import build_loader, collate_images, to_float_images
from distgan.data.sampler import GlobalBatchSampler, seed_for
from distgan.data.sources import build_dataset

__all__ = [
    "GlobalBatchSampler",
    "ImageDataset",
    "ImageDecodeError",
    "build_dataset",
    "build_loader",
    "collate_images",
    "seed_for",
    "to_float_images",
]
