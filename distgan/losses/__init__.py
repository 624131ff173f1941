"""Losses: the adversarial terms (`loss.name`), the regularizers, and the objective of each phase.

Names resolve on first use (PEP 562), so that the config can read the registry of adversarial
losses without importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ADVERSARIAL_LOSSES": "distgan.losses.adversarial",
    "AdversarialTerms": "distgan.losses.adversarial",
    "Batch": "distgan.losses.batch",
    "Objective": "distgan.losses.objective",
    "PhaseNetworks": "distgan.losses.objective",
    "PhaseOutput": "distgan.losses.objective",
    "REGULARIZERS": "distgan.losses.regularizers",
    "Regularizer": "distgan.losses.regularizers",
}
__all__ = [
    "ADVERSARIAL_LOSSES",
    "REGULARIZERS",
    "AdversarialTerms",
    "Batch",
    "Objective",
    "PhaseNetworks",
    "PhaseOutput",
    "Regularizer",
]

if TYPE_CHECKING:
    from distgan.losses.adversarial import ADVERSARIAL_LOSSES, AdversarialTerms
    from distgan.losses.batch import Batch
    from distgan.losses.objective import Objective, PhaseNetworks, PhaseOutput
    from distgan.losses.regularizers import REGULARIZERS, Regularizer


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'distgan.losses' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
