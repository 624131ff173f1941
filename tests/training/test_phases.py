"""What a training step takes from the data stream: the G phase's own real batch under RpGAN."""

from __future__ import annotations

from pathlib import Path

import pytest

from distgan.training.phases import real_images_per_step, training_phases
from tests.training.helpers import reset_accelerate, tiny_config


def test_real_images_per_step_counts_every_phase_that_reads():
    assert real_images_per_step(training_phases(3), 16) == 48
    assert real_images_per_step(training_phases(3, g_reads_data=True), 16) == 64


@pytest.mark.parametrize(("loss", "micro_batches"), [("nonsaturating", 4), ("rpgan", 6)])
def test_the_g_phase_draws_the_next_global_micro_batches_only_when_the_loss_compares_with_reals(
    tmp_path: Path, mnist_dir: Path, loss: str, micro_batches: int
):
    from distgan.training.loop import Trainer

    reset_accelerate()
    cfg = tiny_config(tmp_path / "run", mnist_dir, f"loss.name={loss}", "train.n_critic=2", "train.grad_accum=2")
    trainer = Trainer(cfg)
    taken = []

    def stream():
        for images, labels in trainer.real:
            taken.append(images)
            yield images, labels

    trainer.train_step(stream())
    # n_critic 2 x grad_accum 2 for D, plus grad_accum 2 for G under RpGAN; 4 images per micro-batch.
    assert len(taken) == micro_batches
    assert trainer.state.data_position == micro_batches * 4
