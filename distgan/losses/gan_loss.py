"""What is computed in each phase (the NVlabs split): the loop decides when, this decides what."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from distgan.config import LossConfig
from distgan.losses.adversarial import input_gradient_norm_sq, terms_for

# Draws this rank's slice of a global-batch random tensor: draw(per_sample_shape) -> [b, *shape].
UniformDraw = Callable[[tuple[int, ...]], Tensor]


@dataclass
class PhaseOutput:
    loss: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)


class GANLoss:
    """Adversarial loss plus its regularisers (R1, gradient penalty, weight clipping)."""

    def __init__(self, cfg: LossConfig) -> None:
        self.cfg = cfg
        self.terms = terms_for(cfg.name)
        self.uses_gradient_penalty = cfg.name == "wgan-gp"
        self.clips_weights = cfg.name == "wgan"

    def r1_due(self, d_step: int) -> bool:
        """Lazy R1: the penalty is applied every `r1_interval` D steps and scaled up to match."""
        return self.cfg.r1_gamma > 0 and d_step % self.cfg.r1_interval == 0

    def discriminator(
        self,
        D: nn.Module,
        real: Tensor,
        fake: Tensor,
        *,
        apply_r1: bool,
        draw_uniform: UniformDraw,
        grad_scale: Tensor | None = None,
        penalty_net: nn.Module | None = None,
    ) -> PhaseOutput:
        """D's loss on real and (detached) fake images in one forward pass.

        `penalty_net`: differentiate R1 / the gradient penalty through separate forwards of this
        module instead of through D's main forward (DeepSpeed: the engine's forward hooks its
        output into the engine's backward bookkeeping, which `autograd.grad` must not trigger).
        """
        n = real.shape[0]
        shared = penalty_net is None
        if apply_r1 and shared:
            real = real.detach().requires_grad_(True)
        inputs = [real, fake.detach()]
        if self.uses_gradient_penalty:
            alpha = draw_uniform((1, 1, 1)).to(real.dtype)
            mixed = torch.lerp(fake.detach(), real.detach(), alpha).requires_grad_(True)
            if shared:
                inputs.append(mixed)
        logits = D(torch.cat(inputs)).float()
        logits_real, logits_fake = logits[:n], logits[n : 2 * n]
        loss = self.terms.d_real(logits_real).mean() + self.terms.d_fake(logits_fake).mean()
        stats = {"d_real": logits_real.detach().mean(), "d_fake": logits_fake.detach().mean()}

        if apply_r1:
            r1_real, r1_logits = (real, logits_real) if shared else self._forward_for_penalty(penalty_net, real)
            penalty = input_gradient_norm_sq(r1_logits, r1_real, grad_scale).mean()
            # The lazy interval multiplies the weight so the average regularisation is unchanged.
            loss = loss + penalty * (self.cfg.r1_gamma / 2 * self.cfg.r1_interval)
            stats["r1"] = penalty.detach()
        if self.uses_gradient_penalty:
            gp_logits = logits[2 * n :] if shared else penalty_net(mixed).float()
            norm = (input_gradient_norm_sq(gp_logits, mixed, grad_scale) + 1e-12).sqrt()
            penalty = (norm - 1.0).square().mean()
            loss = loss + self.cfg.gp_weight * penalty
            stats["gp"] = penalty.detach()
        stats["loss_d"] = loss.detach()
        return PhaseOutput(loss, stats)

    @staticmethod
    def _forward_for_penalty(net: nn.Module, images: Tensor) -> tuple[Tensor, Tensor]:
        images = images.detach().requires_grad_(True)
        return images, net(images).float()

    def generator(self, D: nn.Module, fake: Tensor) -> PhaseOutput:
        """G's loss through a frozen D."""
        logits_fake = D(fake).float()
        loss = self.terms.g_fake(logits_fake).mean()
        return PhaseOutput(loss, {"loss_g": loss.detach()})

    @torch.no_grad()
    def after_discriminator_step(self, D: nn.Module) -> None:
        """WGAN's Lipschitz constraint: clip every D weight after each D update."""
        if self.clips_weights:
            params = list(D.parameters())
            torch._foreach_clamp_min_(params, -self.cfg.clip_value)
            torch._foreach_clamp_max_(params, self.cfg.clip_value)
