"""GlobalBatchSampler: the stream is a fixed function of (num_samples, seed), sliced by start/batch."""

from __future__ import annotations

from itertools import islice

import pytest
import torch

from distgan.data import GlobalBatchSampler, seed_for


def reference_stream(n: int, seed: int, epochs: int) -> list[int]:
    """The documented stream, computed independently of the sampler."""
    out: list[int] = []
    for e in range(epochs):
        out += torch.randperm(n, generator=torch.Generator().manual_seed(seed_for(seed, e))).tolist()
    return out


def take(sampler: GlobalBatchSampler, k: int) -> list[list[int]]:
    return list(islice(iter(sampler), k))


def flat(batches: list[list[int]]) -> list[int]:
    return [i for b in batches for i in b]


def test_batches_are_slices_of_the_documented_stream():
    n, b, seed = 10, 4, 3
    stream = reference_stream(n, seed, 6)
    batches = take(GlobalBatchSampler(n, b, seed), 12)
    assert batches == [stream[k * b : (k + 1) * b] for k in range(12)]
    # batch 2 = stream[8:12] spans epochs 0 and 1: nothing dropped at the boundary
    assert batches[2][:2] == stream[8:10] and batches[2][2:] == stream[10:12]


def test_deterministic_and_seed_dependent():
    a = take(GlobalBatchSampler(100, 16, seed=7), 20)
    assert a == take(GlobalBatchSampler(100, 16, seed=7), 20)
    assert a != take(GlobalBatchSampler(100, 16, seed=8), 20)


def test_each_epoch_is_a_permutation_and_epochs_differ():
    n = 37
    stream = flat(take(GlobalBatchSampler(n, 5, seed=0), 5 * n // 5 + 1))[: 5 * n]
    epochs = [stream[e * n : (e + 1) * n] for e in range(5)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(n))  # every sample exactly once per epoch
    assert len({tuple(e) for e in epochs}) == 5


@pytest.mark.parametrize("start", [0, 1, 9, 10, 23, 57])
def test_start_continues_the_same_stream(start):
    n, b, seed = 10, 4, 1
    stream = reference_stream(n, seed, 12)
    batches = take(GlobalBatchSampler(n, b, seed, start=start), 8)
    assert batches == [stream[start + k * b : start + (k + 1) * b] for k in range(8)]


def test_resume_after_consuming_k_batches_matches_uninterrupted_run():
    n, b = 23, 6
    full = take(GlobalBatchSampler(n, b, seed=5), 20)
    resumed = take(GlobalBatchSampler(n, b, seed=5, start=7 * b), 13)
    assert full[7:] == resumed


def test_stream_does_not_depend_on_how_the_consumer_splits_it():
    n = 29
    big = flat(take(GlobalBatchSampler(n, 12, seed=2), 10))
    small = flat(take(GlobalBatchSampler(n, 4, seed=2), 30))
    assert big == small
    # Rank slices of each global batch, put back together, are the global batch.
    for batch in take(GlobalBatchSampler(n, 12, seed=2), 10):
        ranks = [batch[r * 3 : (r + 1) * 3] for r in range(4)]
        assert flat(ranks) == batch


def test_batch_larger_than_dataset():
    batches = take(GlobalBatchSampler(3, 8, seed=0), 3)
    assert flat(batches) == reference_stream(3, 0, 8)[:24]
    assert all(len(b) == 8 for b in batches)


def test_infinite_and_accelerate_attributes():
    sampler = GlobalBatchSampler(5, 2, seed=0)
    assert sampler.batch_size == 2 and sampler.drop_last is True
    assert not hasattr(sampler, "sampler") and not hasattr(sampler, "generator")  # accelerate: no RNG sync
    with pytest.raises(TypeError):
        len(sampler)
    assert len(take(sampler, 1000)) == 1000  # never stops
    assert take(sampler, 3) == take(sampler, 3)  # every iter() restarts at `start`


def test_invalid_arguments():
    for args in ((0, 4, 0), (10, 0, 0)):
        with pytest.raises(ValueError):
            GlobalBatchSampler(*args)
    with pytest.raises(ValueError):
        GlobalBatchSampler(10, 2, 0, start=-1)


def test_seed_for_mixes_seed_and_epoch():
    seeds = {seed_for(s, e) for s in range(20) for e in range(20)}
    assert len(seeds) == 400
    assert all(0 <= s < 2**63 for s in seeds)
    assert seed_for(-1, 0) == seed_for(2**64 - 1, 0)  # negative seeds are valid too


def test_large_dataset_is_fast_and_lazy():
    # 1M samples: only the current epoch's permutation is built, not the whole stream.
    sampler = GlobalBatchSampler(1_000_000, 512, seed=0, start=10**12)
    first = take(sampler, 3)
    assert len(first) == 3 and all(0 <= i < 1_000_000 for i in flat(first))
