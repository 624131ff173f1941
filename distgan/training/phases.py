"""The training step as data: which phases run, in which order, how often."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PhaseName = Literal["d", "g"]


@dataclass(frozen=True)
class Phase:
    name: PhaseName  # the network this phase trains
    repeats: int  # optimizer steps of this phase per training step (n_critic for D)
    noise_stream: int  # keys the phase's latents in the global noise stream
    reads_data: bool  # draws fresh real batches (the G phase reuses D's last ones)


def training_phases(n_critic: int) -> tuple[Phase, ...]:
    """`n_critic` D steps, then one G step (the G phase sees the reals of the last D step)."""
    return (Phase("d", n_critic, noise_stream=0, reads_data=True), Phase("g", 1, noise_stream=1, reads_data=False))
