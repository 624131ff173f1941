"""fp16 loss scaling with one GradScaler per network.

accelerate keeps ONE scaler for the Accelerator, so an overflow in D's backward would
also shrink the scale G's loss is multiplied by (and the other way round). distgan gives
each network its own scaler: the accelerator's for D, a twin for G, switched in with
`use` before each phase's backward; `step` steps a phase's optimizer through its own
scaler. Both scalers are checkpointed (distgan.training.checkpoint.SCALERS_FILE).

On CPU accelerate creates no scaler and applies no fp16 autocast (the math stays fp32);
distgan still runs the loss-scaling path there, which is how CI tests it.
"""

from __future__ import annotations

from typing import Any

import torch
from accelerate import Accelerator

from distgan import compat


class PhaseScalers:
    def __init__(self, accelerator: Accelerator) -> None:
        self.accelerator = accelerator
        self.enabled = accelerator.mixed_precision == "fp16"
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        if not self.enabled:
            return
        handler = accelerator.scaler_handler
        kwargs = handler.to_kwargs() if handler is not None else {}
        device = accelerator.device.type
        first = accelerator.scaler or torch.amp.GradScaler(device, **kwargs)
        self.scalers = {"d": first, "g": torch.amp.GradScaler(device, **kwargs)}
        self.use("d")

    def use(self, phase: str) -> None:
        """Makes `accelerator.backward` scale with this phase's scaler."""
        if self.enabled:
            compat.use_scaler(self.accelerator, self.scalers[phase])

    def unscale(self, phase: str, optimizer: torch.optim.Optimizer) -> None:
        """Divides the phase's gradients by its scale now (to read their norm); `step` then won't."""
        self.scalers[phase].unscale_(optimizer)

    def step(self, phase: str, optimizer: torch.optim.Optimizer) -> None:
        """Unscale (unless done already), step unless the scaled gradients overflowed, adapt the scale."""
        scaler = self.scalers[phase]
        scaler.step(optimizer)
        scaler.update()

    def scale(self, phase: str) -> torch.Tensor | None:
        """The current scale as a device tensor (reading it as a float would sync)."""
        scaler = self.scalers.get(phase)
        return compat.scaler_scale(scaler) if scaler is not None else None

    def state_dict(self) -> dict[str, Any]:
        return {phase: scaler.state_dict() for phase, scaler in self.scalers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for phase, scaler_state in state.items():
            if phase in self.scalers and scaler_state:
                self.scalers[phase].load_state_dict(scaler_state)
