"""The adversarial terms of each loss, as per-sample functions of D's logits; `loss.name` picks one.

D minimises `d_real(r) + d_fake(f)`; G minimises `g_fake(f)`. All return per-sample
values; the objective takes the mean so that DDP's gradient average over ranks equals the
mean over the global batch. A new loss is one entry in `ADVERSARIAL_LOSSES`, whose names are
`loss.name`'s allowed values; the module loads without torch so that the config can read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class AdversarialTerms:
    d_real: Callable[[Tensor], Tensor]
    d_fake: Callable[[Tensor], Tensor]
    g_fake: Callable[[Tensor], Tensor]


def _neg(x: Tensor) -> Tensor:
    return -x


def _softplus(x: Tensor) -> Tensor:
    from torch.nn.functional import softplus  # here, not at the top: see the module docstring

    return softplus(x)


ADVERSARIAL_LOSSES: dict[str, AdversarialTerms] = {
    # Goodfellow et al.'s value function: G minimises log(1 - D(G(z))), which saturates.
    "minimax": AdversarialTerms(d_real=lambda r: _softplus(-r), d_fake=_softplus, g_fake=lambda f: -_softplus(f)),
    # G maximises log D(G(z)) instead: same fixed point, strong gradients early on.
    "nonsaturating": AdversarialTerms(d_real=lambda r: _softplus(-r), d_fake=_softplus, g_fake=lambda f: _softplus(-f)),
    "wgan": AdversarialTerms(d_real=_neg, d_fake=lambda f: f, g_fake=_neg),
    "wgan-gp": AdversarialTerms(d_real=_neg, d_fake=lambda f: f, g_fake=_neg),
    "hinge": AdversarialTerms(d_real=lambda r: (1.0 - r).relu(), d_fake=lambda f: (1.0 + f).relu(), g_fake=_neg),
    "lsgan": AdversarialTerms(
        d_real=lambda r: 0.5 * (r - 1.0).square(),
        d_fake=lambda f: 0.5 * f.square(),
        g_fake=lambda f: 0.5 * (f - 1.0).square(),
    ),
}
