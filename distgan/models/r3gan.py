"""The R3GAN network pair (Huang et al. 2024, brownvc/R3GAN), unconditional or class-conditional.

A ResNet of inverted bottlenecks (1x1 conv to `EXPANSION` x width, grouped 3x3 conv, 1x1 conv
back) with leaky ReLU, no normalization, and fix-up initialisation: the last conv of each
residual branch starts at zero, so every block is the identity at initialisation, and the
others are scaled by blocks^(-1/4) (R3GAN's depth^(-1/(2L-2)) with L = 3 layers per branch).
Resampling is the [1,2,1] binomial filter of R3GAN's upfirdn, as fixed depthwise convolutions.

G: z -> a learned width x 4 x 4 basis scaled per channel by a linear of z -> a stage per
resolution 4, 8, ..., R (2x upsample, then `BLOCKS_PER_STAGE` blocks) -> 1x1 conv to the
image channels, unbounded as in R3GAN (distgan clamps to [-1, 1] wherever images are
quantized). D: 1x1 conv from the image -> a stage per resolution R, ..., 4 (blocks, then 2x
downsample) -> depthwise 4x4 conv -> linear -> logit.
Widths are constant (`model.g_width`, `model.d_width`); `model.g_norm` / `d_norm` are ignored.
Conditional (num_classes > 0), as R3GAN: a class embedding concatenated to z feeds the
modulation, and D projects its final features onto a class embedding (a projection D).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from distgan.config import ModelConfig
from distgan.models.conditioning import ClassEmbeddingGenerator, ProjectionDiscriminator
from distgan.models.gan_models import GANModels

# R3GAN's CIFAR-10 preset: 2 blocks per stage, expansion 2, 16 channels per group (1536 / 96).
BLOCKS_PER_STAGE = 2
EXPANSION = 2
GROUP_WIDTH = 16
LEAK = 0.2
ACTIVATION_GAIN = math.sqrt(2.0 / (1.0 + LEAK**2))  # keeps unit variance through a leaky ReLU


def cardinality(channels: int) -> int:
    """Groups of about `GROUP_WIDTH` channels that divide `channels` (96 for R3GAN's 1536)."""
    return math.gcd(channels, max(1, channels // GROUP_WIDTH))


def _msr(layer: nn.Conv2d | nn.Linear, gain: float) -> nn.Module:
    """He initialisation with gain `gain` (0: zeros), biases zero."""
    fan_in = layer.weight[0].numel()
    with torch.no_grad():
        if gain:
            layer.weight.normal_(0.0, gain / math.sqrt(fan_in))
        else:
            layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


class Block(nn.Module):
    """x + branch(x): 1x1 expand, grouped 3x3, 1x1 project (zero at init), leaky ReLU between."""

    def __init__(self, width: int, total_blocks: int) -> None:
        super().__init__()
        wide = width * EXPANSION
        gain = ACTIVATION_GAIN * total_blocks ** (-1 / (2 * 3 - 2))
        self.branch = nn.Sequential(
            _msr(nn.Conv2d(width, wide, 1), gain),
            nn.LeakyReLU(LEAK),
            _msr(nn.Conv2d(wide, wide, 3, padding=1, groups=cardinality(wide)), gain),
            nn.LeakyReLU(LEAK),
            _msr(nn.Conv2d(wide, width, 1, bias=False), 0.0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


def _binomial(channels: int, gain: float) -> torch.Tensor:
    taps = torch.tensor([1.0, 2.0, 1.0])
    kernel = torch.outer(taps, taps) / taps.sum() ** 2 * gain
    return kernel.expand(channels, 1, 3, 3).contiguous()


class Upsample(nn.Module):
    """2x: zero insertion and the [1,2,1] filter (gain 4), as upfirdn2d.upsample2d."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("kernel", _binomial(channels, 4.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.conv_transpose2d(x, self.kernel.to(x.dtype), stride=2, groups=x.shape[1])
        return up[:, :, :-1, :-1]  # the 2R samples upfirdn2d keeps (its padding is 2 before, 0 after)


class Downsample(nn.Module):
    """1/2: the [1,2,1] filter then every second sample, as upfirdn2d.downsample2d."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("kernel", _binomial(channels, 1.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 0, 1, 0)), self.kernel.to(x.dtype), stride=2, groups=x.shape[1])


def _stages(resolution: int) -> int:
    return int(math.log2(resolution)) - 1  # 4, 8, ..., resolution


class Generator(nn.Module):
    def __init__(self, z_dim: int, channels: int, resolution: int, width: int) -> None:
        super().__init__()
        stages = _stages(resolution)
        total = stages * BLOCKS_PER_STAGE
        # R3GAN's generative basis: a learned 4x4 map per channel, scaled per sample by a linear of z.
        self.basis = nn.Parameter(torch.randn(width, 4, 4))
        self.modulation = _msr(nn.Linear(z_dim, width, bias=False), 1.0)
        layers: list[nn.Module] = []
        for stage in range(stages):
            if stage:
                layers.append(Upsample(width))
            layers += [Block(width, total) for _ in range(BLOCKS_PER_STAGE)]
        self.stages = nn.Sequential(*layers)
        self.to_image = _msr(nn.Conv2d(width, channels, 1), 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.basis * self.modulation(z)[:, :, None, None]
        return self.to_image(self.stages(x))


class Discriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int) -> None:
        super().__init__()
        stages = _stages(resolution)
        total = stages * BLOCKS_PER_STAGE
        # No bias (as R3GAN): at initialisation D is linear (identity blocks), so a bias here would
        # only shift every logit alike, a gradient that is zero in exact arithmetic under RpGAN.
        self.from_image = _msr(nn.Conv2d(channels, width, 1, bias=False), 1.0)
        layers: list[nn.Module] = []
        for stage in range(stages):
            layers += [Block(width, total) for _ in range(BLOCKS_PER_STAGE)]
            if stage < stages - 1:
                layers.append(Downsample(width))
        self.stages = nn.Sequential(*layers)
        self.basis = _msr(nn.Conv2d(width, width, 4, groups=width, bias=False), 1.0)  # 4x4 -> 1x1
        # No output bias: it would shift real and fake logits alike (see README, Distributed semantics).
        self.logit = _msr(nn.Linear(width, 1, bias=False), 1.0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.basis(self.stages(self.from_image(x))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x)).flatten()


class _Features(nn.Module):
    """Discriminator.features over the same layers, without the logit (the projection D's head holds it)."""

    def __init__(self, discriminator: Discriminator) -> None:
        super().__init__()
        self.from_image, self.stages, self.basis = discriminator.from_image, discriminator.stages, discriminator.basis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return Discriminator.features(self, x)  # the same attribute names: one definition of the features


class _Head(nn.Module):
    def __init__(self, logit: nn.Linear) -> None:
        super().__init__()
        self.logit = logit

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.logit(features).flatten()


def build_r3gan(cfg: ModelConfig, channels: int, resolution: int, num_classes: int = 0) -> GANModels:
    # G (with its class embedding) is drawn before D, so a seed's G does not depend on D's config.
    if not num_classes:
        generator = Generator(cfg.z_dim, channels, resolution, cfg.g_width)
        return GANModels(generator, Discriminator(channels, resolution, cfg.d_width), cfg.z_dim)
    generator = Generator(cfg.z_dim + cfg.class_embed_dim, channels, resolution, cfg.g_width)
    conditional_generator = ClassEmbeddingGenerator(generator, num_classes, cfg.class_embed_dim)
    discriminator = Discriminator(channels, resolution, cfg.d_width)
    return GANModels(
        conditional_generator,
        ProjectionDiscriminator(_Features(discriminator), _Head(discriminator.logit), num_classes, cfg.d_width, False),
        cfg.z_dim,
        num_classes,
    )
