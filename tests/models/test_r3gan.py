"""The R3GAN pair: shapes, identity blocks at initialisation, the resampling filters, its size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from distgan.config import ModelConfig
from distgan.models import build_models
from distgan.models.r3gan import Block, Downsample, Upsample, build_r3gan, cardinality


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_gradients_at_every_power_of_two(resolution: int, channels: int):
    torch.manual_seed(0)
    models = build_models(ModelConfig(name="r3gan", z_dim=16, g_width=8, d_width=8), channels, resolution)
    G, D = models.generator, models.discriminator
    x = G(torch.randn(3, 16))
    assert x.shape == (3, channels, resolution, resolution)
    logits = D(x)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert all(p.grad is not None for p in G.parameters())
    # At init only the branches' zero last convs learn inside a block (the rest sits behind zeros).
    last = [m.branch[-1].weight.grad for m in G.modules() if isinstance(m, Block)]
    assert last and all(g.abs().sum() > 0 for g in last)


def test_no_normalization_and_grouped_convs():
    models = build_models(ModelConfig(name="r3gan", z_dim=16, g_width=32, d_width=32), 3, 16)
    for net in (models.generator, models.discriminator):
        assert not any("Norm" in type(m).__name__ for m in net.modules())
        grouped = [m.groups for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        assert grouped and set(grouped) == {4}  # 64 expanded channels in groups of 16
    assert cardinality(1536) == 96  # R3GAN's CIFAR-10: width 768, expansion 2


def test_every_block_is_the_identity_at_initialisation():
    models = build_models(ModelConfig(name="r3gan", z_dim=16, g_width=16, d_width=16), 3, 32)
    blocks = [m for net in (models.generator, models.discriminator) for m in net.modules() if isinstance(m, Block)]
    assert len(blocks) == 2 * 4 * 2  # two networks, stages at 4, 8, 16, 32, two blocks each
    x = torch.randn(2, 16, 8, 8)
    for block in blocks:
        assert torch.equal(block(x), x)
        assert not block.branch[-1].weight.any()
    # Fix-up: the other branch convs are scaled down by blocks^(-1/4) (8 blocks per network).
    first = blocks[0].branch[0].weight
    assert first.std().item() == pytest.approx((2 / 1.04) ** 0.5 * 8**-0.25 / 16**0.5, rel=0.15)


def _upfirdn_reference(x: torch.Tensor, up: int, down: int, pad: tuple[int, int], gain: float) -> torch.Tensor:
    """upfirdn2d by its definition: zero insertion, padding, the separable [1,2,1] filter, decimation."""
    n, c, h, w = x.shape
    y = torch.zeros(n, c, h * up, w * up)
    y[:, :, ::up, ::up] = x
    y = F.pad(y, (pad[0], pad[1], pad[0], pad[1]))
    f = torch.tensor([1.0, 2.0, 1.0]) / 4
    kernel = (torch.outer(f, f) * gain).expand(c, 1, 3, 3)
    return F.conv2d(y, kernel, groups=c)[:, :, ::down, ::down]


def test_resampling_is_the_binomial_filter_of_upfirdn2d():
    x = torch.randn(2, 3, 8, 8)
    # StyleGAN's upsample2d / downsample2d with a 3-tap filter: padding (2, 0) up, (1, 0) down.
    assert torch.allclose(Upsample(3)(x), _upfirdn_reference(x, 2, 1, (2, 0), 4.0), atol=1e-6)
    assert torch.allclose(Downsample(3)(x), _upfirdn_reference(x, 1, 2, (1, 0), 1.0), atol=1e-6)
    flat = torch.ones(1, 3, 8, 8)
    assert torch.allclose(Upsample(3)(flat)[:, :, 1:, 1:], torch.ones(1, 3, 15, 15))  # gain 4: a flat image stays


def test_parameter_counts_match_r3gan_cifar10():
    # R3GAN's CIFAR-10 networks: about 20.7 M parameters each (half width 5.6 M, quarter 1.6 M).
    counts = {}
    for width in (768, 384, 192):
        with torch.device("meta"):  # shapes only: no memory, no initialisation time
            models = build_r3gan(ModelConfig(name="r3gan", z_dim=64, g_width=width, d_width=width), 3, 32)
        counts[width] = (n_params(models.generator), n_params(models.discriminator))
    print(f"r3gan parameters (G, D) at CIFAR-10 32x32 by width: {counts}")
    assert counts == {768: (20_732_163, 20_683_776), 384: (5_647_491, 5_623_296), 192: (1_644_099, 1_632_000)}
