"""WGAN-GP (Gulrajani et al. 2017): ||dD/dx|| pushed to 1 on random mixes of real and fake."""

from __future__ import annotations

import torch
from torch import Tensor

from distgan.config import LossConfig
from distgan.losses.batch import UniformDraw
from distgan.losses.regularizers.base import Regularizer

# The noise stream of the mixing weights (distgan.training.noise keys: step, stream).
MIX_STREAM = 2


class GradientPenalty(Regularizer):
    target = "mix"

    def __init__(self, weight: float) -> None:
        self.gamma = weight  # named like R1's and R2's weight: schedule.gamma_scale_end scales it too

    @classmethod
    def from_config(cls, cfg: LossConfig) -> GradientPenalty | None:
        return cls(cfg.gp_weight) if cfg.name == "wgan-gp" else None

    def inputs(self, real: Tensor, fake: Tensor, uniform: UniformDraw) -> Tensor:
        alpha = uniform(MIX_STREAM, (1, 1, 1)).to(real.dtype)
        return torch.lerp(fake, real, alpha)

    def penalty(self, grad_norm_sq: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        penalty = ((grad_norm_sq + 1e-12).sqrt() - 1.0).square().mean()
        return self.gamma * penalty, {"gp": penalty.detach()}
