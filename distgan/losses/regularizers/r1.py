"""R1: the zero-centred gradient penalty on real images (`loss.r1_gamma`, `loss.r1_interval`)."""

from __future__ import annotations

from distgan.config import LossConfig
from distgan.losses.regularizers.zero_centred import ZeroCentredPenalty


class R1(ZeroCentredPenalty):
    target = "real"
    stat = "r1"

    @classmethod
    def from_config(cls, cfg: LossConfig) -> R1 | None:
        return cls(cfg.r1_gamma, cfg.r1_interval) if cfg.r1_gamma > 0 else None
