"""R2: the zero-centred gradient penalty on fake images (`loss.r2_gamma`, `loss.r2_interval`);
R3GAN applies it with R1 on every D step."""

from __future__ import annotations

from distgan.config import LossConfig
from distgan.losses.regularizers.zero_centred import ZeroCentredPenalty


class R2(ZeroCentredPenalty):
    target = "fake"
    stat = "r2"

    @classmethod
    def from_config(cls, cfg: LossConfig) -> R2 | None:
        return cls(cfg.r2_gamma, cfg.r2_interval) if cfg.r2_gamma > 0 else None
