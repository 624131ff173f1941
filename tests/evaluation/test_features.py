"""The pinned preprocessing and the TorchScript extractor, with a tiny random network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from distgan.evaluation.features import EvaluationError, TorchScriptExtractor, build_extractor, prepare, to_uint8
from distgan.utils.images import image_grid
from tests.evaluation.tiny_extractor import write_tiny_extractor


def test_grayscale_is_resized_to_299_and_repeated_to_three_channels():
    images = torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8)
    out = prepare(images)
    assert out.shape == (3, 3, 299, 299) and out.dtype == torch.uint8
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    expected = F.interpolate(images.float(), size=(299, 299), mode="bicubic", align_corners=False, antialias=True)
    assert torch.equal(out[:, :1], expected.round().clamp(0, 255).to(torch.uint8))


def test_images_already_at_299_pass_unchanged():
    images = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8)
    assert torch.equal(prepare(images), images)


def test_generated_images_are_quantized_like_the_saved_grids():
    images = torch.rand(1, 1, 8, 8) * 2.2 - 1.1  # a little outside [-1, 1] too
    grid = image_grid(images, padding=0)
    assert torch.equal(to_uint8(images)[0, 0], torch.from_numpy(grid))


def test_torchscript_extractor_features_logits_and_name(tmp_path: Path):
    plain = build_extractor(str(write_tiny_extractor(tmp_path / "a.pt")), torch.device("cpu"))
    with_logits = build_extractor(str(write_tiny_extractor(tmp_path / "b.pt", logits=True)), torch.device("cpu"))
    images = prepare(torch.randint(0, 256, (4, 1, 32, 32), dtype=torch.uint8))
    features, logits = plain(images)
    assert features.shape == (4, 32) and logits is None and not plain.has_logits
    features_b, logits_b = with_logits(images)
    assert logits_b.shape == (4, 10) and with_logits.has_logits
    assert plain.name.startswith("torchscript:a.pt@") and plain.name != with_logits.name.replace("b.pt", "a.pt")


def test_missing_or_wrong_extractor_file_is_one_clear_line(tmp_path: Path):
    with pytest.raises(EvaluationError, match=r"eval.inception=.*nope.pt: no such file.*fid-inception") as err:
        TorchScriptExtractor(tmp_path / "nope.pt", torch.device("cpu"))
    assert "\n" not in str(err.value)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a network")
    with pytest.raises(EvaluationError, match="is not a TorchScript file") as err:
        TorchScriptExtractor(junk, torch.device("cpu"))
    assert "\n" not in str(err.value)
