"""WGAN's Lipschitz constraint (Arjovsky et al. 2017): every D weight clipped after each D update."""

from __future__ import annotations

import torch
from torch import nn

from distgan.config import LossConfig
from distgan.losses.regularizers.base import Regularizer


class WeightClip(Regularizer):
    def __init__(self, bound: float) -> None:
        self.bound = bound

    @classmethod
    def from_config(cls, cfg: LossConfig) -> WeightClip | None:
        return cls(cfg.clip_value) if cfg.name == "wgan" else None

    @torch.no_grad()
    def after_step(self, discriminator: nn.Module) -> None:
        params = list(discriminator.parameters())
        torch._foreach_clamp_min_(params, -self.bound)
        torch._foreach_clamp_max_(params, self.bound)
