"""`GANModels`, what every model builder returns: a generator, a discriminator and the latent size."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class GANModels:
    generator: (
        nn.Module
    )  # z [N, z_dim] (, c [N]) -> images [N, C, R, R] in [-1, 1] (r3gan: unbounded, clamped when quantized)
    discriminator: nn.Module  # images [N, C, R, R] (, c [N]) -> logits [N]
    z_dim: int
    num_classes: int = 0  # > 0: both networks take class ids c in [0, num_classes) as a second argument
