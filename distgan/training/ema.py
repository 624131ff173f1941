"""Exponential moving average of G with the StyleGAN2-ADA ramp-up."""

from __future__ import annotations

import copy

import torch
from torch import nn

from distgan.compat import drop_engine_hooks
from distgan.config import EMAConfig


class GeneratorEMA(nn.Module):
    """Holds the averaged generator; an nn.Module so accelerate checkpoints it as is.

    The half-life is `kimg` thousand generated images; with `rampup`, it is at most
    `rampup` times the images generated so far, so early averages do not drag in the
    random initialisation.
    """

    def __init__(self, generator: nn.Module, cfg: EMAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.half_life_kimg = cfg.kimg  # schedule.ema_kimg_end moves it
        # fp32 even where training holds G in bf16/fp16 (DeepSpeed): an average with beta near 1
        # moves by less than a bf16 ulp per step.
        self.generator = copy.deepcopy(generator).float().eval().requires_grad_(False)
        drop_engine_hooks(self.generator)  # a copy of DeepSpeed's G would cast its inputs to fp16

    def beta(self, images_generated: int, batch_size: int) -> float:
        if not self.cfg.enabled:
            return 0.0
        half_life = self.half_life_kimg * 1000
        if self.cfg.rampup is not None:
            half_life = min(half_life, images_generated * self.cfg.rampup)
        return 0.5 ** (batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, generator: nn.Module, images_generated: int, batch_size: int) -> None:
        beta = self.beta(images_generated, batch_size)
        ema_params = list(self.generator.parameters())
        params = [p.detach().float() for p in generator.parameters()]  # .float(): a no-op for fp32
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        # Buffers (BatchNorm statistics, spectral-norm vectors) are copied, not averaged.
        buffers = list(self.generator.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(generator.buffers()))  # copy_ casts where dtypes differ

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z) if c is None else self.generator(z, c)
