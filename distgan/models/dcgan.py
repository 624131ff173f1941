"""DCGAN (Radford et al. 2016) for any power-of-two resolution >= 16.

Stage widths follow the reference: `width` at the finest hidden stage, doubling per
coarser stage, capped at 8 * width. A conv has a bias exactly when no BatchNorm follows it
(a bias before BN is cancelled by the mean subtraction).

Conditional (num_classes > 0): G's BatchNorms take a per-class gain and bias (with
g_norm=none, a class embedding joins z instead); D projects its last 4x4 feature map, summed over
positions, onto a class embedding (spectral norm on it with d_norm=spectral).
"""

from __future__ import annotations

import math

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from distgan.config import ModelConfig
from distgan.models.conditioning import ClassEmbeddingGenerator, ClassSequential, ProjectionDiscriminator, batch_norm
from distgan.models.gan_models import GANModels


def _stage_widths(width: int, resolution: int) -> list[int]:
    """Widths of the hidden stages from 4x4 up to resolution/2, coarse to fine."""
    stages = int(math.log2(resolution)) - 2
    return [width * 2 ** min(i, 3) for i in reversed(range(stages))]


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def dcgan_generator(
    z_dim: int, channels: int, resolution: int, width: int, norm: str, num_classes: int = 0
) -> nn.Sequential:
    """With num_classes (and norm=batch): conditional BatchNorms, forward(z, c)."""
    widths = _stage_widths(width, resolution)
    batch = norm == "batch"

    def block(conv: nn.Module, cout: int) -> list[nn.Module]:
        return [conv, batch_norm(cout, num_classes), nn.ReLU()] if batch else [conv, nn.ReLU()]

    layers: list[nn.Module] = [nn.Unflatten(1, (z_dim, 1, 1))]
    layers += block(nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=not batch), widths[0])
    for cin, cout in zip(widths, widths[1:]):
        layers += block(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=not batch), cout)
    layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
    net = (ClassSequential if num_classes and batch else nn.Sequential)(*layers)
    net.apply(_init)
    return net


def dcgan_discriminator(channels: int, resolution: int, width: int, norm: str) -> nn.Sequential:
    widths = _stage_widths(width, resolution)[::-1]  # fine to coarse
    batch = norm == "batch"
    layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
    for cin, cout in zip(widths, widths[1:]):
        layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=not batch))
        if batch:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.LeakyReLU(0.2))
    # No output bias, as in the DCGAN reference: under wgan, wgan-gp and (early) hinge its
    # gradient is exactly zero, so Adam would only turn float rounding into lr-sized steps.
    layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False), nn.Flatten(0)]  # [N, 1, 1, 1] -> [N]
    net = nn.Sequential(*layers)
    net.apply(_init)
    if norm == "spectral":
        # After init: the parametrization keeps the N(0, 0.02) weight as `original`.
        for i, layer in enumerate(net):
            if isinstance(layer, nn.Conv2d):
                net[i] = spectral_norm(layer)
    return net


def build_dcgan(cfg: ModelConfig, channels: int, resolution: int, num_classes: int = 0) -> GANModels:
    # G is drawn before D, so a seed's G does not depend on D's config (and matches earlier builds).
    if not num_classes or cfg.g_norm == "batch":
        generator = dcgan_generator(cfg.z_dim, channels, resolution, cfg.g_width, cfg.g_norm, num_classes)
    else:
        z_in = cfg.z_dim + cfg.class_embed_dim
        generator = ClassEmbeddingGenerator(
            dcgan_generator(z_in, channels, resolution, cfg.g_width, cfg.g_norm), num_classes, cfg.class_embed_dim
        )
    discriminator = dcgan_discriminator(channels, resolution, cfg.d_width, cfg.d_norm)
    if not num_classes:
        return GANModels(generator, discriminator, cfg.z_dim)
    # The last two layers (4x4 conv to one logit, flatten) are the head; the rest gives the features.
    return GANModels(
        generator,
        ProjectionDiscriminator(
            discriminator[:-2], discriminator[-2:], num_classes, discriminator[-2].in_channels, cfg.d_norm == "spectral"
        ),
        cfg.z_dim,
        num_classes,
    )
