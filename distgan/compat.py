"""Every private torch / accelerate / DeepSpeed internal distgan relies on, fenced in one place.

Each one is used through a function here, checked once at import against the versions it was
verified with, and exercised by a canary test (tests/test_compat.py) that fails first, naming
the internal, when an upgrade changes it. pyproject.toml bounds the versions accordingly.
(`torch._foreach_*` kernels are not fenced: torch.optim itself is built on them.)
"""

from __future__ import annotations

import functools
import warnings
from importlib import metadata
from typing import Any

import accelerate.accelerator
import accelerate.optimizer
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from packaging.version import Version

# Verified with (inclusive lower, exclusive upper); pyproject.toml bounds them the same way.
VERIFIED = {"torch": ("2.4", "2.15"), "accelerate": ("1.2", "1.17"), "deepspeed": ("0.16", "0.20")}


def unverified_versions() -> list[str]:
    """Installed packages outside the versions distgan's internals were verified with."""
    found = []
    for name, (low, high) in VERIFIED.items():
        try:
            version = Version(metadata.version(name).split("+")[0])
        except metadata.PackageNotFoundError:
            continue
        if not Version(low) <= version < Version(high):
            found.append(f"{name} {version} (verified: >= {low}, < {high})")
    return found


def _check_versions() -> None:
    if unverified := unverified_versions():
        warnings.warn(
            f"distgan relies on internals verified with other versions of {', '.join(unverified)}; "
            f"run tests/test_compat.py to check them",
            stacklevel=2,
        )


_check_versions()


# ---- torch ----------------------------------------------------------------------------------
def non_finite_flag(grads: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """1.0 on the device when any gradient holds NaN/Inf, else 0.0, in one fused pass, no host sync.

    `_amp_foreach_non_finite_check_and_unscale_` is GradScaler's own check (a multiply by one here).
    """
    found = torch.zeros((), device=device)
    if grads:
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found, _one(device))
    return found


@functools.cache
def _one(device: torch.device) -> torch.Tensor:
    # The unscale factor of the check above, allocated once per device rather than every step.
    return torch.ones((), device=device)


def skips_on_device(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer.step` can take a device-side skip flag (torch's fused Adam/AdamW/SGD kernels)."""
    return bool(optimizer.defaults.get("fused"))


def step_unless(optimizer: torch.optim.Optimizer, skip: torch.Tensor) -> None:
    """Steps, leaving weights and moments untouched where `skip` (a device scalar) is nonzero.

    Fused optimizers read `found_inf` / `grad_scale` attributes in their step (the mechanism
    GradScaler uses), so the decision stays on the device. Other optimizers need the value on
    the host: one sync per step.
    """
    if not skips_on_device(optimizer):
        if not bool(skip):
            optimizer.step()
        return
    optimizer.found_inf = skip
    optimizer.grad_scale = None
    try:
        optimizer.step()
    finally:
        del optimizer.found_inf, optimizer.grad_scale


def scaler_scale(scaler: torch.amp.GradScaler) -> torch.Tensor | None:
    """The current loss scale as a device tensor (`get_scale()` would sync); None before first use."""
    return scaler._scale


def raise_recompile_limit(limit: int) -> None:
    """Lets dynamo keep at least `limit` graph variants per code object (see distgan.training.speed)."""
    import torch._dynamo.config

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, limit)


# ---- accelerate -----------------------------------------------------------------------------
def use_scaler(accelerator: Accelerator, scaler: torch.amp.GradScaler) -> None:
    """Makes `accelerator.backward` scale with `scaler` (accelerate holds one per Accelerator)."""
    accelerator.scaler = scaler


def adopt_world(num_processes: int, process_index: int, local_process_index: int) -> None:
    """Overrides the world accelerate reports, for every Accelerator of the process.

    Needed on CPU under DeepSpeed, where accelerate knows no backend and reports 1 process.
    """
    world = {"num_processes": num_processes, "process_index": process_index, "local_process_index": local_process_index}
    for shared in (PartialState._shared_state, AcceleratorState._shared_state):
        shared.update(world)


def cache_lomo_check() -> None:
    """accelerate's optimizer step() (and, in older versions, backward()) asks importlib whether
    the optional `lomo` package is installed on every call (about 0.4 ms each on CPU); the
    answer cannot change during a run."""
    for module in (accelerate.accelerator, accelerate.optimizer):
        if not hasattr(module.is_lomo_available, "cache_info"):
            module.is_lomo_available = functools.cache(module.is_lomo_available)


def reset_accelerate_state() -> None:
    """Forget the process-global Accelerator state, so a second Trainer in one process starts afresh."""
    from accelerate.state import GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()


# ---- DeepSpeed ------------------------------------------------------------------------------
def engine_overflowed(engine: Any) -> bool:
    """Whether a DeepSpeed engine skipped its last step for a non-finite gradient norm (ZeRO-1/2)."""
    return bool(getattr(getattr(engine, "optimizer", None), "overflow", False))


def drop_engine_hooks(module: torch.nn.Module) -> None:
    """Removes the forward hooks a DeepSpeed engine put on the module it wraps (they cast inputs
    to the engine's fp16/bf16 and track its state) from a copy of that module, such as the fp32
    EMA generator: the copy is no engine's, and the cast would feed half inputs to fp32 weights.
    Hooks of the network's own (spectral norm, user hooks) stay."""
    for sub in module.modules():
        for hooks in (sub._forward_pre_hooks, sub._forward_hooks):
            for key in [k for k, hook in hooks.items() if "DeepSpeedEngine" in getattr(hook, "__qualname__", "")]:
                del hooks[key]
