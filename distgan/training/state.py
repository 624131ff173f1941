"""The loop's counters, checkpointed with the networks so a resume continues exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TrainState:
    step: int = 0
    # Samples consumed from the global data stream: every real image is shown to D once, so
    # this is also the kimg counter (data_position / 1000).
    data_position: int = 0
    wandb_run_id: str = ""
    # Rollbacks after non-finite steps so far; each one re-keys the noise stream.
    rollbacks: int = 0
    # Augmentation (distgan.augment): p now, and the adaptive controller's global (sum of
    # sign(D(real)), count) since its last adjustment, so a resume adjusts p exactly as before.
    aug_p: float = 0.0
    aug_signs: list[int] = field(default_factory=lambda: [0, 0])
    # The controller's last r_t = E[sign(D(real))] (logged as aug_rt; None before its first adjustment).
    aug_rt: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
