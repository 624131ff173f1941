"""build_loader: global micro-batches of uint8 images, identical however many ranks slice them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest
import torch

from distgan.data import GlobalBatchSampler, build_dataset, build_loader, to_float_images
from distgan.errors import DataError
from tests.data._helpers import folder_cfg, mnist_cfg, save_image, solid, write_mnist
from tests.training.helpers import accelerate_launch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("_shard_script.py")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """An MNIST-format dataset of 30 samples whose label and pixel (0, 0) are their index."""
    root = tmp_path_factory.mktemp("indexed")
    write_mnist(root, n_train=30, n_test=4)
    return root, build_dataset(mnist_cfg(root, resolution=28))


def first_batches(loader, k: int) -> list[dict[str, torch.Tensor]]:
    return list(islice(iter(loader), k))


def test_batches_are_the_sampler_batches(indexed):
    _, ds = indexed
    expected = list(islice(iter(GlobalBatchSampler(len(ds), 8, seed=4, start=5)), 10))
    batches = first_batches(build_loader(ds, 8, seed=4, start=5, num_workers=0), 10)
    for batch, idx in zip(batches, expected):
        assert set(batch) == {"image", "label"}
        assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (8, 1, 28, 28)
        assert batch["label"].dtype == torch.int64 and batch["label"].tolist() == idx
        assert batch["image"][:, 0, 0, 0].tolist() == idx  # the pixels belong to the same samples


def test_workers_do_not_change_the_stream(indexed):
    _, ds = indexed
    plain = first_batches(build_loader(ds, 6, seed=1, start=0, num_workers=0), 12)
    workers = first_batches(build_loader(ds, 6, seed=1, start=0, num_workers=2), 12)
    for a, b in zip(plain, workers, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])


def test_loader_options_and_infinite_length(indexed):
    _, ds = indexed
    loader = build_loader(ds, 4, seed=0, start=0, num_workers=2)
    assert loader.pin_memory == torch.cuda.is_available()
    assert loader.persistent_workers and loader.prefetch_factor >= 2
    assert isinstance(loader.batch_sampler, GlobalBatchSampler) and loader.batch_sampler.batch_size == 4
    with pytest.raises(TypeError):
        len(loader)
    assert not build_loader(ds, 4, seed=0, start=0, num_workers=0).persistent_workers


@pytest.mark.parametrize("workers", [0, 2])
def test_iterating_leaves_the_global_rng_alone(indexed, workers):
    _, ds = indexed
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first_batches(build_loader(ds, 4, seed=0, start=0, num_workers=workers), 3)
    assert torch.equal(state, torch.get_rng_state())


def test_to_float_images():
    x = torch.tensor([0, 255, 51], dtype=torch.uint8)
    y = to_float_images(x)
    assert y.dtype == torch.float32
    assert torch.allclose(y, torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))
    with pytest.raises(TypeError):
        to_float_images(y)  # converting twice is a bug, not a no-op


def test_corrupt_image_in_a_worker_is_one_named_line(tmp_path):
    for i in range(6):
        save_image(tmp_path / f"{i}.png", solid("RGB", (8, 8), (i, i, i)))
    bad = tmp_path / "3.png"
    bad.write_bytes(os.urandom(200))
    ds = build_dataset(folder_cfg(tmp_path, resolution=8))  # image 0 is fine: the build passes
    loader = build_loader(ds, 6, seed=0, start=0, num_workers=2)  # the first batch holds every image
    with pytest.raises(DataError) as err:
        next(iter(loader))
    msg = str(err.value)
    assert "\n" not in msg and str(bad) in msg and msg.startswith(str(bad))


def _run_script(data: Path, out: Path, processes: int, tmp_path: Path) -> list[dict]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "ACCELERATE_USE_CPU": "1",
        # No user accelerate config (it lives under HF_HOME) may change the launch.
        "HF_HOME": str(tmp_path / "hf_home"),
    }
    if processes == 1:
        cmd = [sys.executable, str(SCRIPT), str(data), str(out), "1"]
    else:
        # `--cpu --num_processes 2` starts ONE process in accelerate 1.15 (multi-CPU there means
        # mpirun); torchrun through --multi_gpu with ACCELERATE_USE_CPU=1 gives real gloo ranks.
        cmd = [
            *accelerate_launch(processes),
            str(SCRIPT),
            str(data),
            str(out),
            str(processes),
        ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(processes)]


@pytest.mark.slow
def test_two_processes_split_the_global_batch_like_one(tmp_path):
    data = tmp_path / "mnist"
    write_mnist(data, n_train=30, n_test=4)
    one = _run_script(data, tmp_path / "one", 1, tmp_path)[0]
    two = _run_script(data, tmp_path / "two", 2, tmp_path)
    assert one["num_processes"] == 1 and [r["num_processes"] for r in two] == [2, 2]

    from tests.data._shard_script import GLOBAL_BATCH, SEED, SETTINGS, STEPS

    for k, (workers, start) in enumerate(SETTINGS):
        expected = list(islice(iter(GlobalBatchSampler(30, GLOBAL_BATCH, SEED, start)), STEPS))
        assert one["runs"][k]["labels"] == expected and one["runs"][k]["pixels"] == expected
        for step in range(STEPS):
            joined = two[0]["runs"][k]["labels"][step] + two[1]["runs"][k]["labels"][step]
            assert joined == expected[step], (workers, start, step)
            pixels = two[0]["runs"][k]["pixels"][step] + two[1]["runs"][k]["pixels"][step]
            assert pixels == expected[step]
        for rank, run in enumerate(r["runs"][k] for r in two):
            half = GLOBAL_BATCH // 2
            assert run["shape"] == [half, 1, 28, 28] and run["len"] == "TypeError"
            assert run["batch_sampler"] == "BatchSamplerShard"
            # Each rank's dataset is asked for its own slice only: it decodes nothing else.
            assert run["index_batch"] == expected[0][rank * half : (rank + 1) * half]
    assert all(r["global_rng_untouched"] for r in [one, *two])
