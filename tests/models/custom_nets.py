"""User-style model modules for tests/models/test_custom.py, loaded through `model.name=module:Name`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def _generator(z_dim: int, channels: int, resolution: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(z_dim, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Linear(16, channels * resolution * resolution),
        nn.Tanh(),
        nn.Unflatten(1, (channels, resolution, resolution)),
    )


def _discriminator(channels: int, resolution: int, out: int = 1) -> nn.Module:
    # Returns [N, out]: with out=1 this is the common [N, 1] convention that distgan flattens.
    return nn.Sequential(nn.Flatten(1), nn.Linear(channels * resolution * resolution, out))


class TinyGAN(nn.Module):
    """An nn.Module with .generator/.discriminator and its own z_dim (overrides cfg.z_dim)."""

    def __init__(self, cfg, channels: int, resolution: int) -> None:
        super().__init__()
        self.z_dim = 8
        self.generator = _generator(self.z_dim, channels, resolution)
        self.discriminator = _discriminator(channels, resolution)


def tuple_pair(cfg, channels: int, resolution: int) -> tuple[nn.Module, nn.Module]:
    return _generator(cfg.z_dim, channels, resolution), _discriminator(channels, resolution)


@dataclass
class Pair:
    generator: nn.Module
    discriminator: nn.Module


def dataclass_pair(cfg, channels: int, resolution: int) -> Pair:
    return Pair(_generator(cfg.z_dim, channels, resolution), _discriminator(channels, resolution))


def wrong_resolution(cfg, channels: int, resolution: int) -> tuple[nn.Module, nn.Module]:
    return _generator(cfg.z_dim, channels, resolution // 2), _discriminator(channels, resolution // 2)


def two_logits(cfg, channels: int, resolution: int) -> tuple[nn.Module, nn.Module]:
    return _generator(cfg.z_dim, channels, resolution), _discriminator(channels, resolution, out=2)


def returns_string(cfg, channels: int, resolution: int) -> str:
    return "not models"


def no_kwargs() -> tuple[nn.Module, nn.Module]:
    raise AssertionError("never called: the signature check rejects it first")


class _Counting(nn.Module):
    """Updates a buffer on every forward, even in eval mode, as some user layers do."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


def stateful_pair(cfg, channels: int, resolution: int) -> tuple[nn.Module, nn.Module]:
    gen = _generator(cfg.z_dim, channels, resolution)
    gen[0].eval()  # a submodule the user froze on purpose: its mode must survive the check
    return gen, _Counting(_discriminator(channels, resolution))
