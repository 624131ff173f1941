import torch

from distgan.config import LossConfig, load_config
from distgan.losses.regularizers import R2, build_regularizers
from tests.losses.helpers import Quadratic, batch, objective


def test_r2_penalises_the_input_gradient_on_fakes_with_lazy_scaling():
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    D = Quadratic()
    with_r2 = objective(LossConfig(r2_gamma=4.0, r2_interval=2), D, fake).loss("d", batch(real), 6)
    without = objective(LossConfig(), D, fake).loss("d", batch(real), 6)
    expected_penalty = (2 * 0.7 * fake).square().flatten(1).sum(1).mean()
    assert torch.allclose(with_r2.stats["r2"], expected_penalty, rtol=1e-5)
    assert torch.allclose(with_r2.loss - without.loss, expected_penalty * 4.0 / 2 * 2, rtol=1e-5)
    with_r2.loss.backward()
    assert D.w.grad is not None and torch.isfinite(D.w.grad)


def test_r1_and_r2_together_add_both_penalties():
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    cfg = LossConfig(r1_gamma=1.0, r1_interval=1, r2_gamma=1.0, r2_interval=1)
    both = objective(cfg, Quadratic(), fake).loss("d", batch(real), 0)
    r1 = (2 * 0.7 * real).square().flatten(1).sum(1).mean()
    r2 = (2 * 0.7 * fake).square().flatten(1).sum(1).mean()
    assert torch.allclose(both.stats["r1"], r1, rtol=1e-5) and torch.allclose(both.stats["r2"], r2, rtol=1e-5)


def test_r2_is_off_by_default_and_configured_by_its_keys():
    assert not any(isinstance(r, R2) for r in build_regularizers(load_config(None).loss))
    (r2,) = build_regularizers(load_config(None, ["loss.r2_gamma=0.5", "loss.r2_interval=4"]).loss)
    assert isinstance(r2, R2) and [r2.due(s) for s in range(5)] == [True, False, False, False, True]


def test_r1_and_r2_at_interval_one_apply_on_every_d_step_without_lazy_scaling():
    # R3GAN: (gamma / 2) * (R1 + R2) on every D step.
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    cfg = LossConfig(r1_gamma=0.1, r1_interval=1, r2_gamma=0.1, r2_interval=1)
    r1 = (2 * 0.7 * real).square().flatten(1).sum(1).mean()
    r2 = (2 * 0.7 * fake).square().flatten(1).sum(1).mean()
    for d_step in range(5):
        both = objective(cfg, Quadratic(), fake).loss("d", batch(real), d_step)
        without = objective(LossConfig(), Quadratic(), fake).loss("d", batch(real), d_step)
        assert torch.allclose(both.loss - without.loss, 0.1 / 2 * (r1 + r2), rtol=1e-5), d_step
