"""The objective against textbook formulas: adversarial terms, phases, registries."""

import pytest
import torch

from distgan.config import ConfigError, LossConfig, load_config
from distgan.losses import ADVERSARIAL_LOSSES
from tests.losses.helpers import Lookup, Quadratic, as_images, batch, objective

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


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_adversarial_terms_match_formulas(name):
    obj = objective(LossConfig(name=name), Lookup(), as_images(F_))
    d = obj.loss("d", batch(as_images(R)), 1)
    g = obj.loss("g", batch(as_images(R)), 1)
    want_d, want_g = EXPECTED[name]
    assert torch.allclose(d.loss, want_d, atol=1e-6)
    assert torch.allclose(g.loss, want_g, atol=1e-6)
    assert torch.allclose(d.stats["d_real"], R.mean()) and torch.allclose(d.stats["d_fake"], F_.mean())


def test_every_named_loss_is_registered_and_the_config_takes_its_names_from_the_registry():
    assert set(ADVERSARIAL_LOSSES) == {"minimax", "nonsaturating", "wgan", "wgan-gp", "hinge", "lsgan", "rpgan"}
    for name in ADVERSARIAL_LOSSES:
        assert load_config(None, [f"loss.name={name}"]).loss.name == name
    with pytest.raises(ConfigError, match="loss.name='hingee': use one of 'minimax', 'nonsaturating'"):
        load_config(None, ["loss.name=hingee"])


def test_the_g_phase_calls_the_frozen_d_and_the_d_phase_sees_detached_fakes():
    fake = torch.randn(3, 1, 2, 2, requires_grad=True)
    D = Quadratic()
    obj = objective(LossConfig(), D, fake)
    d = obj.loss("d", batch(torch.randn(3, 1, 2, 2)), 0)
    d.loss.backward()
    assert fake.grad is None and D.w.grad is not None  # no D-phase gradient reaches G
    g = obj.loss("g", batch(torch.randn(3, 1, 2, 2)), 0)
    g.loss.backward()
    assert fake.grad is not None
