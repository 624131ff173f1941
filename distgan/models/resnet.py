"""SNGAN ResNet pair (Miyato et al. 2018; layout and init of Mimicry's CIFAR SNGAN).

G: Linear -> 4x4 -> log2(R/4) upsampling blocks -> BN ReLU conv3x3 tanh.
D: optimized block (R -> R/2), downsampling blocks to 8x8 (4x4 when R = 8), two blocks
without downsampling, ReLU, global sum pooling, linear. At 32x32 this is exactly SNGAN's
CIFAR D. Widths are constant (g_width, d_width). D always uses spectral norm on every conv
and linear: `model.d_norm` is ignored. `model.g_norm=none` drops all G BatchNorms.
Shortcut 1x1 convs are applied at the lower resolution (conv before nearest upsample, pool
before conv): the same function as the reference order, at a quarter of the cost.

Conditional (num_classes > 0): G's BatchNorms take a per-class gain and bias, as SNGAN's
(a class embedding joins z with g_norm=none), and D is SNGAN's projection
discriminator (the sum-pooled features against a spectrally normalised class embedding).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from distgan.config import ModelConfig
from distgan.models.conditioning import ClassEmbeddingGenerator, ClassSequential, ProjectionDiscriminator, batch_norm
from distgan.models.gan_models import GANModels

_RESIDUAL_GAIN = math.sqrt(2.0)


def _conv(cin: int, cout: int, kernel: int, gain: float, sn: bool = False) -> nn.Module:
    conv = nn.Conv2d(cin, cout, kernel, 1, kernel // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    return spectral_norm(conv) if sn else conv


def _norm(c: int, batch: bool, num_classes: int = 0) -> nn.Module:
    return batch_norm(c, num_classes) if batch else nn.Identity()


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, batch: bool, num_classes: int = 0) -> None:
        super().__init__()
        # With classes (and BatchNorm), forward(x, c) and conditional BatchNorms.
        self.takes_classes = bool(num_classes and batch)
        self.residual = (ClassSequential if self.takes_classes else nn.Sequential)(
            _norm(cin, batch, num_classes),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(cin, cout, 3, _RESIDUAL_GAIN),
            _norm(cout, batch, num_classes),
            nn.ReLU(),
            _conv(cout, cout, 3, _RESIDUAL_GAIN),
        )
        self.shortcut = nn.Sequential(_conv(cin, cout, 1, 1.0), nn.Upsample(scale_factor=2, mode="nearest"))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        residual = self.residual(x, c) if self.takes_classes else self.residual(x)
        return residual + self.shortcut(x)


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool, optimized: bool = False) -> None:
        super().__init__()
        pool = [nn.AvgPool2d(2)] if down else []
        # The optimized first block skips the leading ReLU: its input is the image itself.
        first = [] if optimized else [nn.ReLU()]
        self.residual = nn.Sequential(
            *first,
            _conv(cin, cout, 3, _RESIDUAL_GAIN, sn=True),
            nn.ReLU(),
            _conv(cout, cout, 3, _RESIDUAL_GAIN, sn=True),
            *pool,
        )
        learnable = cin != cout or down
        self.shortcut = nn.Sequential(*pool, _conv(cin, cout, 1, 1.0, sn=True)) if learnable else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class SumPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=(2, 3))


def resnet_generator(
    z_dim: int, channels: int, resolution: int, width: int, batch: bool, num_classes: int = 0
) -> nn.Sequential:
    """With num_classes (and batch): conditional BatchNorms, forward(z, c)."""
    linear = nn.Linear(z_dim, 4 * 4 * width)
    nn.init.xavier_uniform_(linear.weight, 1.0)
    blocks = [GBlock(width, width, batch, num_classes) for _ in range(int(math.log2(resolution // 4)))]
    return (ClassSequential if num_classes and batch else nn.Sequential)(
        linear,
        nn.Unflatten(1, (width, 4, 4)),
        *blocks,
        _norm(width, batch, num_classes),
        nn.ReLU(),
        _conv(width, channels, 3, 1.0),
        nn.Tanh(),
    )


def resnet_discriminator(channels: int, resolution: int, width: int, num_classes: int = 0) -> nn.Module:
    blocks = [DBlock(channels, width, down=True, optimized=True)]
    size = resolution // 2
    while size > 8:
        blocks.append(DBlock(width, width, down=True))
        size //= 2
    blocks += [DBlock(width, width, down=False), DBlock(width, width, down=False)]
    linear = nn.Linear(width, 1)
    nn.init.xavier_uniform_(linear.weight, 1.0)
    features, head = [*blocks, nn.ReLU(), SumPool()], [spectral_norm(linear), nn.Flatten(0)]
    if not num_classes:
        return nn.Sequential(*features, *head)
    return ProjectionDiscriminator(nn.Sequential(*features), nn.Sequential(*head), num_classes, width, spectral=True)


def build_resnet(cfg: ModelConfig, channels: int, resolution: int, num_classes: int = 0) -> GANModels:
    batch = cfg.g_norm == "batch"
    if num_classes and not batch:
        z_in = cfg.z_dim + cfg.class_embed_dim
        generator = resnet_generator(z_in, channels, resolution, cfg.g_width, batch)
        generator = ClassEmbeddingGenerator(generator, num_classes, cfg.class_embed_dim)
    else:
        generator = resnet_generator(cfg.z_dim, channels, resolution, cfg.g_width, batch, num_classes)
    return GANModels(
        generator, resnet_discriminator(channels, resolution, cfg.d_width, num_classes), cfg.z_dim, num_classes
    )
