"""The MNIST subset shipped in the package: its files, its contents, and how it was made."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from distgan.config import DataConfig
from distgan.data import build_dataset
from distgan.data.bundled import MNIST_DIR, write_subset
from distgan.data.memory import cache_key
from distgan.data.mnist import IMAGES_MAGIC, LABELS_MAGIC, load_idx_dir
from tests.data._helpers import write_mnist

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("DISTGAN_SHARED_DATA", REPO.parent / "shared" / "data"))
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def test_bundled_files_are_gzipped_idx_with_the_documented_counts():
    assert (MNIST_DIR / "README.md").is_file()
    for name in FILES:
        raw = gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes())
        magic = IMAGES_MAGIC if "images" in name else LABELS_MAGIC
        assert int.from_bytes(raw[:4], "big") == magic and int.from_bytes(raw[4:8], "big") == 10000, name
    for split in ("train", "test"):
        images, labels = load_idx_dir(MNIST_DIR, split)
        assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
        assert sorted(set(labels.tolist())) == list(range(10))
        assert 20 < images.mean() < 50  # digits: dark background, bright strokes


def test_default_mnist_source_is_the_bundled_subset():
    dataset = build_dataset(DataConfig(source="mnist"))
    assert dataset.describe() == "MNIST (bundled subset), split train, 10000 images, 1x32x32"
    assert int(dataset[0]["label"]) == 5  # the first MNIST training digit is a 5
    test = build_dataset(DataConfig(source="mnist", split="test", resolution=28))
    assert test.describe() == "MNIST (bundled subset), split test, 10000 images, 1x28x28"
    assert int(test[0]["label"]) == 7
    # The decoded-pixel cache is keyed by the bundled files, so every run finds it again.
    cfg = DataConfig(source="mnist")
    assert cache_key(cfg, dataset) == cache_key(cfg, build_dataset(cfg))


def test_write_subset_keeps_the_first_train_images_and_every_test_image(tmp_path: Path):
    originals = write_mnist(tmp_path / "full", n_train=30, n_test=12, gz=False)
    first = write_subset(tmp_path / "full", tmp_path / "a", n_train=8)
    write_subset(tmp_path / "full", tmp_path / "b", n_train=8)
    assert sorted(p.name for p in first) == sorted(f"{name}.gz" for name in FILES)
    for path in first:  # reproducible: the same originals give the same bytes
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
    images, labels = load_idx_dir(tmp_path / "a", "train")
    np.testing.assert_array_equal(images, originals["train"][0][:8])
    np.testing.assert_array_equal(labels, originals["train"][1][:8])
    images, labels = load_idx_dir(tmp_path / "a", "test")
    np.testing.assert_array_equal(images, originals["test"][0])
    np.testing.assert_array_equal(labels, originals["test"][1])


@pytest.mark.skipif(
    not (SHARED / "mnist").is_dir(),
    reason=f"no MNIST IDX files at {SHARED / 'mnist'} (set DISTGAN_SHARED_DATA to the shared data folder)",
)
def test_bundled_subset_is_the_start_of_the_real_mnist(tmp_path: Path):
    for path in write_subset(SHARED / "mnist", tmp_path):
        # Decompressed: another zlib may compress the same bytes differently.
        expected = gzip.decompress(path.read_bytes())
        assert gzip.decompress((MNIST_DIR / path.name).read_bytes()) == expected, path.name


def test_a_built_wheel_carries_the_bundled_files(tmp_path: Path):
    # What a non-editable `pip install` gets: the package data, not just the modules.
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    shutil.copytree(REPO / "distgan", src / "distgan", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
    proc = subprocess.run([*build, str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("distgan-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    for name in (*FILES, "README"):
        suffix = ".md" if name == "README" else ".gz"
        assert f"distgan/data/bundled_mnist/{name}{suffix}" in inside, name
