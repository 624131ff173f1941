"""Writers of small REAL data for the data tests: IDX files, image folders, saved datasets."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from distgan.config import DataConfig

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_idx(path: Path, magic: int, array: np.ndarray, gz: bool) -> Path:
    data = idx_bytes(magic, array)
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def indexed_digits(n: int, h: int = 28, w: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n random uint8 images whose label is their index (n <= 256), so a label names its sample."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)  # pixel (0, 0) names the sample too
    return images, np.arange(n, dtype=np.uint8)


def write_mnist(
    root: Path, n_train: int = 40, n_test: int = 12, gz: bool = True, h: int = 28, w: int = 28
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images, labels = indexed_digits(n, h, w, seed=n)
        write_idx(root / f"{prefix}-images-idx3-ubyte", IMAGES_MAGIC, images, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", LABELS_MAGIC, labels, gz)
        out[split] = (images, labels)
    return out


def save_image(path: Path, img: Image.Image, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kwargs)
    return path


def solid(mode: str, size: tuple[int, int], color) -> Image.Image:
    return Image.new(mode, size, color)


def mnist_cfg(path: Path | str | None, **kw) -> DataConfig:
    return DataConfig(source="mnist", path=None if path is None else str(path), **kw)


def folder_cfg(path: Path | str, **kw) -> DataConfig:
    return DataConfig(source="imagefolder", path=str(path), **kw)


def hf_cfg(path: Path | str, **kw) -> DataConfig:
    return DataConfig(source="hf", path=str(path), **kw)
