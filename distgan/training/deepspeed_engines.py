"""DeepSpeed ZeRO-1/2 for both networks: one engine per network, through two Accelerators.

accelerate ties ONE DeepSpeed engine to an Accelerator (`accelerator.backward` runs that
engine's backward and, at the accumulation boundary, its optimizer step) and refuses two
models in one prepare. Its supported pattern for two trained models (docs
`usage_guides/deepspeed_multiple_model`): the first Accelerator gets one DeepSpeedPlugin
per model, a second Accelerator shares its state, and `select_deepspeed_plugin` picks the
plugin before each prepare. D goes to the first Accelerator (the loop's main one: trackers,
checkpoint registrations, collectives), G to the second, so `backward` of D's loss steps
D's engine and `backward` of G's loss steps G's.

What the loop relies on, and why it holds under ZeRO-1/2:
- Parameters stay whole on every rank (only optimizer state and gradients are
  partitioned), so the EMA, sampling, the consistency check and the final weights read
  the unwrapped modules as under DDP.
- An engine's forward hooks its output into that engine's backward bookkeeping (prologue,
  then a reduction epilogue when the graph finishes). So the G phase differentiates
  through D's plain module, frozen as under DDP (through D's engine it would run D's
  epilogue with no gradients and crash), and R1 / WGAN-GP take `autograd.grad` through a
  separate forward of D's plain module (through the engine, that `autograd.grad` would
  run the epilogue early and rescale the penalty by the accumulation steps).
- Each engine steps at accelerate's accumulation boundary (the GradientState both
  Accelerators share) and averages gradients over ranks like DDP; distgan turns off the
  gradient clipping accelerate would otherwise default to (1.0), so the updates are the
  DDP updates (tested within 1e-5).
- A non-finite gradient norm makes DeepSpeed skip the step on every rank (fp32, bf16 with
  its default `check_grad_overflow`, and fp16, where each engine has its own loss scaler);
  `engine.optimizer.overflow` tells the non-finite guard.

Not available under DeepSpeed, refused before any work: ZeRO-3, `loss.name=wgan` (weight
clipping edits parameters that ZeRO overwrites from its fp32 master copy) and `train.compile`.
A ZeRO checkpoint written at another world size is resumed through DeepSpeed's universal
checkpoint (distgan.training.zero_reshard).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DeepSpeedPlugin, DistributedType
from torch import nn

from distgan.config import Config
from distgan.errors import CheckpointError, DistganError
from distgan.training.zero_reshard import prepare_reshard

PLUGIN_D, PLUGIN_G = "d", "g"


def deepspeed_requested() -> bool:
    """True under `accelerate launch` with a DeepSpeed config (or `--use_deepspeed`)."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def uses_deepspeed(accelerator: Accelerator) -> bool:
    return accelerator.distributed_type == DistributedType.DEEPSPEED


def check_supported(cfg: Config) -> None:
    """What cannot run under DeepSpeed, as one line, before the networks are built."""
    if cfg.loss.name == "wgan":
        raise DistganError("loss.name=wgan clips D's weights in place, which ZeRO overwrites from its fp32 "
                           "master copy; use loss.name=wgan-gp with DeepSpeed, or a DDP accelerate config")
    if cfg.train.compile:
        raise DistganError("train.compile=true is not supported with DeepSpeed; set train.compile=false "
                           "or use a DDP accelerate config")
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        raise DistganError('the accelerate config asks for DeepSpeed, which is not installed: '
                           'pip install "distgan[deepspeed]"') from None


def deepspeed_plugins() -> dict[str, DeepSpeedPlugin]:
    """One plugin per network, both from the accelerate config (zero stage, offload, ...)."""
    plugins = {PLUGIN_D: DeepSpeedPlugin(), PLUGIN_G: DeepSpeedPlugin()}
    for plugin in plugins.values():
        if plugin.zero_stage not in (1, 2):
            raise DistganError(f"DeepSpeed zero_stage {plugin.zero_stage} is not supported: G and D are "
                               f"trained with ZeRO-1 or ZeRO-2 (accelerate_configs/deepspeed_zero1.yaml, "
                               f"deepspeed_zero2.yaml)")
    return plugins


