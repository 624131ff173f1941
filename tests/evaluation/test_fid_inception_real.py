"""The real FID Inception on real images: runs where the file is already on disk (distgan's
cache, or $DISTGAN_FID_INCEPTION, which CI sets), never downloads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from distgan.evaluation.features import FID_INCEPTION, build_extractor, to_rgb_uint8
from distgan.evaluation.fid_inception import SHA1, default_path, sha1_of

GRID = Path(__file__).resolve().parents[2] / "docs" / "mnist_dcgan_step3000.png"


def real_network() -> Path | None:
    for candidate in (os.environ.get("DISTGAN_FID_INCEPTION"), default_path()):
        if candidate and Path(candidate).is_file() and sha1_of(Path(candidate)) == SHA1:
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def network() -> Path:
    path = real_network()
    if path is None:
        pytest.skip("no FID Inception on disk (python -m distgan.fetch_inception, or set DISTGAN_FID_INCEPTION)")
    return path


def grid_tiles(count: int) -> torch.Tensor:
    """The first `count` 32x32 samples of the README's 8x8 grid (2 px padding), uint8 [N, 1, 32, 32]."""
    pixels = torch.from_numpy(np.array(Image.open(GRID).convert("L")))
    tiles = [pixels[2 + 34 * (i // 8) :][:32, 2 + 34 * (i % 8) :][:, :32] for i in range(count)]
    return torch.stack(tiles)[:, None]


def test_real_network_features_are_the_direct_computation(network: Path):
    extractor = build_extractor(str(network), torch.device("cpu"))
    assert extractor.name == f"torchscript:{network.name}@{SHA1[:12]}" and not extractor.has_logits
    assert extractor.channels_last  # on CPU: faster, and the same features (below)
    images = to_rgb_uint8(grid_tiles(4))
    features, logits = extractor(images)
    assert features.shape == (4, 2048) and logits is None
    assert torch.isfinite(features).all() and (features >= 0).all()  # an average pool of ReLUs
    with torch.no_grad():
        x = F.interpolate((images.float() - 128) / 128, size=(299, 299), mode="bilinear", align_corners=False)
        direct = torch.jit.load(str(network))(x)
    assert torch.allclose(features, direct, rtol=1e-4, atol=1e-5)
    # The inputs differ, so do the features; the previous scaling (x / 127.5 - 1) is measurably off.
    assert (features[0] - features[1]).abs().max() > 0.1
    with torch.no_grad():
        off = torch.jit.load(str(network))(
            F.interpolate(images.float() / 127.5 - 1, size=(299, 299), mode="bilinear", align_corners=False)
        )
    assert (off - features).abs().max() > 1e-3


def test_the_default_spec_uses_the_cached_file(network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # A file with the pinned hash in the cache is used as is: no pip (the index is unreachable here).
    cached = tmp_path / "networks" / default_path().name
    cached.parent.mkdir()
    cached.symlink_to(network)
    monkeypatch.setenv("DISTGAN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("DISTGAN_PIP_ARGS", "--no-index")
    assert build_extractor(FID_INCEPTION, torch.device("cpu")).name == f"torchscript:{cached.name}@{SHA1[:12]}"


@pytest.mark.slow  # the real network on CPU over generated and reference images: ~15 s
def test_evaluate_with_the_default_extractor_end_to_end(
    network: Path, eval_assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    from distgan.evaluate import main

    cached = tmp_path / "networks" / default_path().name
    cached.parent.mkdir()
    cached.symlink_to(network)
    monkeypatch.setenv("DISTGAN_CACHE_DIR", str(tmp_path))
    args = [
        "--num",
        "8",
        "eval.num_real=8",
        "eval.kid_subsets=2",
        "eval.kid_subset_size=4",
        f"eval.stats_cache={tmp_path}",
    ]
    assert main([str(eval_assets["run"]), *args, f"eval.inception={FID_INCEPTION}"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["eval_extractor"] == f"torchscript:{cached.name}@{SHA1[:12]}"
    assert row["eval_protocol"] == "fid-inception/bilinear-uint8" and row["fid"] > 0 and "is" not in row
