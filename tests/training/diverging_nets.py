"""A user model that breaks rank consistency on purpose, for the consistency-check test."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from distgan.config import ModelConfig
from distgan.models import GANModels, build_models


class DriftingGenerator(nn.Module):
    """Adds the rank to a frozen parameter at every training forward: DDP never syncs it."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.drift = nn.Parameter(torch.zeros(()), requires_grad=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.training and dist.is_available() and dist.is_initialized():
            with torch.no_grad():
                self.drift.add_(dist.get_rank())
        return self.inner(z)


def DriftingGAN(cfg: ModelConfig, channels: int, resolution: int) -> GANModels:  # noqa: N802 (a model name)
    nets = build_models(cfg.model_copy(update={"name": "dcgan"}), channels=channels, resolution=resolution)
    return GANModels(DriftingGenerator(nets.generator), nets.discriminator, nets.z_dim)
