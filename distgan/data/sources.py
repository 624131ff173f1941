"""`build_dataset(cfg.data)`: the configured source as an `ImageDataset`, checked before training.

Sources: mnist (IDX files, or without data.path the subset bundled in the package:
distgan.data.mnist), imagefolder (distgan.data.folder), hf (save_to_disk directory or hub
id, distgan.data.hub). Whatever the source, items are
`{"image": uint8 [C, R, R], "label": int64 []}` with C = data.channels (default 1 for mnist,
3 otherwise) and R = data.resolution: images of any mode and size are converted, resized on
the shorter side and centre-cropped (distgan.data.images). The result is a thin torch Dataset
over the Hugging Face `datasets.Dataset` (kept as `.hf`), not `hf.with_transform`: see
distgan.data.dataset for why.
"""

from __future__ import annotations

from distgan.config import DataConfig
from distgan.data.dataset import ImageDataset
from distgan.data.folder import load_folder
from distgan.data.hub import load_hf
from distgan.data.mnist import load_mnist

LOADERS = {"mnist": load_mnist, "imagefolder": load_folder, "hf": load_hf}


def build_dataset(cfg: DataConfig) -> ImageDataset:
    """The dataset of `cfg`; paths, files, columns and the first image are checked now, so a
    DataError (one line: the problem and the fix) comes before any training starts."""
    channels = cfg.channels or (1 if cfg.source == "mnist" else 3)
    dataset = LOADERS[cfg.source](cfg, channels)
    dataset[0]  # decode one image now: a wrong column or unreadable data fails here, not in a worker
    return dataset
