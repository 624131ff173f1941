"""What the loop asks of a backend: prepare, backward, step (with the device-side skip), save, load.

The loop never branches on the backend or the precision; each backend decides which module
the objective calls in each role (`PhaseNetworks`), how a loss is scaled and how a
non-finite step is skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from distgan.losses import PhaseNetworks
from distgan.training.nonfinite import NonFiniteGuard


class Backend:
    name = ""
    allows_channels_last = True  # ZeRO flattens weights into one buffer, which undoes NHWC
    accelerator: Accelerator  # the main one: collectives, trackers, process info
    G: nn.Module  # as trained: wrapped
    D: nn.Module
    G_plain: nn.Module  # the same parameters without wrappers
    D_plain: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]  # "g", "d"
    input_dtype = torch.float32  # what the networks' inputs are cast to

    def prepare(
        self, generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer
    ) -> None:
        raise NotImplementedError

    def networks(self) -> PhaseNetworks:
        raise NotImplementedError

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """The G phase runs with all of D frozen, so no D gradient hook or all-reduce fires."""
        if name == "g":
            self.D.requires_grad_(False)
        try:
            yield
        finally:
            if name == "g":
                self.D.requires_grad_(True)

    def accumulate(self) -> contextlib.AbstractContextManager:
        """Once per micro-batch: the optimizer steps on the last micro-batch of `train.grad_accum`."""
        return self.accelerator.accumulate(self.G, self.D)

    @property
    def sync_gradients(self) -> bool:
        return self.accelerator.sync_gradients

    def backward(self, phase: str, loss: Tensor) -> None:
        raise NotImplementedError

    def step(self, phase: str, guard: NonFiniteGuard, want_grad_norm: bool) -> dict[str, Tensor]:
        """The phase's optimizer step, skipped on the device when a value is not finite; returns
        `grad_norm_<phase>` when asked."""
        raise NotImplementedError

    def zero_grad(self, phase: str) -> None:
        self.optimizers[phase].zero_grad(set_to_none=True)

    def accept_checkpoint(self, path: Path) -> None:
        """Before prepare: refuses a checkpoint this backend cannot resume in one line, and readies
        what loading it needs."""

    def save(self, directory: Path) -> None:
        raise NotImplementedError

    def load(self, directory: Path) -> None:
        raise NotImplementedError

    def describe(self) -> str | None:
        """A line for the start of the run, when there is something to say."""
        return None
