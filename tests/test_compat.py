"""Canaries for the private torch / accelerate / DeepSpeed internals fenced in distgan.compat.

Each test exercises one internal the way distgan uses it, so an upgrade that changes one fails
here first, naming it, instead of as a wrong number somewhere in training.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import accelerate.accelerator
import accelerate.optimizer
import pytest
import tomllib
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState

from distgan import compat

REPO = Path(__file__).resolve().parents[1]


def test_installed_versions_are_the_verified_ones_and_pyproject_bounds_them_alike():
    assert compat.unverified_versions() == []
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = declared["dependencies"] + declared["optional-dependencies"]["deepspeed"]
    for name, (low, high) in compat.VERIFIED.items():
        (spec,) = [r for r in requirements if re.match(rf"{name}\b", r)]
        assert f">={low}" in spec and f"<{high}" in spec, (name, spec)


def test_non_finite_flag_finds_nan_and_inf_and_only_them():
    device = torch.device("cpu")
    assert compat.non_finite_flag([torch.ones(3), torch.zeros(2)], device).item() == 0.0
    assert compat.non_finite_flag([torch.ones(3), torch.tensor([1.0, float("nan")])], device).item() == 1.0
    assert compat.non_finite_flag([torch.tensor([float("-inf")])], device).item() == 1.0
    assert compat.non_finite_flag([], device).item() == 0.0


@pytest.mark.parametrize("fused", [True, False])
def test_step_unless_skips_on_the_flag_and_leaves_the_moments_alone(fused: bool):
    param = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.Adam([param], lr=0.1, fused=fused)
    assert compat.skips_on_device(optimizer) is fused
    param.grad = torch.full((4,), 0.5)
    compat.step_unless(optimizer, torch.ones(()))
    assert torch.equal(param.detach(), torch.ones(4))
    assert not optimizer.state or float(optimizer.state[param]["step"]) == 0.0
    compat.step_unless(optimizer, torch.zeros(()))
    assert float(optimizer.state[param]["step"]) == 1.0 and (param.detach() < 1).all()
    assert not hasattr(optimizer, "found_inf")  # the flag does not outlive the step


def test_scaler_scale_is_the_device_tensor_of_the_current_scale():
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    scaler.scale(torch.ones(()))  # the scale tensor exists from the first use
    scale = compat.scaler_scale(scaler)
    assert isinstance(scale, torch.Tensor) and scale.item() == 2.0**10 == scaler.get_scale()


def test_use_scaler_makes_backward_scale_the_loss_with_that_scaler():
    accelerator = Accelerator(cpu=True)
    param = torch.nn.Parameter(torch.ones(()))
    compat.use_scaler(accelerator, torch.amp.GradScaler("cpu", init_scale=8.0))
    accelerator.backward(param * 3)
    assert param.grad.item() == 24.0


def test_adopt_world_changes_what_every_accelerator_reports():
    PartialState(cpu=True)
    compat.adopt_world(num_processes=3, process_index=2, local_process_index=0)
    assert (PartialState().num_processes, PartialState().process_index) == (3, 2)
    compat.reset_accelerate_state()
    assert AcceleratorState._shared_state == {}


def test_cache_lomo_check_replaces_the_lookup_accelerate_calls():
    compat.cache_lomo_check()
    assert hasattr(accelerate.accelerator.is_lomo_available, "cache_info")
    # Still looked up by name on every optimizer step, so the cached function is the one called.
    assert "is_lomo_available()" in inspect.getsource(accelerate.optimizer.AcceleratedOptimizer.step)
    assert hasattr(accelerate.optimizer.is_lomo_available, "cache_info")


def test_raise_recompile_limit_only_raises():
    import torch._dynamo.config

    before = torch._dynamo.config.recompile_limit
    compat.raise_recompile_limit(1)
    assert torch._dynamo.config.recompile_limit == before
    compat.raise_recompile_limit(before + 5)
    assert torch._dynamo.config.recompile_limit == before + 5
    torch._dynamo.config.recompile_limit = before


@pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None,
    reason='deepspeed is not installed (pip install "distgan[deepspeed]")',
)
def test_zero_optimizer_still_records_overflow_where_engine_overflowed_reads_it():
    from deepspeed.runtime.zero.stage_1_and_2 import DeepSpeedZeroOptimizer

    assert "self.overflow = " in inspect.getsource(DeepSpeedZeroOptimizer)
    stepped = type("Engine", (), {"optimizer": type("Optimizer", (), {"overflow": True})()})()
    assert compat.engine_overflowed(stepped) and not compat.engine_overflowed(object())
