"""The regularizer registry: each entry builds itself from `loss.*` or stays off.

A new regularizer is one file (a `Regularizer` subclass) plus one line here.
"""

from distgan.config import LossConfig
from distgan.losses.batch import UniformDraw
from distgan.losses.regularizers.base import Regularizer, input_gradient_norm_sq
from distgan.losses.regularizers.gradient_penalty import GradientPenalty
from distgan.losses.regularizers.r1 import R1
from distgan.losses.regularizers.r2 import R2
from distgan.losses.regularizers.weight_clip import WeightClip

REGULARIZERS: dict[str, type[Regularizer]] = {
    "r1": R1,
    "r2": R2,
    "gradient_penalty": GradientPenalty,
    "weight_clip": WeightClip,
}


def build_regularizers(cfg: LossConfig) -> list[Regularizer]:
    """The regularizers the config turns on, in registry order."""
    return [reg for cls in REGULARIZERS.values() if (reg := cls.from_config(cfg)) is not None]


__all__ = ["REGULARIZERS", "Regularizer", "UniformDraw", "build_regularizers", "input_gradient_norm_sq"]
