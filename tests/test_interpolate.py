"""`python -m distgan.interpolate`: rows of latent walks from the EMA generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

from distgan.generator import load_generator
from distgan.interpolate import interpolate, lerp, slerp
from tests.training.helpers import REPO, train_in_process


def test_slerp_ends_at_the_endpoints_and_keeps_the_norm_of_equal_norm_latents():
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[:, 0], a, atol=1e-5) and torch.allclose(path[:, -1], b, atol=1e-5)
    assert torch.allclose(path.norm(dim=2), a.norm(dim=1, keepdim=True).expand(3, 5), rtol=1e-4)
    assert torch.allclose(
        lerp(a, b, torch.tensor([0.5]))[:, 0], (a + b) / 2, atol=1e-6
    )  # a + (b - a) / 2 rounds differently


def test_cli_grid_rows_walk_between_generator_images(tmp_path: Path, mnist_dir: Path):
    run = train_in_process(tmp_path / "run", mnist_dir, "train.steps=2")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "distgan.interpolate",
            str(run),
            "--out",
            str(tmp_path / "i.png"),
            "--rows",
            "2",
            "--steps",
            "5",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "i.png").size == (5 * 18 + 2, 2 * 18 + 2)
    images = interpolate(run, rows=2, steps=5, seed=0)
    generator = load_generator(run)
    ends = torch.randn(2, 2, generator.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(images[0], generator(ends[0, :1])[0], atol=1e-5)
        assert torch.allclose(images[4], generator(ends[1, :1])[0], atol=1e-5)
