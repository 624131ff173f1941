"""The seed's MNIST MLP pair, for any channels/resolution. Widths are fixed; norm settings are ignored.

Conditional (num_classes > 0): a class embedding joins z, and D projects its last hidden layer."""

from __future__ import annotations

from torch import nn

from distgan.config import ModelConfig
from distgan.models.conditioning import ClassEmbeddingGenerator, ProjectionDiscriminator
from distgan.models.gan_models import GANModels


def build_mlp(cfg: ModelConfig, channels: int, resolution: int, num_classes: int = 0) -> GANModels:
    pixels = channels * resolution * resolution
    widths = [cfg.z_dim + (cfg.class_embed_dim if num_classes else 0), 128, 128, 1024, 1024]
    g_layers: list[nn.Module] = []
    for cin, cout in zip(widths, widths[1:]):
        g_layers += [nn.Linear(cin, cout), nn.ReLU()]
    generator = nn.Sequential(
        *g_layers,
        nn.Linear(1024, pixels),
        nn.Tanh(),
        nn.Unflatten(1, (channels, resolution, resolution)),
    )
    if num_classes:  # drawn before D, so a seed's G does not depend on D
        generator = ClassEmbeddingGenerator(generator, num_classes, cfg.class_embed_dim)
    features = [
        nn.Flatten(1),  # reshape, so channels_last inputs are fine
        nn.Linear(pixels, 1024),
        nn.ReLU(),
        nn.Linear(1024, 1024),
        nn.ReLU(),
    ]
    head = [nn.Linear(1024, 1), nn.Flatten(0)]  # [N, 1] -> [N]: one logit per image
    if not num_classes:
        return GANModels(generator, nn.Sequential(*features, *head), cfg.z_dim)
    return GANModels(
        generator,
        ProjectionDiscriminator(nn.Sequential(*features), nn.Sequential(*head), num_classes, 1024, spectral=False),
        cfg.z_dim,
        num_classes,
    )
