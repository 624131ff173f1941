"""Shared fixtures: tiny real datasets written to disk, and a clean accelerate state per test."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("DISTGAN_SHARED_DATA", REPO.parent / "shared" / "data"))


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    """Writes `array` (uint8) in the MNIST IDX format: magic, dims, raw bytes."""
    magic = 2051 if array.ndim == 3 else 2049
    payload = struct.pack(">i", magic) + b"".join(struct.pack(">i", d) for d in array.shape)
    payload += array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_mnist(root: Path, n: int = 64, seed: int = 0, gz: bool = True) -> Path:
    """Four IDX files with `n` train and `n // 2` test images of blurry strokes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", n), ("t10k", n // 2)):
        images = np.zeros((count, 28, 28), np.uint8)
        for i in range(count):
            r0, c0 = rng.integers(4, 16, size=2)
            images[i, r0 : r0 + 10, c0 : c0 + 3] = 255
        write_idx(root / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, count).astype(np.uint8), gz)
    return root


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    return write_mnist(tmp_path / "mnist")


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    # Accelerator state is process-global; each in-process run must start from scratch.
    yield
    from tests.training.helpers import reset_accelerate

    reset_accelerate()
