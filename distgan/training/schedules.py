"""Learning rate, Adam beta2, penalty weight, EMA half-life and augmentation p as functions of images seen.

R3GAN's recipe moves each of them from a start to an end value along a cosine over the first
`schedule.kimg` thousand real images and keeps the end value after. The value is a pure
function of the data position, which checkpoints hold, so a resumed run (or a rollback)
continues the same curve, and every process computes the same value with no communication.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from distgan.config import Config
from distgan.losses import Objective
from distgan.training.ema import GeneratorEMA


def ramp(shape: str, progress: float) -> float:
    """0 -> 1 as `progress` goes 0 -> 1 (clamped): linear or half a cosine; 0 for constant."""
    t = min(max(progress, 0.0), 1.0)
    if shape == "linear":
        return t
    if shape == "cosine":
        return (1.0 - math.cos(math.pi * t)) / 2.0
    return 0.0


def interpolate(start: float, end: float, weight: float) -> float:
    return start + (end - start) * weight


class Schedules:
    """Sets the scheduled values on the optimizers, the penalties and the EMA before each step."""

    def __init__(
        self, cfg: Config, optimizers: Sequence[torch.optim.Optimizer], objective: Objective, ema: GeneratorEMA
    ) -> None:
        self.cfg, self.optimizers, self.objective, self.ema = cfg.schedule, list(optimizers), objective, ema
        self.aug = cfg.aug
        self.enabled = self.cfg.shape != "constant" or self.cfg.lr_warmup_kimg > 0
        # The configured values are the starts; param groups are read once, before any change.
        self.base_lrs = [[g["lr"] for g in opt.param_groups] for opt in self.optimizers]
        self.base_beta2 = [
            [g["betas"][1] if "betas" in g else None for g in opt.param_groups] for opt in self.optimizers
        ]
        self.base_gammas = [getattr(reg, "gamma", None) for reg in objective.regularizers]
        self.base_ema_kimg = ema.half_life_kimg
        self.current: dict[str, float] = {}

    def values(self, kimg: float) -> dict[str, float]:
        """The scheduled multipliers and values at `kimg` thousand real images seen."""
        cfg = self.cfg
        weight = ramp(cfg.shape, kimg / cfg.kimg)
        warmup = min(kimg / cfg.lr_warmup_kimg, 1.0) if cfg.lr_warmup_kimg > 0 else 1.0
        values = {
            "lr_scale": interpolate(1.0, cfg.lr_scale_end, weight) * warmup,
            "gamma_scale": interpolate(1.0, cfg.gamma_scale_end, weight),
        }
        if cfg.beta2_end is not None:
            values["beta2_weight"] = weight
        if cfg.ema_kimg_end is not None:
            values["ema_kimg"] = interpolate(self.base_ema_kimg, cfg.ema_kimg_end, weight)
        if self.aug.p_end is not None:
            values["aug_p"] = interpolate(self.aug.p, self.aug.p_end, weight)
        return values

    def apply(self, kimg: float) -> None:
        if not self.enabled:
            return
        values = self.values(kimg)
        for opt, lrs, beta2s in zip(self.optimizers, self.base_lrs, self.base_beta2):
            for group, lr, beta2 in zip(opt.param_groups, lrs, beta2s):
                group["lr"] = lr * values["lr_scale"]
                if "beta2_weight" in values and beta2 is not None:
                    group["betas"] = (group["betas"][0], interpolate(beta2, self.cfg.beta2_end, values["beta2_weight"]))
        for reg, gamma in zip(self.objective.regularizers, self.base_gammas):
            if gamma is not None:
                reg.gamma = gamma * values["gamma_scale"]
        if "ema_kimg" in values:
            self.ema.half_life_kimg = values["ema_kimg"]
        if "aug_p" in values and self.objective.augment is not None:
            self.objective.augment.p = values["aug_p"]
        self.current = values

    def logged(self) -> dict[str, float]:
        """What a metrics row shows: the G and D learning rates, beta2, the scale of the penalty
        weights and the EMA half-life now."""
        if not self.enabled:
            return {}
        row = {f"lr_{name}": opt.param_groups[0]["lr"] for name, opt in zip(("g", "d"), self.optimizers)}
        if self.cfg.beta2_end is not None:
            row["beta2_g"] = self.optimizers[0].param_groups[0]["betas"][1]
        row["gamma_scale"] = self.current.get("gamma_scale", 1.0)
        if self.cfg.ema_kimg_end is not None:
            row["ema_kimg"] = self.ema.half_life_kimg
        return row
