"""Class conditioning for any G and D: conditional BatchNorm or a class embedding concatenated
to z in G, and the projection discriminator (Miyato & Koyama 2018).

G with BatchNorm (dcgan, resnet): every BatchNorm takes a per-class gain and bias (SNGAN's and
BigGAN's conditioning), so the class modulates features that z alone produces. A concatenated
embedding there lets the batch's class differences swamp z in the first BatchNorm: measured on
MNIST, G learned to ignore z and drew one image per class.
G without it (mlp, r3gan, g_norm=none): G(z, c) = net([z, embed(c)]), the network built for
latents of z_dim + embed_dim (R3GAN's conditioning exactly).
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


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine, then a gain and a bias looked up per class; at init
    gain N(1, 0.02) and bias 0, DCGAN's BatchNorm init, per class."""

    takes_classes = True

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(features, affine=False)
        self.gain_embed = nn.Embedding(num_classes, features)
        self.bias_embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.gain_embed.weight, 1.0, 0.02)
        nn.init.zeros_(self.bias_embed.weight)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = self.norm(x)
        return h * self.gain_embed(c).to(h.dtype)[:, :, None, None] + self.bias_embed(c).to(h.dtype)[:, :, None, None]


class ClassSequential(nn.Sequential):
    """nn.Sequential whose forward(x, c) hands the classes to the layers that take them
    (`takes_classes`), so a conditional build keeps the unconditional layer names."""

    def forward(self, x: Tensor, c: Tensor) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, c) if getattr(layer, "takes_classes", False) else layer(x)
        return x


def batch_norm(features: int, num_classes: int) -> nn.Module:
    """A G BatchNorm: conditional for a conditional build."""
    return ConditionalBatchNorm2d(features, num_classes) if num_classes else nn.BatchNorm2d(features)


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
