"""Random numbers drawn for the GLOBAL batch, so results do not depend on the world size.

Every draw is keyed by (seed, step, phase, ...) and regenerated from that key alone: a
rank draws the whole global batch and keeps its slice, exactly the samples that one
process would have given it. Nothing to checkpoint, and a resumed run draws the same.
"""

from __future__ import annotations

import torch
from torch import Tensor

_MASK = (1 << 64) - 1


def mix_seed(*parts: int) -> int:
    """splitmix64 over the parts: distinct keys give unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        h = (h ^ (part & _MASK)) & _MASK
        h = (h * 0xBF58476D1CE4E5B9) & _MASK
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & _MASK
        h ^= h >> 29
    return h & ((1 << 63) - 1)


class GlobalNoise:
    """Draws global-batch tensors and returns this rank's part of one micro-batch."""

    def __init__(
        self, seed: int, global_batch: int, grad_accum: int, rank: int, world: int, device: torch.device
    ) -> None:
        self.seed = seed
        self.global_batch = global_batch
        self.micro = global_batch // grad_accum
        self.per_rank = self.micro // world
        self.rank = rank
        self.device = device
        self.generator = torch.Generator(device=device)

    def _slice(self, full: Tensor, micro_index: int) -> Tensor:
        # The same layout as the data: micro-batch a is samples [a*m, (a+1)*m) of the global
        # batch, and rank r takes the r-th contiguous part of it (accelerate's split_batches).
        start = micro_index * self.micro + self.rank * self.per_rank
        return full[start : start + self.per_rank]

    def normal(self, key: tuple[int, ...], shape: tuple[int, ...], micro_index: int) -> Tensor:
        return self._draw(torch.randn, key, shape, micro_index)

    def uniform(self, key: tuple[int, ...], shape: tuple[int, ...], micro_index: int) -> Tensor:
        return self._draw(torch.rand, key, shape, micro_index)

    def _draw(self, sampler, key: tuple[int, ...], shape: tuple[int, ...], micro_index: int) -> Tensor:
        self.generator.manual_seed(mix_seed(self.seed, *key))
        full = sampler((self.global_batch, *shape), generator=self.generator, device=self.device)
        return self._slice(full, micro_index)
