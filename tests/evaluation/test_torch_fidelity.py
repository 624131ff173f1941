"""eval.inception=torch-fidelity: the optional extractor, where torch-fidelity and its weights are
on disk (tests never download them), and its one-line error where the package is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from distgan.evaluation.features import EvaluationError, build_extractor

# Where torch-fidelity's FeatureExtractorInceptionV3 keeps the weights it downloads on first use.
WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
HAS_TORCH_FIDELITY = importlib.util.find_spec("torch_fidelity") is not None


def weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME


def test_torch_fidelity_extractor_gives_2048_features_and_logits():
    if not HAS_TORCH_FIDELITY:
        pytest.skip("torch-fidelity is not installed (pip install -e '.[torch-fidelity]')")
    if not weights_path().is_file():
        pytest.skip(f"torch-fidelity's Inception weights are not at {weights_path()} (tests do not download them)")
    extractor = build_extractor("torch-fidelity", torch.device("cpu"))
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    features, logits = extractor(images)
    assert extractor.name == "torch-fidelity:inception-v3-compat" and extractor.protocol == "torch-fidelity/uint8"
    assert features.shape == (2, 2048) and logits is not None and logits.shape == (2, 1008)
    assert torch.isfinite(features).all() and not torch.equal(features[0], features[1])


def test_missing_torch_fidelity_is_one_line_naming_the_extra_and_the_default():
    if HAS_TORCH_FIDELITY:
        pytest.skip("torch-fidelity is installed: the missing-package error cannot happen here")
    with pytest.raises(EvaluationError) as err:
        build_extractor("torch-fidelity", torch.device("cpu"))
    message = str(err.value)
    assert "\n" not in message
    assert "pip install torch-fidelity" in message and "torchvision" in message
    assert "eval.inception=fid-inception" in message
