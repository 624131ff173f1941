"""The in-memory data path: the DataLoader path's batches, bit for bit, from a cached tensor."""

from __future__ import annotations

import os
from itertools import islice

import pytest
import torch

from distgan.data import build_dataset, build_loader
from distgan.data.memory import InMemoryBatches, cache_key, decode_all, decoded_tensors, fits_in_memory
from tests.data._helpers import folder_cfg, mnist_cfg, save_image, solid, write_mnist


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """30 MNIST-format samples whose label and pixel (0, 0) are their index, resized to 32."""
    root = tmp_path_factory.mktemp("indexed")
    write_mnist(root, n_train=30, n_test=4)
    return root, build_dataset(mnist_cfg(root, resolution=32))


@pytest.mark.parametrize("batch, start", [(8, 0), (8, 27), (12, 5), (40, 3)])  # 40 > dataset: several epochs per batch
def test_same_batches_as_the_dataloader_on_every_rank(indexed, batch, start):
    _, ds = indexed
    images, labels = decode_all(ds, num_workers=0)
    loader = list(islice(iter(build_loader(ds, batch, seed=3, start=start, num_workers=0)), 9))
    for world in (1, 2, 4):
        per = batch // world
        ranks = [
            list(islice(iter(InMemoryBatches(images, labels, batch, 3, start, rank, world)), 9))
            for rank in range(world)
        ]
        for k, expected in enumerate(loader):
            for rank in range(world):
                # accelerate's split_batches hands rank r this contiguous slice (tests/data/test_loader.py).
                part = slice(rank * per, (rank + 1) * per)
                assert torch.equal(ranks[rank][k]["image"], expected["image"][part]), (world, rank, k)
                assert torch.equal(ranks[rank][k]["label"], expected["label"][part]), (world, rank, k)


def test_resuming_mid_stream_continues_the_stream(indexed):
    _, ds = indexed
    images, labels = decode_all(ds, num_workers=0)
    whole = [b["label"] for b in islice(iter(InMemoryBatches(images, labels, 7, 1, 0)), 10)]
    resumed = [b["label"] for b in islice(iter(InMemoryBatches(images, labels, 7, 1, 4 * 7)), 6)]
    assert all(torch.equal(a, b) for a, b in zip(whole[4:], resumed, strict=True))


def test_decoded_once_then_read_from_the_cache(indexed, tmp_path):
    root, ds = indexed
    cfg = mnist_cfg(root, resolution=32, num_workers=2)
    messages: list[str] = []
    images, labels = decoded_tensors(ds, cfg, tmp_path, log=messages.append)
    assert len(messages) == 1 and "decoding 30 images" in messages[0]
    expected = decode_all(ds, num_workers=0)
    assert images.dtype == torch.uint8 and images.shape == (30, 1, 32, 32)
    assert torch.equal(images, expected[0]) and torch.equal(labels, expected[1])  # workers: same pixels
    (cached,) = tmp_path.glob("*.pt")
    again = decoded_tensors(ds, cfg, tmp_path, log=messages.append)
    assert len(messages) == 1, "the second call decoded again instead of reading the cache"
    assert torch.equal(again[0], images) and list(tmp_path.glob("*.pt")) == [cached]


def test_cache_key_follows_resolution_channels_split_and_file_changes(tmp_path):
    root = tmp_path / "m"
    write_mnist(root, n_train=6, n_test=2)
    base = mnist_cfg(root, resolution=32)
    key = cache_key(base, build_dataset(base))
    for other in (
        mnist_cfg(root, resolution=16),
        mnist_cfg(root, resolution=32, channels=3),
        mnist_cfg(root, resolution=32, split="test"),
    ):
        assert cache_key(other, build_dataset(other)) != key
    assert cache_key(base, build_dataset(base)) == key  # stable across runs
    first = root / "train-images-idx3-ubyte.gz"
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))  # the file was replaced
    assert cache_key(base, build_dataset(base)) != key


def test_image_folder_round_trips_through_the_cache(tmp_path):
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        save_image(tmp_path / "imgs" / f"c{i % 2}" / f"{i}.png", solid("RGB", (20, 12), colour))
    cfg = folder_cfg(tmp_path / "imgs", resolution=8)
    ds = build_dataset(cfg)
    images, labels = decoded_tensors(ds, cfg, tmp_path / "cache", log=lambda _: None)
    for i in range(len(ds)):
        assert torch.equal(images[i], ds[i]["image"]) and labels[i] == ds[i]["label"]


def test_auto_holds_what_fits(indexed, monkeypatch):
    _, ds = indexed
    assert fits_in_memory("auto", ds) and fits_in_memory(True, ds) and not fits_in_memory(False, ds)
    monkeypatch.setattr("distgan.data.memory.AUTO_MAX_BYTES", 30 * 32 * 32 - 1)
    assert not fits_in_memory("auto", ds)
