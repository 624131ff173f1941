"""Building the Accelerator and the optimizers from the config."""

from __future__ import annotations

import functools

import accelerate.accelerator
import accelerate.optimizer
import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import ProjectConfiguration
from torch import nn

from distgan.config import Config, OptimizerConfig
from distgan.training.deepspeed_engines import (adopt_deepspeed_world, check_supported, deepspeed_plugins,
                                                 deepspeed_requested)
from distgan.training.speed import resolve_mixed_precision


# accelerate's backward() and optimizer step() ask importlib whether the optional `lomo`
# package is installed on every call (about 0.4 ms each on CPU, six times per step); the
# answer cannot change during a run.
for _module in (accelerate.accelerator, accelerate.optimizer):
    if not hasattr(_module.is_lomo_available, "cache_info"):
        _module.is_lomo_available = functools.cache(_module.is_lomo_available)


def make_accelerator(cfg: Config) -> Accelerator:
    """One Accelerator for G and D.

    `split_batches=True`: the loader yields the GLOBAL micro-batch and each rank keeps its
    contiguous slice, which is what makes N ranks see the samples one rank would.
    Under a DeepSpeed accelerate config this is the first of two Accelerators, holding one
    plugin per network (see distgan.training.deepspeed_engines).
    """
    log_with = None if cfg.tracker == "none" else cfg.tracker
    deepspeed = deepspeed_requested()
    if deepspeed:
        check_supported(cfg)  # before any process group or engine exists
    accelerator = Accelerator(
        # Without a GPU, processes started by `accelerate launch --multi_gpu` (torchrun) must
        # still form a gloo group; accelerate only does that when told it runs on the CPU.
        # DeepSpeed forms its own group (gloo without a GPU) and is off when told `cpu`.
        cpu=not torch.cuda.is_available() and not deepspeed,
        deepspeed_plugins=deepspeed_plugins() if deepspeed else None,
        # auto: bf16 on GPUs that support it unless the launcher asks for fp16; None: the launcher's.
        mixed_precision=resolve_mixed_precision(cfg.train.mixed_precision),
        gradient_accumulation_steps=cfg.train.grad_accum,
        log_with=log_with,
        project_config=ProjectConfiguration(project_dir=cfg.output_dir, logging_dir=f"{cfg.output_dir}/tensorboard"),
        dataloader_config=DataLoaderConfiguration(split_batches=True, non_blocking=True),
        # Never static_graph: it breaks requires_grad toggling and accumulation.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
        step_scheduler_with_optimizer=False,
    )
    if deepspeed:
        adopt_deepspeed_world(accelerator)
    return accelerator


def make_optimizer(model: nn.Module, cfg: OptimizerConfig, device: torch.device) -> torch.optim.Optimizer:
    """Fused Adam: one kernel for all parameters, on CUDA and CPU alike.

    Fused is also what lets a non-finite step be skipped on the device (its `found_inf`
    input, see distgan.training.nonfinite); on CPU it is about 7x faster than foreach.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                            weight_decay=cfg.weight_decay, fused=True)
