"""The zero-centred gradient penalty (Mescheder et al. 2018): gamma/2 E||dD/dx||^2, optionally lazy.

R1 (on reals) and R2 (on fakes) are this penalty on different images.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from distgan.losses.regularizers.base import Regularizer


class ZeroCentredPenalty(Regularizer):
    stat: ClassVar[str]  # the name it is logged under

    def __init__(self, gamma: float, interval: int) -> None:
        self.gamma, self.interval = gamma, interval

    def due(self, d_step: int) -> bool:
        return d_step % self.interval == 0

    def penalty(self, grad_norm_sq: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        penalty = grad_norm_sq.mean()
        # The lazy interval multiplies the weight so the average regularisation is unchanged.
        return penalty * (self.gamma / 2 * self.interval), {self.stat: penalty.detach()}
