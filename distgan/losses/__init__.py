"""Losses: the adversarial terms (`loss.name`), the regularizers, and the objective of each phase."""

from distgan.losses.adversarial import ADVERSARIAL_LOSSES, AdversarialTerms
from distgan.losses.batch import Batch
from distgan.losses.objective import Objective, PhaseNetworks, PhaseOutput
from distgan.losses.regularizers import REGULARIZERS, Regularizer

__all__ = ["ADVERSARIAL_LOSSES", "AdversarialTerms", "Batch", "Objective", "PhaseNetworks", "PhaseOutput", "REGULARIZERS",
           "Regularizer"]
