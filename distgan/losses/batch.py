"""The batch each phase receives: this rank's slice of one global micro-batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

# This rank's slice of a uniform draw over the global batch: draw(stream, per_sample_shape) -> [b, *shape].
UniformDraw = Callable[[int, tuple[int, ...]], Tensor]


@dataclass
class Batch:
    real: Tensor  # images in [-1, 1]
    real_labels: Tensor | None  # class ids; -1 where the data has none
    z: Tensor  # latents of the fakes
    fake_labels: Tensor | None  # the classes the fakes are asked for (None: unconditional)
    uniform: UniformDraw  # further global-batch randomness of this phase step and micro-batch
