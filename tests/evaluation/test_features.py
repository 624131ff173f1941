"""The pinned preprocessing and the TorchScript extractor, with a tiny random network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distgan.evaluation.features import (
    RESIZER,
    EvaluationError,
    TorchScriptExtractor,
    build_extractor,
    fid_inception_input,
    to_rgb_uint8,
    to_uint8,
)
from distgan.utils.images import image_grid
from tests.evaluation.tiny_extractor import write_tiny_extractor


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_grayscale_is_repeated_to_three_channels_at_its_own_size():
    images = torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8)
    out = to_rgb_uint8(images)
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.uint8
    assert all(torch.equal(out[:, c], images[:, 0]) for c in range(3))


def test_fid_inception_scaling_is_x_minus_128_over_128():
    # The TF graph, torch-fidelity and clean-fid feed (x - 128) / 128, not x / 127.5 - 1.
    x = fid_inception_input(torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 299, 299))
    assert x[0, :, 0, 0].tolist() == [-1.0, 0.0, 127 / 128]


class ViewsItsInput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], -1)[:, :8]


def test_a_user_network_gets_its_input_contiguous(tmp_path: Path):
    # Only the FID Inception is fed channels-last (faster on CPU); .view() refuses such a tensor.
    path = tmp_path / "views.pt"
    torch.jit.script(ViewsItsInput()).save(str(path))
    extractor = TorchScriptExtractor(path, torch.device("cpu"))
    features, _ = extractor(to_rgb_uint8(torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)))
    assert features.shape == (2, 8) and not extractor.channels_last


def test_default_protocol_is_scale_then_torch_bilinear_to_299(tmp_path: Path):
    # Through the real extractor class with an identity network: what the network sees.
    path = tmp_path / "identity.pt"
    torch.jit.script(Identity()).save(str(path))
    extractor = TorchScriptExtractor(path, torch.device("cpu"))
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    seen, _ = extractor(to_rgb_uint8(images))
    rgb = images.float().repeat(1, 3, 1, 1)
    expected = F.interpolate((rgb - 128) / 128, size=(299, 299), mode="bilinear", align_corners=False)
    assert torch.allclose(seen, expected.flatten(1), atol=1e-6)
    # Not the previous protocol (antialiased bicubic in float, rounded to uint8, then x / 127.5 - 1).
    old = F.interpolate(rgb, size=(299, 299), mode="bicubic", align_corners=False, antialias=True)
    assert not torch.allclose(seen, (old.round().clamp(0, 255) / 127.5 - 1).flatten(1), atol=1e-3)
    assert extractor.protocol == "fid-inception/bilinear-uint8"


def test_clean_resizer_is_pil_bicubic_on_the_float_image_clipped(tmp_path: Path):
    # clean-fid: each channel as a PIL float ("F") image, BICUBIC to 299, clipped to [0, 255].
    Image = pytest.importorskip("PIL.Image", reason="Pillow is needed to compare against PIL's resizer")
    path = tmp_path / "identity.pt"
    torch.jit.script(Identity()).save(str(path))
    extractor = TorchScriptExtractor(path, torch.device("cpu"), resize="clean")
    images = torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8)
    seen, _ = extractor(images)
    pil = [
        [
            torch.from_numpy(
                np.asarray(Image.fromarray(images[n, c].float().numpy(), mode="F").resize((299, 299), Image.BICUBIC))
            )
            for c in range(3)
        ]
        for n in range(2)
    ]
    expected = (torch.stack([torch.stack(p) for p in pil]).clamp(0, 255) - 128) / 128
    assert torch.allclose(seen, expected.flatten(1), atol=2e-3)
    # Not the default protocol, and named apart in rows and in the statistics cache key.
    default, _ = TorchScriptExtractor(path, torch.device("cpu"))(images)
    assert not torch.allclose(seen, default, atol=1e-2)
    assert extractor.protocol == "fid-inception/clean-bicubic" and extractor.resizer != RESIZER


def test_unknown_resizer_and_resizer_with_torch_fidelity_are_one_line(tmp_path: Path):
    path = tmp_path / "identity.pt"
    torch.jit.script(Identity()).save(str(path))
    with pytest.raises(EvaluationError, match=r"eval.resize=lanczos: unknown; use one of bilinear, clean"):
        TorchScriptExtractor(path, torch.device("cpu"), resize="lanczos")
    with pytest.raises(EvaluationError, match=r"eval.resize=clean applies to fid-inception .*torch-fidelity resizes"):
        build_extractor("torch-fidelity", torch.device("cpu"), resize="clean")


def test_images_already_at_299_are_only_scaled():
    images = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8)
    assert torch.equal(fid_inception_input(images), (images.float() - 128) / 128)


def test_generated_images_are_quantized_like_the_saved_grids():
    images = torch.rand(1, 1, 8, 8) * 2.2 - 1.1  # a little outside [-1, 1] too
    grid = image_grid(images, padding=0)
    assert torch.equal(to_uint8(images)[0, 0], torch.from_numpy(grid))


def test_torchscript_extractor_features_logits_and_name(tmp_path: Path):
    plain = build_extractor(str(write_tiny_extractor(tmp_path / "a.pt")), torch.device("cpu"))
    with_logits = build_extractor(str(write_tiny_extractor(tmp_path / "b.pt", logits=True)), torch.device("cpu"))
    images = to_rgb_uint8(torch.randint(0, 256, (4, 1, 32, 32), dtype=torch.uint8))
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
