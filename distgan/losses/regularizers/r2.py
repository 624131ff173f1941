"""R2 (Mescheder et al. 2018; R3GAN pairs it with R1): the zero-centred gradient penalty on fakes."""

from __future__ import annotations

from torch import Tensor

from distgan.config import LossConfig
from distgan.losses.regularizers.base import Regularizer


class R2(Regularizer):
    target = "fake"

    def __init__(self, gamma: float, interval: int) -> None:
        self.gamma, self.interval = gamma, interval

    @classmethod
    def from_config(cls, cfg: LossConfig) -> R2 | None:
        return cls(cfg.r2_gamma, cfg.r2_interval) if cfg.r2_gamma > 0 else None

    def due(self, d_step: int) -> bool:
        return d_step % self.interval == 0

    def penalty(self, grad_norm_sq: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        penalty = grad_norm_sq.mean()
        # The lazy interval multiplies the weight so the average regularisation is unchanged.
        return penalty * (self.gamma / 2 * self.interval), {"r2": penalty.detach()}
