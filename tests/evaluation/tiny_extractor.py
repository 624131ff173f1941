"""A small randomly initialised TorchScript extractor, so pipeline tests download nothing.

Same interface as the FID Inception file: float [N, 3, 299, 299] in [-1, 1] -> [N, 32]
features (or, with logits, a (features, [N, 10] logits) tuple).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn


class TinyFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.AvgPool2d(13),
            nn.Conv2d(3, 16, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class TinyWithLogits(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = TinyFeatures()
        self.head = nn.Linear(32, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features(x)
        return f, self.head(f)


def write_tiny_extractor(path: Path, logits: bool = False) -> Path:
    torch.manual_seed(0)
    net = TinyWithLogits() if logits else TinyFeatures()
    torch.jit.script(net.eval()).save(str(path))
    return path
