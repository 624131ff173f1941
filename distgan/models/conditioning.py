"""Class conditioning for any G and D: a class embedding concatenated to z, and the projection
discriminator (Miyato & Koyama 2018).

G(z, c) = net([z, embed(c)]): the network is built for latents of z_dim + embed_dim, so every
built-in G (and R3GAN's, whose conditioning is exactly this) takes classes the same way.
D(x, c) = head(h) + <embed(c), pool(h)> with h = features(x): the unconditional logit plus how
well the features match the class; pool sums a feature map over its positions.
"""

from __future__ import annotations

import json
import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from distgan.training.noise import mix_seed

CLASS_DRAW = 1  # keys a generated set's class draw apart from its latents, drawn from the same seed


def uniform_classes(num: int, num_classes: int, seed: int) -> Tensor:
    """The classes of `num` generated images when none are asked for: uniform, as in training, from
    `seed` on the CPU (the same on every device and world size). Used by evaluation and `sample`."""
    return torch.randint(num_classes, (num,), generator=torch.Generator().manual_seed(mix_seed(seed, CLASS_DRAW)))


def class_metadata(num_classes: int, class_names: list[str]) -> dict[str, str]:
    """What is stored with a conditional generator's weights (safetensors metadata); {} when unconditional."""
    if not num_classes:
        return {}
    return {"num_classes": str(num_classes), "class_names": json.dumps(list(class_names))}


def classes_from_metadata(metadata: dict[str, str]) -> tuple[int, list[str]]:
    """(class count, class names) read back from `class_metadata`; (0, []) for an unconditional network."""
    return int(metadata.get("num_classes", 0)), json.loads(metadata.get("class_names", "[]"))


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
