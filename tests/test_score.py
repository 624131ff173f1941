"""`python -m distgan.score`: D's realness per image, as CSV and a sorted contact sheet."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distgan.data import to_float_images
from distgan.generator import load_discriminator
from distgan.score import load_pixels
from tests.training.helpers import REPO, train_in_process


@pytest.fixture
def images(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), "L").save(folder / f"noise_{i}.png")
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), "RGB").save(folder / "sub" / "rgb.jpg")
    (folder / "notes.txt").write_text("not an image")
    return folder


def run_score(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "distgan.score", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_scores_are_sigmoid_of_d_sorted_most_real_first(tmp_path: Path, mnist_dir: Path, images: Path):
    run = train_in_process(tmp_path / "run", mnist_dir, "train.steps=2")
    result = run_score(str(run), str(images), "--csv", str(tmp_path / "s.csv"), "--sheet", str(tmp_path / "s.png"))
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "s.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and not any(r["path"].endswith(".txt") for r in rows)
    realness = [float(r["realness"]) for r in rows]
    assert realness == sorted(realness, reverse=True) and all(0 < p < 1 for p in realness)
    discriminator, cfg = load_discriminator(run)
    paths = [Path(r["path"]) for r in rows]
    with torch.no_grad():
        expected = torch.sigmoid(discriminator(to_float_images(load_pixels(paths, 1, cfg.data.resolution))).reshape(-1))
    np.testing.assert_allclose(realness, expected.numpy(), atol=2e-6)
    sheet = Image.open(tmp_path / "s.png")
    assert sheet.size == (3 * 18 + 2, 2 * 18 + 2)  # 6 images of 16 px in a 3 x 2 grid


def test_unreadable_or_missing_input_is_one_line(tmp_path: Path, mnist_dir: Path, images: Path):
    run = train_in_process(tmp_path / "run", mnist_dir, "train.steps=1")
    missing = run_score(str(run), str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    bad = run_score(str(run), str(broken), "--csv", str(tmp_path / "x.csv"))
    assert bad.returncode == 2 and "cannot be read as an image" in bad.stderr and not (tmp_path / "x.csv").exists()
    assert bad.stderr.strip().count("\n") == 0
