"""What each phase computes (the NVlabs split): the loop decides when, the objective decides what.

Every network call goes through `run_G(z, c)` and `run_D(x, c)`, the one place where
augmentation and class labels enter. Which module each call reaches (a DDP wrapper, a
DeepSpeed engine, D's plain module for the G phase and penalties) is the backend's choice,
handed over as `PhaseNetworks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from distgan.config import LossConfig
from distgan.losses.adversarial import ADVERSARIAL_LOSSES
from distgan.losses.batch import Batch
from distgan.losses.regularizers import build_regularizers, input_gradient_norm_sq

if TYPE_CHECKING:
    from distgan.augment import Augmentation


@dataclass
class PhaseNetworks:
    G: nn.Module  # G as trained (wrapped)
    D: nn.Module  # D as trained in the D phase (wrapped)
    D_frozen: nn.Module  # D inside the G phase, all of it frozen
    # A separate D forward for the penalties' autograd.grad; None: the D phase's forward itself.
    D_penalty: nn.Module | None
    loss_scale: Callable[[str], Tensor | None]  # fp16: the phase's loss scale, else None


@dataclass
class PhaseOutput:
    loss: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)


class Objective:
    def __init__(self, cfg: LossConfig, nets: PhaseNetworks, augment: Augmentation | None = None) -> None:
        self.augment = augment
        self.terms = ADVERSARIAL_LOSSES[cfg.name]
        regularizers = build_regularizers(cfg)
        self.penalties = [r for r in regularizers if r.differentiates_twice]
        self.regularizers = regularizers
        self.nets = nets

    def run_G(self, z: Tensor, c: Tensor | None) -> Tensor:
        return self.nets.G(z) if c is None else self.nets.G(z, c)

    def run_D(self, x: Tensor, c: Tensor | None, net: nn.Module | None = None, aug: Tensor | None = None) -> Tensor:
        """D's logits of `x`, augmented first with the per-sample parameters `aug` (see `augment_params`)."""
        if aug is not None and self.augment is not None:
            x = self.augment(x, aug)
        net = net or self.nets.D
        return (net(x) if c is None else net(x, c)).float()

    def augment_params(self, batch: Batch, phase: str, slot: str) -> Tensor | None:
        """The augmentation parameters of one kind of image (real, fake, mix) from the global batch's
        draws: every call for the same phase step and kind gets the same ones; None: none to apply."""
        return None if self.augment is None else self.augment.draw(batch.uniform, phase, slot)

    def differentiates_twice(self, phase: str, phase_step: int) -> bool:
        return phase == "d" and any(r.due(phase_step) for r in self.penalties)

    def loss(self, phase: str, batch: Batch, phase_step: int) -> PhaseOutput:
        return self.discriminator_loss(batch, phase_step) if phase == "d" else self.generator_loss(batch)

    def discriminator_loss(self, batch: Batch, d_step: int) -> PhaseOutput:
        """D's loss on real and (detached) fake images in one forward, plus the due penalties."""
        with torch.no_grad():
            fake = self.run_G(batch.z, batch.fake_labels)
        images = {"real": batch.real.detach(), "fake": fake.detach()}
        labels = {"real": batch.real_labels, "fake": batch.fake_labels}
        due = [r for r in self.penalties if r.due(d_step)]
        for reg in due:
            if reg.target not in images:
                images[reg.target] = reg.inputs(images["real"], images["fake"], batch.uniform)
                labels[reg.target] = batch.real_labels
        shared = self.nets.D_penalty is None  # penalties differentiate the main forward
        if shared:
            for reg in due:
                images[reg.target].requires_grad_(True)
        slots = list(images) if shared else ["real", "fake"]
        aug = {s: self.augment_params(batch, "d", s) for s in images}
        outputs = self.run_D(  # one D forward
            torch.cat([images[s] for s in slots]), _cat(labels, slots), aug=_cat(aug, slots)
        )
        logits = dict(zip(slots, outputs.split([images[s].shape[0] for s in slots])))
        loss = self.terms.d(logits["real"], logits["fake"]).mean()
        stats = {"d_real": logits["real"].detach().mean(), "d_fake": logits["fake"].detach().mean()}
        if self.augment is not None:
            self.augment.observe(logits["real"])
        grad_norms: dict[str, Tensor] = {}  # per target: penalties on the same images share it
        for reg in due:
            if reg.target not in grad_norms:
                x, out = images[reg.target], logits.get(reg.target)
                if not shared:
                    x = x.detach().requires_grad_(True)
                    out = self.run_D(x, labels[reg.target], self.nets.D_penalty, aug=aug[reg.target])
                grad_norms[reg.target] = input_gradient_norm_sq(out, x, self.nets.loss_scale("d"))
            term, reg_stats = reg.penalty(grad_norms[reg.target])
            loss = loss + term
            stats.update(reg_stats)
        stats["loss_d"] = loss.detach()
        return PhaseOutput(loss, stats)

    def generator_loss(self, batch: Batch) -> PhaseOutput:
        """G's loss through a frozen D; a relativistic loss sees the phase's own reals in the same forward."""
        fake = self.run_G(batch.z, batch.fake_labels)
        aug = {"fake": self.augment_params(batch, "g", "fake")}
        logits_real = None
        if self.terms.needs_real_in_g:
            # D is frozen and the reals are data, so their logits carry no gradient: only G trains.
            aug["real"] = self.augment_params(batch, "g", "real")
            images = torch.cat([fake, batch.real.detach()])
            labels = _cat({"fake": batch.fake_labels, "real": batch.real_labels}, ["fake", "real"])
            logits = self.run_D(images, labels, self.nets.D_frozen, aug=_cat(aug, ["fake", "real"]))
            logits_fake, logits_real = logits.split(fake.shape[0])
        else:
            logits_fake = self.run_D(fake, batch.fake_labels, self.nets.D_frozen, aug=aug["fake"])
        loss = self.terms.g(logits_fake, logits_real).mean()
        return PhaseOutput(loss, {"loss_g": loss.detach()})

    def after_step(self, phase: str) -> None:
        if phase == "d":
            for reg in self.regularizers:
                reg.after_step(self.nets.D)


def _cat(labels: dict[str, Tensor | None], slots: list[str]) -> Tensor | None:
    parts = [labels[s] for s in slots]
    return None if any(p is None for p in parts) else torch.cat(parts)
