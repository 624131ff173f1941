"""What `run_D` applies: the configured pipeline at probability p, with its global-batch draws."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from torch import Tensor

from distgan.augment.adaptive import AdaptiveP
from distgan.config import AugConfig
from distgan.losses.batch import UniformDraw
from distgan.training.state import TrainState

# Draw streams, per phase and per kind of image D sees, so no two inputs share their parameters.
STREAM_BASE = 16
PHASES = {"d": 0, "g": 1}
SLOTS = {"real": 0, "fake": 1, "mix": 2}


def stream(phase: str, slot: str) -> int:
    return STREAM_BASE + 4 * PHASES[phase] + SLOTS[slot]


class Augmentation:
    """The pipeline, p (fixed, scheduled by distgan.training.schedules, or adaptive) and its checkpointed state."""

    def __init__(self, cfg: AugConfig, pipeline, images_per_step: int, device: torch.device) -> None:
        self.cfg, self.pipeline = cfg, pipeline
        self.uses_p = cfg.name == "ada"  # DiffAugment always applies
        self.p = cfg.p
        self.adaptive = AdaptiveP(cfg, images_per_step, device) if cfg.is_adaptive else None

    def draw(self, uniform: UniformDraw, phase: str, slot: str) -> Tensor | None:
        """This process's rows of the per-sample parameters of one kind of image; None: nothing to apply."""
        if self.uses_p and self.p <= 0:
            return None  # exactly the images: no transform can be drawn at p = 0
        return uniform(stream(phase, slot), (self.pipeline.num_params,))

    def __call__(self, x: Tensor, params: Tensor) -> Tensor:
        # In fp32 whatever the networks run in: the sampling grid and color matrices need it.
        return self.pipeline(x.float(), params, self.p).to(x.dtype)

    def observe(self, real_logits: Tensor) -> None:
        if self.adaptive is not None:
            self.adaptive.observe(real_logits)

    def end_step(self, step: int, accelerator: Accelerator) -> None:
        if self.adaptive is not None:
            self.p = self.adaptive.end_step(step, self.p, accelerator)

    def save_state(self, state: TrainState, accelerator: Accelerator) -> None:
        """Into the checkpointed state: p, and the controller's sums so far. Call on every process."""
        state.aug_p = self.p
        if self.adaptive is not None:
            state.aug_signs = self.adaptive.fold(accelerator)
            state.aug_rt = self.adaptive.last_r_t

    def load_state(self, state: TrainState) -> None:
        self.p = state.aug_p
        if self.adaptive is not None:
            self.adaptive.load(state.aug_signs)
            self.adaptive.last_r_t = state.aug_rt

    def logged(self) -> dict[str, float]:
        logged = {"aug_p": self.p} if self.uses_p else {}
        if self.adaptive is not None and self.adaptive.last_r_t is not None:
            logged["aug_rt"] = self.adaptive.last_r_t  # p rises while this is above aug.target
        return logged
