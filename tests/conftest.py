"""Shared fixtures: tiny real datasets written to disk, and a clean accelerate state per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data._helpers import IMAGES_MAGIC, LABELS_MAGIC, write_idx


def write_mnist(root: Path, n: int = 64, seed: int = 0, gz: bool = True) -> Path:
    """Four IDX files with `n` train and `n // 2` test images of blurry strokes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", n), ("t10k", n // 2)):
        images = np.zeros((count, 28, 28), np.uint8)
        for i in range(count):
            r0, c0 = rng.integers(4, 16, size=2)
            images[i, r0 : r0 + 10, c0 : c0 + 3] = 255
        write_idx(root / f"{prefix}-images-idx3-ubyte", IMAGES_MAGIC, images, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", LABELS_MAGIC, rng.integers(0, 10, count).astype(np.uint8), gz)
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


@pytest.fixture(autouse=True)
def _private_decode_cache(tmp_path_factory, monkeypatch):
    # In-memory datasets are decoded once into a cache; keep the tests' caches out of ~/.cache
    # (launched runs inherit the variable).
    monkeypatch.setenv("DISTGAN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "distgan-cache"))
