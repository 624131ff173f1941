"""Losses: `minimax`, `nonsaturating`, `wgan`, `wgan-gp`, `hinge`, `lsgan`, with lazy R1."""

from distgan.config import LossConfig
from distgan.losses.adversarial import TERMS
from distgan.losses.gan_loss import GANLoss, PhaseOutput

LOSS_NAMES = tuple(TERMS)


def build_loss(cfg: LossConfig) -> GANLoss:
    return GANLoss(cfg)


__all__ = ["GANLoss", "PhaseOutput", "LOSS_NAMES", "build_loss"]
