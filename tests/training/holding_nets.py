"""A user model that can be held mid-step from outside, for the second Ctrl-C test.

While the file named by DISTGAN_TEST_HOLD exists, building the model and every generator forward
wait (in Python, so signals are handled at once) after creating `<that file>.held<rank>`.
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
        wait_while_held()
        return self.inner(z)


def wait_while_held() -> None:
    hold = Path(os.environ["DISTGAN_TEST_HOLD"])
    while hold.exists():
        hold.with_suffix(f".held{os.environ.get('RANK', '0')}").touch()
        time.sleep(0.02)


def HoldingGAN(cfg: ModelConfig, channels: int, resolution: int) -> GANModels:  # noqa: N802 (a model name)
    wait_while_held()
    nets = build_models(cfg.model_copy(update={"name": "dcgan"}), channels=channels, resolution=resolution)
    return GANModels(HoldingGenerator(nets.generator), nets.discriminator, nets.z_dim)
