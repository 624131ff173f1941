"""Class conditioning for any G and D: a class embedding concatenated to z, and the projection
discriminator (Miyato & Koyama 2018).

G(z, c) = net([z, embed(c)]): the network is built for latents of z_dim + embed_dim, so every
built-in G (and R3GAN's, whose conditioning is exactly this) takes classes the same way.
D(x, c) = head(h) + <embed(c), pool(h)> with h = features(x): the unconditional logit plus how
well the features match the class; pool sums a feature map over its positions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class ClassEmbeddingGenerator(nn.Module):
    """`net` maps [N, z_dim + embed_dim] latents to images; this adds the class embedding."""

    def __init__(self, net: nn.Module, num_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.net = net
        self.embed = nn.Embedding(num_classes, embed_dim)  # N(0, 1), the latents' scale

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.embed(c).to(z.dtype)], dim=1))


class ProjectionDiscriminator(nn.Module):
    """`features` maps images to h ([N, F] or [N, F, H, W]); `head` maps h to [N] logits."""

    def __init__(
        self, features: nn.Module, head: nn.Module, num_classes: int, feature_dim: int, spectral: bool
    ) -> None:
        super().__init__()
        self.features = features
        self.head = head
        embed = nn.Embedding(num_classes, feature_dim)
        # Xavier as SNGAN's projection; spectral norm where the rest of D has it, so the class
        # term cannot grow past the Lipschitz bound the other layers keep.
        nn.init.uniform_(
            embed.weight, -math.sqrt(6 / (num_classes + feature_dim)), math.sqrt(6 / (num_classes + feature_dim))
        )
        self.embed = spectral_norm(embed) if spectral else embed

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = self.features(x)
        pooled = h.sum(dim=(2, 3)) if h.dim() == 4 else h
        return self.head(h) + (self.embed(c).to(pooled.dtype) * pooled).sum(dim=1)
