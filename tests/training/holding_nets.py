"""A user model that can be held mid-step from outside, for the second Ctrl-C test.

While the file named by DISTGAN_TEST_HOLD exists, every generator forward waits (in Python,
so signals are handled at once) after creating `<that file>.held<rank>`: the step cannot end.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from distgan.config import ModelConfig
from distgan.models import GANModels, build_models


class HoldingGenerator(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        hold = Path(os.environ["DISTGAN_TEST_HOLD"])
        while hold.exists():
            hold.with_suffix(f".held{os.environ.get('RANK', '0')}").touch()
            time.sleep(0.02)
        return self.inner(z)


def HoldingGAN(cfg: ModelConfig, channels: int, resolution: int) -> GANModels:  # noqa: N802 (a model name)
    nets = build_models(cfg.model_copy(update={"name": "dcgan"}), channels=channels, resolution=resolution)
    return GANModels(HoldingGenerator(nets.generator), nets.discriminator, nets.z_dim)
