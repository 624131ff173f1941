"""R1 (Mescheder et al. 2018): the zero-centred gradient penalty on real images, optionally lazy."""

from __future__ import annotations

from torch import Tensor

from distgan.config import LossConfig
from distgan.losses.regularizers.base import Regularizer


class R1(Regularizer):
    target = "real"

    def __init__(self, gamma: float, interval: int) -> None:
        self.gamma, self.interval = gamma, interval

    @classmethod
    def from_config(cls, cfg: LossConfig) -> R1 | None:
        return cls(cfg.r1_gamma, cfg.r1_interval) if cfg.r1_gamma > 0 else None

    def due(self, d_step: int) -> bool:
        return d_step % self.interval == 0

    def penalty(self, grad_norm_sq: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        penalty = grad_norm_sq.mean()
        # The lazy interval multiplies the weight so the average regularisation is unchanged.
        return penalty * (self.gamma / 2 * self.interval), {"r1": penalty.detach()}
