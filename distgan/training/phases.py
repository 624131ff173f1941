"""The training step as data: which phases run, in which order, how often, what data they read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

PhaseName = Literal["d", "g"]


@dataclass(frozen=True)
class Phase:
    name: PhaseName  # the network this phase trains
    repeats: int  # optimizer steps of this phase per training step (n_critic for D)
    noise_stream: int  # keys the phase's latents in the global noise stream
    reads_data: bool  # draws the next real batches of the global stream (else reuses the last ones)


def training_phases(n_critic: int, g_reads_data: bool = False) -> tuple[Phase, ...]:
    """`n_critic` D steps, then one G step. The G phase draws its own real batch when the loss
    compares fakes with reals (RpGAN, as R3GAN does); otherwise it sees the last D step's reals."""
    return (
        Phase("d", n_critic, noise_stream=0, reads_data=True),
        Phase("g", 1, noise_stream=1, reads_data=g_reads_data),
    )


def real_images_per_step(phases: Sequence[Phase], batch_size: int) -> int:
    """Real images one training step takes from the global data stream (the data position's step)."""
    return sum(phase.repeats for phase in phases if phase.reads_data) * batch_size
