"""Objectives over hand-made 'discriminators' whose outputs and input gradients are known in closed form."""

from __future__ import annotations

import torch
from torch import nn

from distgan.config import LossConfig
from distgan.losses import Batch, Objective, PhaseNetworks


class Lookup(nn.Module):
    """A 'discriminator' whose logit is the first pixel: lets the test choose the logits."""

    def forward(self, x):
        return x.flatten(1)[:, 0] * 1.0


class Quadratic(nn.Module):
    """D(x) = sum(w * x^2): dD/dx = 2 w x, known in closed form."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.7))

    def forward(self, x):
        return (self.w * x.square()).flatten(1).sum(1)


class Fixed(nn.Module):
    """A 'generator' that returns the given images whatever z is."""

    def __init__(self, images):
        super().__init__()
        self.images = images

    def forward(self, z):
        return self.images


def as_images(logits):
    return logits.view(-1, 1, 1, 1).clone()


def no_uniform(stream, shape):
    raise AssertionError("only wgan-gp draws")


def objective(
    cfg: LossConfig, D: nn.Module, fake, separate_penalty_forward: bool = False, loss_scale=None
) -> Objective:
    """The objective as the DDP backend wires it (penalties on the main forward) or as DeepSpeed does."""
    return Objective(
        cfg,
        PhaseNetworks(
            G=Fixed(fake),
            D=D,
            D_frozen=D,
            D_penalty=D if separate_penalty_forward else None,
            loss_scale=lambda phase: loss_scale,
        ),
    )


def batch(real, uniform=no_uniform) -> Batch:
    return Batch(real=real, real_labels=None, z=torch.zeros(real.shape[0], 1), fake_labels=None, uniform=uniform)
