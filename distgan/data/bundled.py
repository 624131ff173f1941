"""The MNIST subset shipped inside the package, so the default run needs no network.

`MNIST_DIR` holds the first 10,000 MNIST training digits and all 10,000 test digits as the
four gzipped IDX files `data.source=mnist` reads (see bundled_mnist/README.md for the
attribution). `write_subset` made them from the four original files:

    from distgan.data.bundled import write_subset
    write_subset("DIR_OF_THE_FOUR_ORIGINALS", "distgan/data/bundled_mnist")

gzip is written with mtime=0 and no file name, so the same originals give the same bytes.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from distgan.data.mnist import BUNDLED_DIR, IMAGES_MAGIC, LABELS_MAGIC, idx_names, load_idx_dir

MNIST_DIR = BUNDLED_DIR
N_TRAIN = 10000


def idx_file_bytes(magic: int, array: np.ndarray) -> bytes:
    """IDX bytes: big-endian int32 magic, one big-endian int32 per dimension, raw uint8."""
    header = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_subset(source_dir: str | Path, out_dir: str | Path, n_train: int = N_TRAIN) -> list[Path]:
    """The first `n_train` training digits and every test digit of the IDX files in `source_dir`
    (plain or .gz), written to `out_dir` as reproducible .gz IDX files; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, keep in (("train", n_train), ("test", None)):
        images, labels = load_idx_dir(Path(source_dir), split)
        for base, magic, array in zip(idx_names(split), (IMAGES_MAGIC, LABELS_MAGIC), (images, labels)):
            path = out / f"{base}.gz"
            path.write_bytes(gzip.compress(idx_file_bytes(magic, array[:keep]), compresslevel=9, mtime=0))
            written.append(path)
    return written
