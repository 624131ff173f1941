"""save_pretrained -> from_pretrained gives the same generator; the folder is a model card and a
`load_generator` source for the CLIs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import distgan
from distgan.errors import DistganError
from tests.conftest import write_mnist
from tests.training.helpers import REPO, train_in_process


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> distgan.Generator:
    root = tmp_path_factory.mktemp("share")
    run = train_in_process(root / "run", write_mnist(root / "mnist"), "train.steps=3")
    return distgan.load_generator(run)


def test_save_then_load_gives_identical_samples_and_a_card(generator: distgan.Generator, tmp_path: Path):
    folder = generator.save_pretrained(tmp_path / "shared", metrics={"fid": 12.5, "kid": 0.01, "eval_extractor": "x"})
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.yaml",
        "generator_ema.safetensors",
        "samples.png",
    ]
    loaded = distgan.Generator.from_pretrained(folder)
    assert (loaded.z_dim, loaded.channels, loaded.resolution, loaded.step) == (8, 1, 16, 3)
    assert torch.equal(loaded.sample(8, seed=4), generator.sample(8, seed=4))
    card = (folder / "README.md").read_text()
    assert "library_name: distgan" in card and "FID 12.500" in card and '"eval_extractor": "x"' in card
    assert f"distgan {distgan.__version__}" in card and "trained for 3 steps" in card
    assert Image.open(folder / "samples.png").size == (8 * 18 + 2, 8 * 18 + 2)


def test_the_folder_is_a_source_for_the_sample_cli(generator: distgan.Generator, tmp_path: Path):
    folder = generator.save_pretrained(tmp_path / "shared")
    assert "not measured" in (folder / "README.md").read_text()
    out = tmp_path / "grid.png"
    result = subprocess.run(
        [sys.executable, "-m", "distgan.sample", str(folder), "--num", "4", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert out.is_file()


def test_an_unknown_source_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network in tests: the hub lookup fails at once
    with pytest.raises(DistganError, match="neither a local folder nor a hub model") as caught:
        distgan.Generator.from_pretrained("nobody/no-such-distgan-model")
    assert "\n" not in str(caught.value)
