"""Losses against their textbook formulas, and the penalties against hand-derived gradients."""

import math

import pytest
import torch
from torch import nn

from distgan.config import LossConfig
from distgan.losses import LOSS_NAMES, build_loss

R = torch.tensor([2.0, -1.0, 0.5])
F_ = torch.tensor([-0.5, 1.5, 0.0])


def sig(x):
    return torch.sigmoid(x)


EXPECTED = {
    "minimax": (-(sig(R).log()).mean() - (1 - sig(F_)).log().mean(), (1 - sig(F_)).log().mean()),
    "nonsaturating": (-(sig(R).log()).mean() - (1 - sig(F_)).log().mean(), -(sig(F_).log()).mean()),
    "wgan": (F_.mean() - R.mean(), -F_.mean()),
    "hinge": (torch.relu(1 - R).mean() + torch.relu(1 + F_).mean(), -F_.mean()),
    "lsgan": (0.5 * ((R - 1) ** 2).mean() + 0.5 * (F_**2).mean(), 0.5 * ((F_ - 1) ** 2).mean()),
}


class Lookup(nn.Module):
    """A 'discriminator' whose logit is the first pixel: lets the test choose the logits."""

    def forward(self, x):
        return x.flatten(1)[:, 0] * 1.0


def as_images(logits):
    return logits.view(-1, 1, 1, 1).clone()


def no_uniform(shape):
    raise AssertionError("only wgan-gp draws")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_adversarial_terms_match_formulas(name):
    loss = build_loss(LossConfig(name=name))
    d = loss.discriminator(Lookup(), as_images(R), as_images(F_), apply_r1=False, draw_uniform=no_uniform)
    g = loss.generator(Lookup(), as_images(F_))
    want_d, want_g = EXPECTED[name]
    assert torch.allclose(d.loss, want_d, atol=1e-6)
    assert torch.allclose(g.loss, want_g, atol=1e-6)
    assert torch.allclose(d.stats["d_real"], R.mean()) and torch.allclose(d.stats["d_fake"], F_.mean())


def test_every_named_loss_is_implemented():
    assert set(LOSS_NAMES) == {"minimax", "nonsaturating", "wgan", "wgan-gp", "hinge", "lsgan"}


class Quadratic(nn.Module):
    """D(x) = sum(w * x^2): dD/dx = 2 w x, known in closed form."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.7))

    def forward(self, x):
        return (self.w * x.square()).flatten(1).sum(1)


def test_r1_penalty_value_and_lazy_scaling():
    cfg = LossConfig(name="nonsaturating", r1_gamma=10.0, r1_interval=4)
    loss = build_loss(cfg)
    real = torch.randn(5, 1, 2, 2)
    fake = torch.randn(5, 1, 2, 2)
    D = Quadratic()
    with_r1 = loss.discriminator(D, real, fake, apply_r1=True, draw_uniform=no_uniform)
    without = loss.discriminator(D, real, fake, apply_r1=False, draw_uniform=no_uniform)
    expected_penalty = (2 * 0.7 * real).square().flatten(1).sum(1).mean()
    assert torch.allclose(with_r1.stats["r1"], expected_penalty, rtol=1e-5)
    assert torch.allclose(with_r1.loss - without.loss, expected_penalty * 10.0 / 2 * 4, rtol=1e-5)
    # The penalty reaches D's parameter through the phase's single backward.
    with_r1.loss.backward()
    assert D.w.grad is not None and torch.isfinite(D.w.grad)


def test_r1_schedule_is_every_interval_d_steps():
    loss = build_loss(LossConfig(r1_gamma=1.0, r1_interval=3))
    assert [loss.r1_due(s) for s in range(7)] == [True, False, False, True, False, False, True]
    assert not build_loss(LossConfig(r1_gamma=0.0)).r1_due(0)


def test_r1_under_a_loss_scale_equals_unscaled():
    cfg = LossConfig(r1_gamma=2.0, r1_interval=1)
    loss = build_loss(cfg)
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    plain = loss.discriminator(Quadratic(), real, fake, apply_r1=True, draw_uniform=no_uniform)
    scaled = loss.discriminator(Quadratic(), real, fake, apply_r1=True, draw_uniform=no_uniform,
                                grad_scale=torch.tensor(65536.0))
    assert torch.allclose(plain.stats["r1"], scaled.stats["r1"], rtol=1e-6)


def test_wgan_gp_penalty_on_interpolates():
    loss = build_loss(LossConfig(name="wgan-gp", gp_weight=10.0))
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    alpha = torch.tensor([0.2, 0.5, 0.9]).view(3, 1, 1, 1)
    out = loss.discriminator(Quadratic(), real, fake, apply_r1=False, draw_uniform=lambda shape: alpha)
    mixed = alpha * real + (1 - alpha) * fake
    norm = (2 * 0.7 * mixed).flatten(1).norm(dim=1)
    assert torch.allclose(out.stats["gp"], ((norm - 1) ** 2).mean(), rtol=1e-4)
    adv = (0.7 * fake.square()).flatten(1).sum(1).mean() - (0.7 * real.square()).flatten(1).sum(1).mean()
    assert torch.allclose(out.loss, adv + 10.0 * out.stats["gp"], rtol=1e-4)


def test_wgan_clips_discriminator_weights_only_for_wgan():
    D = nn.Linear(4, 1)
    with torch.no_grad():
        D.weight.fill_(0.5)
    build_loss(LossConfig(name="hinge")).after_discriminator_step(D)
    assert D.weight.max().item() == 0.5
    build_loss(LossConfig(name="wgan", clip_value=0.01)).after_discriminator_step(D)
    assert math.isclose(D.weight.abs().max().item(), 0.01, rel_tol=1e-6)
