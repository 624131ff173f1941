"""`GlobalBatchSampler`: one infinite, seeded stream of GLOBAL batches, identical on every rank.

The index stream is the concatenation over epochs e = 0, 1, 2, ... of
`torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed_for(seed, e)))`;
batch k is `stream[start + k*batch_size : start + (k+1)*batch_size]`. Batches span epoch
boundaries, so nothing is dropped and no rank can run out. `start` counts samples, so a run
resumed with `start = samples consumed so far` continues the exact same stream.

How the trainer prepares it (checked against accelerate 1.15, 1 and 2 processes, 0 and 2
workers, in tests/data/test_loader.py): nothing special.

    loader = build_loader(dataset, global_micro_batch, seed, start, num_workers)
    loader = accelerator.prepare(loader)  # Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True))

With split_batches=True, `prepare` wraps this sampler in accelerate's `BatchSamplerShard`,
which iterates it lazily and hands rank r the contiguous slice [r*b:(r+1)*b] of every global
batch (b = global_micro_batch / num_processes, which must divide evenly), so each rank
decodes only its own images. It never calls `len()` on the sampler unless someone calls
`len()` on the loader, which raises TypeError here: the stream has no end. The sampler has no
`.sampler`/`.generator` attribute on purpose: accelerate then neither re-seeds nor
synchronises any RNG for it. Iterate the prepared loader ONCE (`batches = iter(loader)`);
every new `iter()` restarts at `start`.

Launching 2 CPU processes (tests, debugging) with accelerate 1.15: `accelerate launch --cpu
--num_processes 2` (and a MULTI_CPU config without mpirun) silently starts ONE process. Use
`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 ...` (torchrun + gloo).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def seed_for(seed: int, epoch: int) -> int:
    """The permutation seed of `epoch`: well mixed, so neighbouring (seed, epoch) never collide."""
    state = np.random.SeedSequence([seed % 2**64, epoch]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & (2**63 - 1)


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch (int64 tensor)."""
    return torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed_for(seed, epoch)))


class GlobalBatchSampler(Sampler[list[int]]):
    """Infinite batch sampler over `num_samples` items; see the module docstring."""

    drop_last = True  # every batch is full; accelerate reads this attribute

    def __init__(self, num_samples: int, batch_size: int, seed: int, start: int = 0) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples={num_samples}: need at least one sample")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: need at least 1")
        if start < 0:
            raise ValueError(f"start={start}: a stream position is >= 0")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.start = start

    def __len__(self) -> int:
        raise TypeError("GlobalBatchSampler is infinite: it has no length")

    def __iter__(self) -> Iterator[list[int]]:
        n, size = self.num_samples, self.batch_size
        epoch, offset = divmod(self.start, n)
        pending = epoch_permutation(n, self.seed, epoch)[offset:]
        while True:
            # Holds at most one batch plus one epoch of indices (more only if batch > dataset).
            while len(pending) < size:
                epoch += 1
                pending = torch.cat([pending, epoch_permutation(n, self.seed, epoch)])
            yield pending[:size].tolist()
            pending = pending[size:]
