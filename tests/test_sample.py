"""`python -m distgan.sample`: grids from a run directory or a bare safetensors file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distgan.errors import DistganError
from distgan.sample import sample
from tests.training.helpers import REPO, train_in_process


@pytest.fixture
def trained_run(tmp_path: Path, mnist_dir: Path) -> Path:
    return train_in_process(tmp_path / "run", mnist_dir, "train.steps=2")


def run_sample(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "distgan.sample", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_cli_writes_grid_from_run_dir(trained_run: Path, tmp_path: Path):
    out = tmp_path / "grid.png"
    result = run_sample(str(trained_run), "--num", "16", "--out", str(out), "--seed", "3")
    assert result.returncode == 0, result.stderr
    image = Image.open(out)
    assert image.size == (4 * 18 + 2, 4 * 18 + 2) and image.mode == "L"


def test_seed_decides_the_images_and_file_stands_alone(trained_run: Path):
    weights = trained_run / "final" / "generator_ema.safetensors"
    a = sample(trained_run, 4, seed=1)
    assert np.array_equal(a.numpy(), sample(weights, 4, seed=1).numpy())
    assert not np.array_equal(a.numpy(), sample(trained_run, 4, seed=2).numpy())
    assert a.shape == (4, 1, 16, 16) and a.min() >= -1 and a.max() <= 1


def test_bad_sources_are_one_line_errors(tmp_path: Path):
    with pytest.raises(DistganError, match="no generator weights"):
        sample(tmp_path, 4)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(DistganError, match="not a readable safetensors file"):
        sample(junk, 4)
    result = run_sample(str(tmp_path / "missing"), "--out", str(tmp_path / "x.png"))
    assert result.returncode == 2 and result.stderr.startswith("distgan: error: no generator weights")


def test_cli_accepts_a_checkpoint_step_directory(tmp_path: Path, mnist_dir: Path):
    run = train_in_process(tmp_path / "run", mnist_dir, "train.steps=2", "train.checkpoint_every=2")
    step = run / "checkpoints" / "step_2"
    out = tmp_path / "grid.png"
    result = run_sample(f"{step}/", "--num", "4", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (2 * 18 + 2, 2 * 18 + 2)
    # The checkpoint's EMA generator is the one the run ended with at that step.
    assert np.array_equal(sample(step, 4, seed=1).numpy(), sample(run, 4, seed=1).numpy())
