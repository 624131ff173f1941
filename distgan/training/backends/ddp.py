"""Plain accelerate: one DDP wrapper per network (or none on one process), autocast, and in
fp16 one GradScaler per network."""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator
from torch import Tensor

from distgan import compat
from distgan.config import Config
from distgan.errors import CheckpointError
from distgan.losses import PhaseNetworks
from distgan.training.backends.accelerator import make_accelerator
from distgan.training.backends.base import Backend
from distgan.training.backends.loss_scalers import PhaseScalers
from distgan.training.checkpoint import SCALERS_FILE, written_by_deepspeed
from distgan.training.nonfinite import NonFiniteGuard


class DDPBackend(Backend):
    name = "ddp"

    def __init__(self, cfg: Config, accelerator: Accelerator | None = None) -> None:
        self.accelerator = accelerator or make_accelerator(cfg)
        self.scalers = PhaseScalers(self.accelerator)

    def prepare(self, generator, discriminator, opt_g, opt_d) -> None:
        acc = self.accelerator
        self.G, self.D, opt_g, opt_d = acc.prepare(generator, discriminator, opt_g, opt_d)
        self.optimizers = {"g": opt_g, "d": opt_d}
        self.G_plain, self.D_plain = acc.unwrap_model(self.G), acc.unwrap_model(self.D)

    def networks(self) -> PhaseNetworks:
        # R1 / WGAN-GP differentiate D's main forward (D_penalty None): DDP syncs them with the loss.
        return PhaseNetworks(G=self.G, D=self.D, D_frozen=self.D, D_penalty=None, loss_scale=self.scalers.scale)

    def phase(self, name: str):
        self.scalers.use(name)
        return super().phase(name)

    def backward(self, phase: str, loss: Tensor) -> None:
        self.accelerator.backward(loss)

    def step(self, phase: str, guard: NonFiniteGuard, want_grad_norm: bool) -> dict[str, Tensor]:
        optimizer = self.optimizers[phase].optimizer  # the torch optimizer inside accelerate's wrapper
        stats = {}
        if want_grad_norm:
            if self.scalers.enabled:
                self.scalers.unscale(phase, optimizer)
            stats[f"grad_norm_{phase}"] = _grad_norm(optimizer)
        found = compat.non_finite_flag(_grads(optimizer), self.accelerator.device)
        skip = guard.record(phase, found, scaled=self.scalers.enabled)
        if self.scalers.enabled:  # the scaler skips the step itself and lowers its scale
            self.scalers.step(phase, optimizer)
        else:
            compat.step_unless(optimizer, skip)
        return stats

    def accept_checkpoint(self, path: Path) -> None:
        if written_by_deepspeed(path):
            raise CheckpointError(
                f"checkpoint {path} was written by a DeepSpeed run; resume it with the same "
                f"DeepSpeed accelerate config (e.g. accelerate_configs/deepspeed_zero2.yaml)"
            )

    def save(self, directory: Path) -> None:
        self.accelerator.save_state(str(directory), safe_serialization=True)
        if self.scalers.enabled and self.accelerator.is_main_process:
            torch.save(self.scalers.state_dict(), directory / SCALERS_FILE)

    def load(self, directory: Path) -> None:
        self.accelerator.load_state(str(directory))
        if self.scalers.enabled and (directory / SCALERS_FILE).is_file():
            self.scalers.load_state_dict(torch.load(directory / SCALERS_FILE, weights_only=True))


def _grads(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    return [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]


def _grad_norm(optimizer: torch.optim.Optimizer) -> Tensor:
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(_grads(optimizer))))
