"""The loop's counters, checkpointed with the networks so a resume continues exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class TrainState:
    step: int = 0
    images_seen: int = 0  # real images shown to D: the kimg counter
    data_position: int = 0  # samples consumed from the global data stream
    wandb_run_id: str = ""

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
