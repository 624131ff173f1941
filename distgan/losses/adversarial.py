"""The adversarial terms of each loss, as per-sample functions of D's logits.

D minimises `d_real(r) + d_fake(f)`; G minimises `g_fake(f)`. All return per-sample
values; the caller takes the mean so that DDP's gradient average over ranks equals the
mean over the global batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class AdversarialTerms:
    d_real: Callable[[Tensor], Tensor]
    d_fake: Callable[[Tensor], Tensor]
    g_fake: Callable[[Tensor], Tensor]


def _neg(x: Tensor) -> Tensor:
    return -x


TERMS: dict[str, AdversarialTerms] = {
    # Goodfellow et al.'s value function: G minimises log(1 - D(G(z))), which saturates.
    "minimax": AdversarialTerms(
        d_real=lambda r: F.softplus(-r), d_fake=F.softplus, g_fake=lambda f: -F.softplus(f)
    ),
    # G maximises log D(G(z)) instead: same fixed point, strong gradients early on.
    "nonsaturating": AdversarialTerms(
        d_real=lambda r: F.softplus(-r), d_fake=F.softplus, g_fake=lambda f: F.softplus(-f)
    ),
    "wgan": AdversarialTerms(d_real=_neg, d_fake=lambda f: f, g_fake=_neg),
    "wgan-gp": AdversarialTerms(d_real=_neg, d_fake=lambda f: f, g_fake=_neg),
    "hinge": AdversarialTerms(
        d_real=lambda r: F.relu(1.0 - r), d_fake=lambda f: F.relu(1.0 + f), g_fake=_neg
    ),
    "lsgan": AdversarialTerms(
        d_real=lambda r: 0.5 * (r - 1.0).square(),
        d_fake=lambda f: 0.5 * f.square(),
        g_fake=lambda f: 0.5 * (f - 1.0).square(),
    ),
}


def terms_for(name: str) -> AdversarialTerms:
    return TERMS[name]


def input_gradient_norm_sq(outputs: Tensor, inputs: Tensor, grad_scale: Tensor | None) -> Tensor:
    """Per-sample ||d sum(outputs) / d inputs||^2 with a graph, for R1 and WGAN-GP.

    Only the input gradient is taken (never parameter gradients): DDP does not sync
    gradients from `autograd.grad`, so the penalty must reach the parameters through the
    one `backward` of the phase. Under fp16 the outputs are scaled like the loss and the
    gradient unscaled by hand, so small gradients do not flush to zero.
    """
    total = outputs.float().sum()
    if grad_scale is not None:
        total = total * grad_scale
    (grad,) = torch.autograd.grad(total, inputs, create_graph=True)
    if grad_scale is not None:
        grad = grad / grad_scale
    return grad.float().square().flatten(1).sum(1)
