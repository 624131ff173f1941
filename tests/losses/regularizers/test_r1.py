import torch

from distgan.config import LossConfig
from distgan.losses.regularizers import R1, build_regularizers
from tests.losses.helpers import Quadratic, batch, objective


def test_r1_penalty_value_and_lazy_scaling():
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    D = Quadratic()
    with_r1 = objective(LossConfig(r1_gamma=10.0, r1_interval=4), D, fake).loss("d", batch(real), 8)
    without = objective(LossConfig(), D, fake).loss("d", batch(real), 8)
    expected_penalty = (2 * 0.7 * real).square().flatten(1).sum(1).mean()
    assert torch.allclose(with_r1.stats["r1"], expected_penalty, rtol=1e-5)
    assert torch.allclose(with_r1.loss - without.loss, expected_penalty * 10.0 / 2 * 4, rtol=1e-5)
    # The penalty reaches D's parameter through the phase's single backward.
    with_r1.loss.backward()
    assert D.w.grad is not None and torch.isfinite(D.w.grad)


def test_r1_is_due_every_interval_d_steps_and_off_at_gamma_zero():
    (r1,) = build_regularizers(LossConfig(r1_gamma=1.0, r1_interval=3))
    assert isinstance(r1, R1)
    assert [r1.due(s) for s in range(7)] == [True, False, False, True, False, False, True]
    assert build_regularizers(LossConfig(r1_gamma=0.0)) == []
    off_step = objective(LossConfig(r1_gamma=1.0, r1_interval=3), Quadratic(), torch.randn(2, 1, 2, 2))
    assert "r1" not in off_step.loss("d", batch(torch.randn(2, 1, 2, 2)), 1).stats


def test_r1_under_a_loss_scale_equals_unscaled():
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    cfg = LossConfig(r1_gamma=2.0, r1_interval=1)
    plain = objective(cfg, Quadratic(), fake).loss("d", batch(real), 0)
    scaled = objective(cfg, Quadratic(), fake, loss_scale=torch.tensor(65536.0)).loss("d", batch(real), 0)
    assert torch.allclose(plain.stats["r1"], scaled.stats["r1"], rtol=1e-6)


def test_a_separate_penalty_forward_gives_the_same_loss_and_gradient():
    # The DeepSpeed wiring: the penalty differentiates its own forward of D, not the main one.
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    cfg = LossConfig(r1_gamma=2.0, r1_interval=1)
    grads = []
    for separate in (False, True):
        D = Quadratic()
        out = objective(cfg, D, fake, separate_penalty_forward=separate).loss("d", batch(real), 0)
        out.loss.backward()
        grads.append((out.loss.detach(), D.w.grad.clone()))
    assert torch.allclose(grads[0][0], grads[1][0]) and torch.allclose(grads[0][1], grads[1][1])
