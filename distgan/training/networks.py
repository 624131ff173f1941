"""The networks to train: built from `model.*` or given, checked, then sync_bn and memory format."""

from __future__ import annotations

import torch
from torch import nn

from distgan.config import Config
from distgan.models import GANModels, build_models, has_batch_stats
from distgan.models.checks import check_shapes
from distgan.models.sync_bn import convert_sync_batchnorm
from distgan.training.backends.base import Backend
from distgan.training.speed import to_channels_last, wants_channels_last


def networks_to_train(
    cfg: Config,
    backend: Backend,
    channels: int,
    resolution: int,
    generator: nn.Module | None = None,
    discriminator: nn.Module | None = None,
    num_classes: int = 0,
) -> tuple[GANModels, bool]:
    """(G and D ready for the backend's prepare, whether they are in channels_last)."""
    device, note = backend.accelerator.device, backend.accelerator.print
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    if generator is None or discriminator is None:
        nets = build_models(cfg.model, channels=channels, resolution=resolution, num_classes=num_classes)
    else:
        nets = check_shapes(
            GANModels(generator, discriminator, cfg.model.z_dim, num_classes), channels, resolution, "given to Trainer"
        )
    batch_stats = has_batch_stats(nets.generator) or has_batch_stats(nets.discriminator)
    # auto: N processes must compute what one does; in one process BatchNorm already sees the whole batch.
    sync = cfg.model.sync_bn if cfg.model.sync_bn != "auto" else batch_stats and backend.accelerator.num_processes > 1
    if cfg.model.sync_bn is True and not batch_stats:
        note("distgan: note: model.sync_bn=true but neither network has BatchNorm layers")
    if cfg.model.sync_bn is False and batch_stats and backend.accelerator.num_processes > 1:
        note(
            "distgan: note: model.sync_bn=false: BatchNorm normalises each process's slice, so this run "
            "differs from a one-process run with the same batch (model.sync_bn=auto keeps them equal)"
        )
    if sync:
        nets.generator = convert_sync_batchnorm(nets.generator, device)
        nets.discriminator = convert_sync_batchnorm(nets.discriminator, device)
    wanted = wants_channels_last(cfg.train.channels_last, device, nets.generator, nets.discriminator)
    channels_last = backend.allows_channels_last and wanted
    if channels_last:
        to_channels_last(nets.generator, nets.discriminator)
    return nets, channels_last
