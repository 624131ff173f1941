"""The augmentation pipelines as functions of (images, per-sample uniforms, p)."""

from __future__ import annotations

import pytest
import torch

from distgan.augment.ada import COLUMNS, LAYOUT, AdaPipeline
from distgan.augment.diffaugment import DiffAugment

PIPELINES = {"diffaug": (DiffAugment(), 1.0), "ada": (AdaPipeline(), 1.0), "ada-half": (AdaPipeline(), 0.5)}


def images(n: int = 4, channels: int = 3, size: int = 8, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(1), dtype=dtype) * 2 - 1


def uniforms(pipeline, n: int = 4, seed: int = 2) -> torch.Tensor:
    return torch.rand(n, pipeline.num_params, generator=torch.Generator().manual_seed(seed))


# Below 1 so that the other transforms' gates (0.999) stay shut.
ALONE = 0.99


def ada_only(name: str, params: list[float], n: int = 2) -> torch.Tensor:
    """Uniforms that draw `name` alone at p = ALONE (its gate at 0) with the given parameter columns."""
    u = torch.full((n, AdaPipeline.num_params), 0.999)
    u[:, COLUMNS[name]] = 0.0
    u[:, COLUMNS[name] + 1 : COLUMNS[name] + dict(LAYOUT)[name]] = torch.tensor(params)
    return u


@pytest.mark.parametrize("name", ["diffaug", "ada"])
@pytest.mark.parametrize("channels", [1, 3])
def test_differentiable_twice_in_the_images(name: str, channels: int):
    # Twice: R1 differentiates D(augment(x)) with respect to x and then backpropagates that.
    pipeline, p = PIPELINES[name]
    x, u = images(2, channels, 6, torch.float64).requires_grad_(True), uniforms(pipeline, 2)
    assert torch.autograd.gradcheck(lambda t: pipeline(t, u, p), (x,))
    assert torch.autograd.gradgradcheck(lambda t: pipeline(t, u, p).square(), (x,))


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_deterministic_given_the_draw_and_per_sample(name: str):
    pipeline, p = PIPELINES[name]
    x, u = images(), uniforms(PIPELINES[name][0])
    out = pipeline(x, u, p)
    assert torch.equal(out, pipeline(x.clone(), u.clone(), p))
    assert not torch.equal(out, pipeline(x, uniforms(pipeline, seed=3), p))
    assert not torch.equal(out, x)
    # Each sample is transformed by its own row alone and stays in its place (so its label still fits).
    for i in range(x.shape[0]):
        torch.testing.assert_close(pipeline(x[i : i + 1], u[i : i + 1], p), out[i : i + 1], rtol=0, atol=1e-6)
    assert torch.equal(pipeline(x.flip(0), u.flip(0), p), out.flip(0))


@pytest.mark.parametrize("channels", [1, 3])
def test_ada_at_p_zero_and_undrawn_samples_are_the_images_bit_for_bit(channels: int):
    ada, x = AdaPipeline(), images(channels=channels)
    assert torch.equal(ada(x, uniforms(ada), 0.0), x)
    never = torch.full((4, ada.num_params), 0.6)  # every gate above p = 0.5
    assert torch.equal(ada(x, never, 0.5), x)
    u = never.clone()
    u[0, COLUMNS["xflip"] : COLUMNS["xflip"] + 2] = torch.tensor([0.0, 0.9])  # sample 0 alone is flipped
    out = ada(x, u, 0.5)
    assert torch.equal(out[1:], x[1:]) and not torch.equal(out[0], x[0])


def test_ada_geometric_transforms_move_pixels_where_they_should():
    ada, x = AdaPipeline(), images(2, 3, 8)
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=1e-5)  # noqa: E731
    close(ada(x, ada_only("xflip", [0.9]), ALONE), x.flip(3))
    quarter = ada(x, ada_only("rotate90", [0.3]), ALONE)  # i = 1: a quarter turn
    assert any(torch.allclose(quarter, x.rot90(k, (2, 3)), atol=1e-5) for k in (1, 3))
    # xint: (2u - 1) * 0.125 * 8 rounds to 1 pixel to the right; the border column is reflected in.
    shifted = ada(x, ada_only("xint", [0.99999, 0.5]), ALONE)
    close(shifted[..., 1:], x[..., :-1])
    close(shifted[..., 0], x[..., 0])


def test_ada_color_on_gray_is_brightness_and_contrast_only():
    ada, x = AdaPipeline(), images(2, 1, 8)
    bright = ada(x, ada_only("brightness", [0.8]), ALONE)
    shift = bright - x
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6) and shift.abs().min() > 0.1
    for name in ("lumaflip", "hue", "saturation"):  # RGB only: undrawn on one channel
        assert torch.equal(ada(x, ada_only(name, [0.9]), ALONE), x)
    rgb = images(2, 3, 8)
    assert not torch.equal(ada(rgb, ada_only("hue", [0.9]), ALONE), rgb)
    gray_rgb = x.expand(2, 3, 8, 8)  # hue rotates about the gray axis: gray stays gray
    torch.testing.assert_close(ada(gray_rgb, ada_only("hue", [0.9]), ALONE), gray_rgb, rtol=0, atol=1e-5)


def test_ada_cutout_zeroes_a_quarter_of_the_image():
    ada, x = AdaPipeline(), images(2, 3, 8).abs() + 0.1
    out = ada(x, ada_only("cutout", [0.5, 0.5]), ALONE)
    assert ((out == 0).all(1).sum((1, 2)) == 16).all()  # a 4x4 square of an 8x8 image


def test_diffaugment_translation_and_cutout():
    diff, x = DiffAugment("translation"), images(1, 1, 8).abs() + 0.1
    u = torch.zeros(1, DiffAugment.num_params)
    u[0, 3:5] = 0.999  # the largest shift: +1 pixel (1/8 of 8) in both directions
    out = diff(x, u)
    assert torch.equal(out[..., :-1, :-1], x[..., 1:, 1:]) and (out[..., -1, :] == 0).all()
    cut = DiffAugment("cutout")(x, torch.full((1, DiffAugment.num_params), 0.5))
    assert (cut == 0).sum() == 16
    torch.testing.assert_close(DiffAugment("color")(x, torch.full((1, 7), 0.5)), x)  # the neutral draw
