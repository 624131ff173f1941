"""Backends: how G and D are wrapped, stepped, scaled and saved (DDP via accelerate, or DeepSpeed)."""

from __future__ import annotations

from accelerate import Accelerator
from accelerate.utils import DistributedType

from distgan.config import Config
from distgan.training.backends.base import Backend
from distgan.training.backends.ddp import DDPBackend
from distgan.training.backends.deepspeed import DeepSpeedBackend, deepspeed_requested


def make_backend(cfg: Config, accelerator: Accelerator | None = None) -> Backend:
    """The backend the launcher asked for (an accelerate config with DeepSpeed, or not)."""
    if accelerator is not None:
        deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    else:
        deepspeed = deepspeed_requested()
    return DeepSpeedBackend(cfg, accelerator) if deepspeed else DDPBackend(cfg, accelerator)


__all__ = ["Backend", "DDPBackend", "DeepSpeedBackend", "make_backend"]
