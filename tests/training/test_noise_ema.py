"""Global-batch noise and the generator EMA."""

import torch
from torch import nn

from distgan.config import EMAConfig
from distgan.training.ema import GeneratorEMA
from distgan.training.noise import GlobalNoise, mix_seed


def test_rank_slices_reassemble_the_one_process_batch():
    cpu = torch.device("cpu")
    one = GlobalNoise(seed=5, global_batch=12, grad_accum=2, rank=0, world=1, device=cpu)
    whole = torch.cat([one.normal((3, 0), (4,), micro) for micro in range(2)])
    for world in (2, 3):
        ranks = [GlobalNoise(5, 12, 2, rank, world, cpu) for rank in range(world)]
        parts = [r.normal((3, 0), (4,), micro) for micro in range(2) for r in ranks]
        assert torch.equal(torch.cat(parts), whole)


def test_keys_give_distinct_repeatable_streams():
    noise = GlobalNoise(0, 8, 1, 0, 1, torch.device("cpu"))
    a = noise.normal((1, 0), (3,), 0)
    assert torch.equal(a, noise.normal((1, 0), (3,), 0))
    assert not torch.equal(a, noise.normal((1, 1), (3,), 0))
    assert not torch.equal(a, noise.normal((2, 0), (3,), 0))
    assert len({mix_seed(0, s, p) for s in range(100) for p in range(3)}) == 300


def test_ema_rampup_and_half_life():
    G = nn.Linear(2, 2)
    ema = GeneratorEMA(G, EMAConfig(kimg=10.0, rampup=0.05))
    assert ema.beta(0, 64) == 0.0  # the first update copies
    assert abs(ema.beta(64_000, 64) - 0.5 ** (64 / 3200)) < 1e-12  # ramp-up limits the half-life
    assert abs(ema.beta(10**9, 64) - 0.5 ** (64 / 10_000)) < 1e-12
    assert GeneratorEMA(G, EMAConfig(enabled=False)).beta(10**9, 64) == 0.0


def test_ema_update_lerps_parameters_and_copies_buffers():
    G = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = GeneratorEMA(G, EMAConfig(kimg=1.0, rampup=None))
    before = ema.generator[0].weight.clone()
    with torch.no_grad():
        G[0].weight.add_(1.0)
        G[1].running_mean.fill_(3.0)
    beta = ema.beta(1000, 100)
    ema.update(G, 1000, 100)
    assert torch.allclose(ema.generator[0].weight, beta * before + (1 - beta) * G[0].weight)
    assert torch.equal(ema.generator[1].running_mean, G[1].running_mean)
    assert not ema.generator.training and not any(p.requires_grad for p in ema.generator.parameters())
