import torch

from distgan.config import LossConfig
from tests.losses.helpers import Quadratic, batch, objective


def test_wgan_gp_penalty_on_interpolates():
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    alpha = torch.tensor([0.2, 0.5, 0.9]).view(3, 1, 1, 1)
    out = objective(LossConfig(name="wgan-gp", gp_weight=10.0), Quadratic(), fake).loss(
        "d", batch(real, uniform=lambda stream, shape: alpha), 0
    )
    mixed = alpha * real + (1 - alpha) * fake
    norm = (2 * 0.7 * mixed).flatten(1).norm(dim=1)
    assert torch.allclose(out.stats["gp"], ((norm - 1) ** 2).mean(), rtol=1e-4)
    adv = (0.7 * fake.square()).flatten(1).sum(1).mean() - (0.7 * real.square()).flatten(1).sum(1).mean()
    assert torch.allclose(out.loss, adv + 10.0 * out.stats["gp"], rtol=1e-4)
