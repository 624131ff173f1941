"""Augmentation inside `Objective.run_D`: every image D sees, in both phases, from global-batch draws."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from distgan.augment import build_augmentation
from distgan.augment.augmentation import stream
from distgan.config import AugConfig, LossConfig
from distgan.losses import Batch, Objective, PhaseNetworks
from distgan.training.noise import GlobalNoise
from tests.losses.helpers import Fixed, Quadratic

N = 4


class Recording(nn.Module):
    """A D that keeps what it was shown; its logit is the image mean."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x.mean((1, 2, 3))


def images(seed: int, n: int = N) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def wired(aug: AugConfig, D: nn.Module, fake: torch.Tensor, loss: LossConfig | None = None) -> Objective:
    nets = PhaseNetworks(G=Fixed(fake), D=D, D_frozen=D, D_penalty=None, loss_scale=lambda phase: None)
    return Objective(loss or LossConfig(), nets, build_augmentation(aug, N, torch.device("cpu")))


def batch_of(real: torch.Tensor, rank: int = 0, world: int = 1, labels=None) -> Batch:
    noise = GlobalNoise(seed=3, global_batch=N, grad_accum=1, rank=rank, world=world, device=torch.device("cpu"))
    uniform = lambda s, shape: noise.uniform((7, s), shape, 0)  # noqa: E731
    return Batch(real=real, real_labels=labels, z=torch.zeros(real.shape[0], 1), fake_labels=None, uniform=uniform)


@pytest.mark.parametrize("aug", [AugConfig(name="diffaug"), AugConfig(name="ada", p=0.7, adaptive=False)])
def test_reals_and_fakes_are_augmented_in_both_phases_each_with_their_own_draw(aug: AugConfig):
    real, fake, D = images(0), images(1), Recording()
    obj = wired(aug, D, fake)
    b = batch_of(real, labels=torch.arange(N))
    obj.loss("d", b, 7)
    obj.loss("g", b, 7)
    d_input, g_input = D.seen
    width = (obj.augment.pipeline.num_params,)
    params = {(ph, s): b.uniform(stream(ph, s), width) for ph in "dg" for s in ("real", "fake")}
    assert torch.equal(d_input[:N], obj.augment(real, params["d", "real"]))
    assert torch.equal(d_input[N:], obj.augment(fake, params["d", "fake"]))
    assert torch.equal(g_input, obj.augment(fake, params["g", "fake"]))
    assert not torch.equal(d_input[:N], real) and not torch.equal(g_input, fake)
    assert not torch.equal(d_input[N:], g_input), "the G phase must draw its own parameters"
    assert torch.equal(b.real_labels, torch.arange(N)) and torch.equal(b.real, real)


def test_ada_at_p_zero_shows_d_the_images_themselves():
    real, fake, D = images(0), images(1), Recording()
    obj = wired(AugConfig(name="ada", p=0.0), D, fake)
    obj.loss("d", batch_of(real), 7)
    obj.loss("g", batch_of(real), 7)
    assert torch.equal(D.seen[0], torch.cat([real, fake])) and torch.equal(D.seen[1], fake)


def test_two_ranks_augment_their_halves_as_one_process_augments_the_whole():
    real, fake = images(0), images(1)
    aug = AugConfig(name="ada", p=0.8, adaptive=False)
    whole = Recording()
    wired(aug, whole, fake).loss("d", batch_of(real), 7)
    halves = []
    for rank in range(2):
        D = Recording()
        part = slice(rank * N // 2, (rank + 1) * N // 2)
        wired(aug, D, fake[part]).loss("d", batch_of(real[part], rank, 2), 7)
        halves.append(D.seen[0])
    reals = torch.cat([h[: N // 2] for h in halves])
    fakes = torch.cat([h[N // 2 :] for h in halves])
    assert torch.equal(torch.cat([reals, fakes]), whole.seen[0])


def test_r1_differentiates_through_the_augmentation_with_respect_to_the_reals():
    # D(x) = sum(w * x^2) of the augmented image: R1 = |d D(aug(x)) / dx|^2 depends on the augmentation.
    real, fake = images(0), images(1)
    loss = LossConfig(r1_gamma=1.0, r1_interval=1)
    plain = wired(AugConfig(), Quadratic(), fake, loss).loss("d", batch_of(real), 7).stats["r1"]
    augmented = wired(AugConfig(name="diffaug"), Quadratic(), fake, loss).loss("d", batch_of(real), 7).stats["r1"]
    assert torch.isfinite(augmented) and augmented > 0 and not torch.allclose(plain, augmented)


class ConditionalRecording(nn.Module):
    """A conditional D that keeps the images and classes it was shown."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x, c):
        self.seen.append((x.detach().clone(), c.clone()))
        return x.mean((1, 2, 3))


class ConditionalFixed(nn.Module):
    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = images

    def forward(self, z, c):
        return self.images


@pytest.mark.parametrize("loss", ["nonsaturating", "rpgan"])
def test_augmented_images_keep_their_classes(loss: str):
    # Row i of the reals is the constant 0.1 * (i + 1) and has class i; translation pads with 0, so
    # after augmentation the row's largest value still says which image it was.
    real_labels, fake_labels = torch.tensor([3, 1, 0, 2]), torch.tensor([2, 2, 1, 0])
    real = (0.1 * torch.arange(1, N + 1)).view(N, 1, 1, 1).expand(N, 3, 8, 8).clone()
    fake = (-0.1 * torch.arange(1, N + 1)).view(N, 1, 1, 1).expand(N, 3, 8, 8).clone()
    D = ConditionalRecording()
    nets = PhaseNetworks(G=ConditionalFixed(fake), D=D, D_frozen=D, D_penalty=None, loss_scale=lambda phase: None)
    aug = build_augmentation(AugConfig(name="diffaug", diffaug_policy="translation"), N, torch.device("cpu"))
    obj = Objective(LossConfig(name=loss), nets, aug)
    b = batch_of(real, labels=real_labels)
    b.fake_labels = fake_labels
    obj.loss("d", b, 7)
    obj.loss("g", b, 7)
    (d_images, d_classes), (g_images, g_classes) = D.seen
    assert not torch.equal(d_images[:N], real), "the reals were not translated"
    assert torch.equal(d_classes, torch.cat([real_labels, fake_labels]))
    assert torch.equal(g_classes, fake_labels if loss != "rpgan" else torch.cat([fake_labels, real_labels]))
    for shown, classes in ((d_images, d_classes), (g_images, g_classes)):
        row_of = torch.round(shown.flatten(1).abs().max(1).values * 10).long() - 1
        sign = torch.where(shown.flatten(1).sum(1) > 0, 1, -1)
        expected = torch.where(sign > 0, real_labels[row_of], fake_labels[row_of])
        assert torch.equal(classes, expected)
