"""ADA's controller of p: raise it while D is too sure of the reals, lower it otherwise.

Every `aug.interval` steps, r_t = E[sign(D(real))] over the D phases of those steps on ALL
processes; p moves by sign(r_t - aug.target) * images / (aug.speed_kimg * 1000) and stays in
[0, 1]. The sums are integers kept on the device (no host sync between adjustments), so
their all-reduce is exact and p is the same on every process and for every world size.
"""

from __future__ import annotations

import torch
from accelerate import Accelerator
from torch import Tensor

from distgan.config import AugConfig


class AdaptiveP:
    def __init__(self, cfg: AugConfig, images_per_step: int, device: torch.device) -> None:
        self.cfg, self.images_per_step = cfg, images_per_step
        self.local = torch.zeros(2, dtype=torch.int64, device=device)  # this process's (sum of signs, count)
        # Global sums already reduced (at a checkpoint) and not yet used: the same on every process.
        self.carried = [0, 0]
        self.last_r_t: float | None = None  # what p was last adjusted on: ADA's overfitting heuristic

    def observe(self, real_logits: Tensor) -> None:
        logits = real_logits.detach().flatten()
        signs = (logits > 0).sum() - (logits < 0).sum()  # NaN counts as neither
        self.local += torch.stack([signs, torch.isfinite(logits).sum()])

    def _global(self, accelerator: Accelerator) -> list[int]:
        total = accelerator.reduce(self.local.clone(), reduction="sum").tolist()
        self.local.zero_()
        return [total[0] + self.carried[0], total[1] + self.carried[1]]

    def end_step(self, step: int, p: float, accelerator: Accelerator) -> float:
        """p after `step` (the steps done): adjusted every `interval` steps, else unchanged."""
        if step % self.cfg.interval:
            return p
        signs, count = self._global(accelerator)
        self.carried = [0, 0]
        if count == 0:  # every real logit of the interval was non-finite: nothing measured
            return p
        r_t = self.last_r_t = signs / count
        direction = (r_t > self.cfg.target) - (r_t < self.cfg.target)
        p += direction * self.images_per_step * self.cfg.interval / (self.cfg.speed_kimg * 1000)
        return min(max(p, 0.0), 1.0)

    def fold(self, accelerator: Accelerator) -> list[int]:
        """Before a checkpoint: the interval's sums so far, over all processes (every process calls)."""
        self.carried = self._global(accelerator)
        return list(self.carried)

    def load(self, carried: list[int]) -> None:
        self.carried = [int(carried[0]), int(carried[1])]
        self.local.zero_()
