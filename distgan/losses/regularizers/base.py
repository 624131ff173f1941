"""What a regularizer is: a penalty on D's input gradients, or a constraint applied after D's step."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from distgan.config import LossConfig
from distgan.losses.batch import UniformDraw

# The images a penalty differentiates D's output with respect to.
Target = Literal["real", "fake", "mix"]


class Regularizer:
    """Subclasses set `target` (a penalty) or override `after_step` (a constraint), and
    `from_config`, which returns None when the config leaves them off."""

    target: ClassVar[Target | None] = None
    gamma: float | None = None  # a penalty's weight; schedule.gamma_scale_end scales it over images seen

    @property
    def differentiates_twice(self) -> bool:
        """A penalty on D's input gradient: its backward differentiates a gradient (no compiled graph)."""
        return self.target is not None

    @classmethod
    def from_config(cls, cfg: LossConfig) -> Regularizer | None:
        raise NotImplementedError

    def due(self, d_step: int) -> bool:
        """Whether the penalty applies at this D step (a lazy one scales itself up to match)."""
        return True

    def inputs(self, real: Tensor, fake: Tensor, uniform: UniformDraw) -> Tensor:
        """The images of `target` (detached); only "mix" needs computing."""
        return real if self.target == "real" else fake

    def penalty(self, grad_norm_sq: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The term added to D's loss from per-sample ||dD/dx||^2, and the stats to log."""
        raise NotImplementedError

    def after_step(self, discriminator: nn.Module) -> None:
        """After each D optimizer step."""


def input_gradient_norm_sq(outputs: Tensor, inputs: Tensor, loss_scale: Tensor | None) -> Tensor:
    """Per-sample ||d sum(outputs) / d inputs||^2 with a graph, for R1, R2 and WGAN-GP.

    Only the input gradient is taken (never parameter gradients): DDP does not sync
    gradients from `autograd.grad`, so the penalty must reach the parameters through the
    one `backward` of the phase. Under fp16 the outputs are scaled like the loss and the
    gradient unscaled by hand, so small gradients do not flush to zero.
    """
    total = outputs.float().sum()
    if loss_scale is not None:
        total = total * loss_scale
    (grad,) = torch.autograd.grad(total, inputs, create_graph=True)
    if loss_scale is not None:
        grad = grad / loss_scale
    return grad.float().square().flatten(1).sum(1)
