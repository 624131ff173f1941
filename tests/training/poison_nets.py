"""A discriminator that produces NaN, Inf or overflowing gradients on chosen forwards, for the safety tests.

Configured through `model.kwargs`: `poison` = "nan" | "inf" (in the output) or "grad_inf" (a
finite output whose backward is Inf, an fp16 overflow); `poison_calls` = indices of D's
training forwards to poison (with n_critic=1 and grad_accum=1, step s (from 1) runs D at
2(s-1) in the D phase and 2(s-1)+1 in the G phase); `poison_rank` = the rank that does it.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from distgan.config import ModelConfig
from distgan.models import GANModels, build_models


class _InfGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: D102
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        return torch.full_like(grad, float("inf"))


class PoisonedDiscriminator(nn.Module):
    def __init__(self, inner: nn.Module, poison: str, calls: list[int], rank: int) -> None:
        super().__init__()
        self.inner, self.poison, self.calls, self.rank = inner, poison, set(calls), rank
        self.forwards = 0

    def forward(self, x: Tensor) -> Tensor:
        out = self.inner(x)
        if not (self.training and torch.is_grad_enabled()):
            return out
        index, self.forwards = self.forwards, self.forwards + 1
        my_rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if index not in self.calls or my_rank != self.rank:
            return out
        if self.poison == "grad_inf":
            return _InfGradient.apply(out)
        return out + float(self.poison)  # float("nan") / float("inf")


def PoisonedGAN(cfg: ModelConfig, channels: int, resolution: int) -> GANModels:  # noqa: N802 (a model name)
    kwargs = dict(cfg.kwargs)
    nets = build_models(
        cfg.model_copy(update={"name": "dcgan", "kwargs": {}}), channels=channels, resolution=resolution
    )
    disc = PoisonedDiscriminator(
        nets.discriminator, kwargs["poison"], kwargs["poison_calls"], kwargs.get("poison_rank", 0)
    )
    return GANModels(nets.generator, disc, nets.z_dim)