def adopt_deepspeed_world(accelerator: Accelerator) -> None:
    """On CPU, take the world size and rank from the process group DeepSpeed formed.

    accelerate knows no distributed backend for the CPU device outside its MULTI_CPU mode,
    which excludes DeepSpeed, so it reports 1 process and rank 0 on every rank even though
    DeepSpeed has joined them all with gloo. (On GPUs it reports them right; then this does
    nothing.)
    """
    if not (dist.is_available() and dist.is_initialized()) or accelerator.num_processes == dist.get_world_size():
        return
    world = {"num_processes": dist.get_world_size(), "process_index": dist.get_rank(),
             "local_process_index": int(os.environ.get("LOCAL_RANK", dist.get_rank()))}
    for shared in (PartialState._shared_state, AcceleratorState._shared_state):
        shared.update(world)


@dataclass
class Engines:
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    accelerator_g: Accelerator


def prepare_engines(accelerator: Accelerator, cfg: Config, generator: nn.Module, discriminator: nn.Module,
                    opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                    load_universal: bool = False) -> Engines:
    """D's engine on `accelerator`, G's on a second Accelerator sharing its state.

    `load_universal`: the engines will load checkpoints converted by zero_reshard.resharded_view.
    """
    state = accelerator.state
    if load_universal:
        prepare_reshard(state.deepspeed_plugins.values())
    micro_batch = cfg.train.batch_size // (accelerator.num_processes * cfg.train.grad_accum)
    for plugin in state.deepspeed_plugins.values():
        config = plugin.deepspeed_config
        config["train_micro_batch_size_per_gpu"] = micro_batch
        config["gradient_accumulation_steps"] = cfg.train.grad_accum
        config["train_batch_size"] = cfg.train.batch_size
        if plugin.is_auto("gradient_clipping"):
            config["gradient_clipping"] = 0.0  # DDP path does not clip: same updates
        config.setdefault("steps_per_print", 10**9)
    state.select_deepspeed_plugin(PLUGIN_D)
    D, opt_d = accelerator.prepare(discriminator, opt_d)
    accelerator_g = Accelerator()  # shares the state, and so the accumulation counter
    accelerator_g.state.select_deepspeed_plugin(PLUGIN_G)
    G, opt_g = accelerator_g.prepare(generator, opt_g)
    state.select_deepspeed_plugin(PLUGIN_D)
    return Engines(G, D, opt_g, opt_d, accelerator_g)


GENERATOR_ENGINE_DIR = "generator_engine"  # G's engine inside a checkpoint; D's is at the top


def check_checkpoint_fits(path: Path, deepspeed: bool) -> None:
    """A checkpoint of the other kind as one line before loading."""
    written_by_deepspeed = (path / GENERATOR_ENGINE_DIR).is_dir()
    if deepspeed and not written_by_deepspeed:
        raise CheckpointError(f"checkpoint {path} was written without DeepSpeed; resume it with a DDP accelerate "
                              f"config, or start a new output_dir")
    if not deepspeed and written_by_deepspeed:
        raise CheckpointError(f"checkpoint {path} was written by a DeepSpeed run; resume it with the same "
                              f"DeepSpeed accelerate config (e.g. accelerate_configs/deepspeed_zero2.yaml)")


def engine_skipped(model: nn.Module) -> bool:
    """Whether the engine's last optimizer step was skipped for a non-finite gradient norm."""
    return bool(getattr(getattr(model, "optimizer", None), "overflow", False))


def engine_grad_norm(model: nn.Module) -> torch.Tensor:
    """The global gradient norm of the engine's last step (DeepSpeed has already reduced it)."""
    norm = model.get_global_grad_norm()
    device = next(model.parameters()).device  # the meter stacks it with the other device-side stats
    return torch.as_tensor(float("nan") if norm is None else norm, dtype=torch.float32, device=device)
