"""Building the Accelerator and the optimizers from the config."""

from __future__ import annotations

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import DeepSpeedPlugin, ProjectConfiguration
from torch import nn

from distgan import compat
from distgan.config import Config, OptimizerConfig
from distgan.training.speed import resolve_mixed_precision

compat.cache_lomo_check()


def make_accelerator(cfg: Config, deepspeed_plugins: dict[str, DeepSpeedPlugin] | None = None) -> Accelerator:
    """The main Accelerator (under DeepSpeed the first of two, holding one plugin per network).

    `split_batches=True`: the loader yields the GLOBAL micro-batch and each rank keeps its
    contiguous slice, which is what makes N ranks see the samples one rank would.
    """
    log_with = None if cfg.tracker == "none" else cfg.tracker
    return Accelerator(
        # Without a GPU, processes started by `accelerate launch --multi_gpu` (torchrun) must
        # still form a gloo group; accelerate only does that when told it runs on the CPU.
        # DeepSpeed forms its own group (gloo without a GPU) and is off when told `cpu`.
        cpu=not torch.cuda.is_available() and not deepspeed_plugins,
        deepspeed_plugins=deepspeed_plugins,
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


def make_optimizer(model: nn.Module, cfg: OptimizerConfig, device: torch.device) -> torch.optim.Optimizer:
    """Fused Adam: one kernel for all parameters, on CUDA and CPU alike.

    Fused is also what lets a non-finite step be skipped on the device (see
    distgan.compat.step_unless); on CPU it is about 7x faster than foreach.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=True)
