"""RpGAN (R3GAN's relativistic pairing) against a hand computation, and its one-forward G phase."""

import math

import torch

from distgan.config import LossConfig
from distgan.losses import ADVERSARIAL_LOSSES
from tests.losses.helpers import Lookup, as_images, batch, objective

R = [2.0, -1.0, 0.5]
F_ = [-0.5, 1.5, 0.0]


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


class Counting(Lookup):
    """Lookup that counts its forwards and the images each one sees."""

    def __init__(self):
        super().__init__()
        self.calls: list[int] = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        return super().forward(x)


def test_rpgan_pairs_real_i_with_fake_i():
    obj = objective(LossConfig(name="rpgan"), Lookup(), as_images(torch.tensor(F_)))
    d = obj.loss("d", batch(as_images(torch.tensor(R))), 0)
    g = obj.loss("g", batch(as_images(torch.tensor(R))), 0)
    # By hand: D pushes each real logit above its paired fake one, G the reverse.
    want_d = sum(softplus(-(r - f)) for r, f in zip(R, F_)) / 3
    want_g = sum(softplus(-(f - r)) for r, f in zip(R, F_)) / 3
    assert abs(d.loss.item() - want_d) < 1e-6 and abs(g.loss.item() - want_g) < 1e-6
    # Pairing, not means: the same reals in another order give another loss.
    shuffled = obj.loss("d", batch(as_images(torch.tensor(R[::-1]))), 0)
    assert abs(shuffled.loss.item() - want_d) > 1e-3


def test_only_rpgan_needs_reals_in_the_g_phase_and_it_reads_them():
    assert [n for n, t in ADVERSARIAL_LOSSES.items() if t.needs_real_in_g] == ["rpgan"]
    fake = as_images(torch.tensor(F_))
    rp = objective(LossConfig(name="rpgan"), Lookup(), fake)
    ns = objective(LossConfig(name="nonsaturating"), Lookup(), fake)
    other = as_images(torch.tensor([5.0, 5.0, 5.0]))
    assert rp.loss("g", batch(as_images(torch.tensor(R))), 0).loss != rp.loss("g", batch(other), 0).loss
    assert ns.loss("g", batch(as_images(torch.tensor(R))), 0).loss == ns.loss("g", batch(other), 0).loss


def test_the_g_phase_sees_fakes_and_reals_in_one_frozen_d_forward_and_trains_only_g():
    fake = torch.tensor(F_).view(-1, 1, 1, 1).requires_grad_(True)
    D = Counting()
    real = as_images(torch.tensor(R)).requires_grad_(True)
    g = objective(LossConfig(name="rpgan"), D, fake).loss("g", batch(real), 0)
    assert D.calls == [6]
    g.loss.backward()
    assert real.grad is None  # the reals are data: detached before D
    # d/df softplus(-(f - r)) / n = -sigmoid(r - f) / n
    want = [-1 / (1 + math.exp(-(r - f))) / 3 for r, f in zip(R, F_)]
    assert torch.allclose(fake.grad.flatten(), torch.tensor(want), atol=1e-6)
