import math

import torch
from torch import nn

from distgan.config import LossConfig
from tests.losses.helpers import objective


def test_wgan_clips_discriminator_weights_after_d_steps_only_for_wgan():
    D = nn.Linear(4, 1)
    with torch.no_grad():
        D.weight.fill_(0.5)
    objective(LossConfig(name="hinge"), D, None).after_step("d")
    assert D.weight.max().item() == 0.5
    clipping = objective(LossConfig(name="wgan", clip_value=0.01), D, None)
    clipping.after_step("g")
    assert D.weight.max().item() == 0.5
    clipping.after_step("d")
    assert math.isclose(D.weight.abs().max().item(), 0.01, rel_tol=1e-6)
