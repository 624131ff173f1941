"""MNIST-format data (MNIST, Fashion-MNIST, ...) from the four IDX files, or from the hub.

`data.path=DIR`: DIR holds train-images-idx3-ubyte, train-labels-idx1-ubyte,
t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each plain or gzipped (.gz). split
train reads train-*, split test reads t10k-*. IDX: big-endian int32 magic (2051 images,
2049 labels), one big-endian int32 per dimension, then raw uint8.
Without data.path: the subset bundled in the package (bundled_mnist/: the first 10,000
training digits and all 10,000 test digits), the same on every machine and with no network.
The hub's copy is `data.source=hf data.path=ylecun/mnist`.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
from datasets.features.features import Array2DExtensionType

from distgan.config import DataConfig
from distgan.data.dataset import ImageDataset
from distgan.errors import DataError

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled_mnist"
PREFIX = {"train": "train", "test": "t10k"}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def idx_names(split: str) -> tuple[str, str]:
    return f"{PREFIX[split]}-images-idx3-ubyte", f"{PREFIX[split]}-labels-idx1-ubyte"


def _find(root: Path, base: str) -> Path | None:
    for candidate in (root / base, root / f"{base}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """One IDX file -> uint8 array of its dimensions; DataError on any inconsistency."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read ({err}): download the file again") from None
    ndim = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes, header needs {header}): download it again")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path}: bad IDX magic {found} (expected {magic}): is this the right file? download it again")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    size = header + int(np.prod(dims))
    if len(raw) != size:
        problem = "truncated" if len(raw) < size else "too long"
        raise DataError(f"{path}: {problem} IDX file ({len(raw)} bytes, dims {dims} need {size}): download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def array_dataset(images: np.ndarray, labels: np.ndarray) -> datasets.Dataset:
    """uint8 [N, H, W] + labels -> an in-memory Dataset with an Array2D column, built straight
    from Arrow buffers (from_dict would walk 60k images in Python: ~15x slower)."""
    n, h, w = images.shape
    values = pa.array(images.reshape(-1))
    rows = pa.ListArray.from_arrays(pa.array(np.arange(0, n * h * w + 1, w, dtype=np.int32)), values)
    grid = pa.ListArray.from_arrays(pa.array(np.arange(0, n * h + 1, h, dtype=np.int32)), rows)
    column = pa.ExtensionArray.from_storage(Array2DExtensionType((h, w), "uint8"), grid)
    features = datasets.Features({"image": datasets.Array2D((h, w), "uint8"), "label": datasets.Value("int64")})
    table = pa.table({"image": column, "label": pa.array(labels.astype(np.int64))})
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features))


def load_idx_dir(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    if not root.is_dir():
        raise DataError(f"data.path={root} is not a directory: point it at the folder holding the MNIST IDX files")
    if split not in PREFIX:
        raise DataError(f"data.split={split!r}: MNIST IDX files have splits train and test")
    names = idx_names(split)
    paths = [_find(root, base) for base in names]
    if None in paths:
        missing = [base for base, p in zip(names, paths) if p is None]
        raise DataError(
            f"{root}: missing {', '.join(missing)} (plain or .gz): expected {', '.join(names)} for split {split}"
        )
    images, labels = read_idx(paths[0], IMAGES_MAGIC), read_idx(paths[1], LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{root}: {len(images)} images but {len(labels)} labels for split {split}: "
            f"the files come from different sets; download them again"
        )
    return images, labels


def load_mnist(cfg: DataConfig, channels: int) -> ImageDataset:
    if cfg.path is None:
        root, name = BUNDLED_DIR, f"MNIST (bundled subset), split {cfg.split}"
    else:
        root = Path(cfg.path).expanduser()
        name = f"MNIST {root}, split {cfg.split}"
    images, labels = load_idx_dir(root, cfg.split)
    return ImageDataset(
        array_dataset(images, labels),
        image_column="image",
        label_column="label",
        channels=channels,
        resolution=cfg.resolution,
        name=name,
        pixels=images,
    )
