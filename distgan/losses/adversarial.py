"""The adversarial terms of each loss, as per-sample functions of D's logits; `loss.name` picks one.

D minimises `d(real_logits, fake_logits)`; G minimises `g(fake_logits, real_logits)`. Sample i
of the reals is paired with sample i of the fakes, which only relativistic losses (RpGAN) use:
the others are sums of a term per logit (`separable`). All return per-sample values; the
objective takes the mean so that DDP's gradient average over ranks equals the mean over the
global batch. A new loss is one entry in `ADVERSARIAL_LOSSES`, whose names are `loss.name`'s
allowed values; the module loads without torch so that the config can read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

Term = Callable[["Tensor"], "Tensor"]


@dataclass(frozen=True)
class AdversarialTerms:
    d: Callable[[Tensor, Tensor], Tensor]  # (real logits, fake logits) -> per-sample D loss
    g: Callable[[Tensor, Tensor | None], Tensor]  # (fake logits, real logits or None) -> per-sample G loss
    # g reads D(real): the G phase then draws its own real batch from the data stream (R3GAN).
    needs_real_in_g: bool = False


def separable(d_real: Term, d_fake: Term, g_fake: Term) -> AdversarialTerms:
    """A loss that is a term per real logit plus a term per fake logit."""
    return AdversarialTerms(d=lambda r, f: d_real(r) + d_fake(f), g=lambda f, r: g_fake(f))


def _neg(x: Tensor) -> Tensor:
    return -x


def _softplus(x: Tensor) -> Tensor:
    from torch.nn.functional import softplus  # here, not at the top: see the module docstring

    return softplus(x)


ADVERSARIAL_LOSSES: dict[str, AdversarialTerms] = {
    # Goodfellow et al.'s value function: G minimises log(1 - D(G(z))), which saturates.
    "minimax": separable(d_real=lambda r: _softplus(-r), d_fake=_softplus, g_fake=lambda f: -_softplus(f)),
    # G maximises log D(G(z)) instead: same fixed point, strong gradients early on.
    "nonsaturating": separable(d_real=lambda r: _softplus(-r), d_fake=_softplus, g_fake=lambda f: _softplus(-f)),
    "wgan": separable(d_real=_neg, d_fake=lambda f: f, g_fake=_neg),
    "wgan-gp": separable(d_real=_neg, d_fake=lambda f: f, g_fake=_neg),
    "hinge": separable(d_real=lambda r: (1.0 - r).relu(), d_fake=lambda f: (1.0 + f).relu(), g_fake=_neg),
    "lsgan": separable(
        d_real=lambda r: 0.5 * (r - 1.0).square(),
        d_fake=lambda f: 0.5 * f.square(),
        g_fake=lambda f: 0.5 * (f - 1.0).square(),
    ),
    # R3GAN's relativistic pairing (Huang et al. 2024): each real logit against its paired fake one.
    "rpgan": AdversarialTerms(
        d=lambda r, f: _softplus(-(r - f)), g=lambda f, r: _softplus(-(f - r)), needs_real_in_g=True
    ),
}
