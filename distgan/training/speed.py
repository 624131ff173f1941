"""The trainer's speed options: precision, memory format and torch.compile.

precision = resolve_mixed_precision(cfg.train.mixed_precision)    # before the Accelerator
channels_last = wants_channels_last(cfg.train.channels_last, device, G, D)  # before the optimizers
compile_forward(G_plain, D_plain, backend=...)                   # after prepare and the EMA copy
with eager_if(phase_differentiates_twice): ...                   # R1 / WGAN-GP D phases
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from distgan import compat

# Variants each compiled forward needs: G under no_grad (D phase) and with grad (G phase); D
# trainable on 2n images and frozen on n. nn.Sequential networks (DCGAN, MLP) share one
# forward code object and with it dynamo's per-code cache, so G, D and a second trainer or a
# benchmark's reference loop in the same process add up; 8 (the default) is too few.
RECOMPILE_LIMIT = 64


def resolve_mixed_precision(requested: str | None) -> str | None:
    """`auto`: the launcher's fp16/bf16 when it asks for one, else bf16 on a GPU that supports
    it, else fp32 ("no"). None: whatever accelerate's launcher/config says (accelerate's own rule)."""
    if requested != "auto":
        return requested
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    if launcher in ("fp16", "bf16"):
        return launcher
    # Native bf16 only (Ampere and newer): on older cards it is emulated and slower than fp32.
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
        return "bf16"
    return "no"


def has_convolutions(*nets: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for net in nets for m in net.modules())


def wants_channels_last(setting: bool | str, device: torch.device, *nets: nn.Module) -> bool:
    """`auto`: on CUDA for networks with convolutions (cuDNN's NHWC kernels with tensor cores).
    Off on the CPU, where it measured no faster for these networks."""
    if setting == "auto":
        return device.type == "cuda" and has_convolutions(*nets)
    return bool(setting)


def to_channels_last(*nets: nn.Module) -> None:
    """4-D weights to NHWC in place (parameter identity is kept, so call before the optimizers
    exist or after: both see the same tensors)."""
    for net in nets:
        net.to(memory_format=torch.channels_last)


def channels_last_images(images: Tensor) -> Tensor:
    return images.contiguous(memory_format=torch.channels_last) if images.dim() == 4 else images


def compile_forward(*nets: nn.Module, backend: str = "inductor") -> None:
    """torch.compile each network's forward in place.

    The forward, not the module: state_dict keys, checkpoints and accelerate's unwrap stay as
    without compile, and DDP's hooks and no_sync stay outside the graph (no guard on them).
    Call after `accelerator.prepare` (whose autocast wrapper then runs inside the graph) and
    after copying G for the EMA (a copy would share the compiled function). Toggling D's
    requires_grad between phases costs one extra graph per network, compiled once: the
    variants are cached side by side (see RECOMPILE_LIMIT). `dynamic=False`: the two batch
    sizes D sees are two static graphs, not one slower dynamic one.
    """
    compat.raise_recompile_limit(RECOMPILE_LIMIT)
    for net in nets:
        net.forward = torch.compile(net.forward, backend=backend, dynamic=False)


@contextlib.contextmanager
def eager_if(condition: bool) -> Iterator[None]:
    """Runs compiled code eagerly inside the block when `condition`: R1 and WGAN-GP take a
    gradient of D's gradient, which compiled backward graphs do not support."""
    if not condition:
        yield
        return
    with torch.compiler.set_stance("force_eager"):
        yield
