"""The seed's MNIST MLP pair, for any channels/resolution. Widths are fixed; norm settings are ignored."""

from __future__ import annotations

from torch import nn

from distgan.config import ModelConfig
from distgan.models.gan_models import GANModels


def build_mlp(cfg: ModelConfig, channels: int, resolution: int) -> GANModels:
    pixels = channels * resolution * resolution
    widths = [cfg.z_dim, 128, 128, 1024, 1024]
    g_layers: list[nn.Module] = []
    for cin, cout in zip(widths, widths[1:]):
        g_layers += [nn.Linear(cin, cout), nn.ReLU()]
    generator = nn.Sequential(
        *g_layers,
        nn.Linear(1024, pixels),
        nn.Tanh(),
        nn.Unflatten(1, (channels, resolution, resolution)),
    )
    discriminator = nn.Sequential(
        nn.Flatten(1),  # reshape, so channels_last inputs are fine
        nn.Linear(pixels, 1024),
        nn.ReLU(),
        nn.Linear(1024, 1024),
        nn.ReLU(),
        nn.Linear(1024, 1),
        nn.Flatten(0),  # [N, 1] -> [N]: one logit per image
    )
    return GANModels(generator=generator, discriminator=discriminator, z_dim=cfg.z_dim)
