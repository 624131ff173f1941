"""Augmentation of every image D sees (`aug.name`): DiffAugment, or the ADA pipeline with a fixed,
scheduled or adaptive p. Applied inside `Objective.run_D`, to reals and fakes, in both phases."""

from __future__ import annotations

import torch

from distgan.augment.augmentation import Augmentation
from distgan.config import AugConfig

__all__ = ["Augmentation", "build_augmentation"]


def build_augmentation(cfg: AugConfig, images_per_step: int, device: torch.device) -> Augmentation | None:
    """None for `aug.name=none`; `images_per_step` (real images D sees per step) sets the adaptive step size."""
    if cfg.name == "none":
        return None
    if cfg.name == "diffaug":
        from distgan.augment.diffaugment import DiffAugment

        return Augmentation(cfg, DiffAugment(cfg.diffaug_policy), images_per_step, device)
    from distgan.augment.ada import AdaPipeline

    return Augmentation(cfg, AdaPipeline(), images_per_step, device)
