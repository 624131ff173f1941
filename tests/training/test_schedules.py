"""Schedules over images seen: their curves, what a run logs and applies, and the unscheduled default."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from distgan.training.schedules import ramp
from tests.training.helpers import reset_accelerate, tiny_config, train_in_process


def test_ramp_shapes_clamp_outside_the_ramp():
    assert [ramp("linear", t) for t in (-1.0, 0.0, 0.25, 1.0, 3.0)] == [0.0, 0.0, 0.25, 1.0, 1.0]
    assert ramp("cosine", 0.5) == pytest.approx(0.5) and ramp("cosine", 0.25) == pytest.approx(
        (1 - math.cos(math.pi / 4)) / 2
    )
    assert ramp("constant", 0.7) == 0.0


def test_a_run_applies_and_logs_the_cosine_curve(tmp_path: Path, mnist_dir: Path):
    # 8 images per step; a 40-image cosine ramp and a 16-image warm-up of the learning rate.
    out = train_in_process(
        tmp_path / "run",
        mnist_dir,
        "train.steps=8",
        "optim.g.lr=0.001",
        "optim.d.lr=0.002",
        "optim.g.betas=[0.0,0.9]",
        "schedule.shape=cosine",
        "schedule.kimg=0.04",
        "schedule.lr_warmup_kimg=0.016",
        "schedule.lr_scale_end=0.25",
        "schedule.beta2_end=0.99",
        "schedule.ema_kimg_end=1.0",
        "aug.name=ada",  # R3GAN's augmentation: p scheduled from aug.p = 0, not adapted
        "aug.p_end=0.55",
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        # The values of the row's last step, set from the images seen before it.
        kimg = (row["step"] - 1) * 8 / 1000
        weight = (1 - math.cos(math.pi * min(kimg / 0.04, 1))) / 2
        scale = (1 + (0.25 - 1) * weight) * min(kimg / 0.016, 1)
        assert row["lr_g"] == pytest.approx(0.001 * scale) and row["lr_d"] == pytest.approx(0.002 * scale)
        assert row["beta2_g"] == pytest.approx(0.9 + (0.99 - 0.9) * weight)
        assert row["ema_kimg"] == pytest.approx(0.01 + (1.0 - 0.01) * weight)  # from ema.kimg (TINY: 0.01)
        assert row["aug_p"] == pytest.approx(0.55 * weight)
    assert rows[-1]["lr_g"] == pytest.approx(0.00025)  # past the ramp: the end value, held
    assert rows[-1]["aug_p"] == 0.55


@pytest.mark.parametrize(
    ("penalties", "weights"),
    [(["loss.r1_gamma=2.0", "loss.r2_gamma=1.0"], [1.0, 2.0]), (["loss.name=wgan-gp", "loss.gp_weight=4.0"], [4.0])],
)
def test_every_penalty_weight_follows_its_scale(tmp_path: Path, mnist_dir: Path, penalties, weights):
    from distgan.training.loop import Trainer

    reset_accelerate()
    overrides = [*penalties, "schedule.shape=linear", "schedule.kimg=0.08"]
    trainer = Trainer(tiny_config(tmp_path / "run", mnist_dir, *overrides, "schedule.gamma_scale_end=0.1"))
    trainer.schedules.apply(0.04)  # halfway
    gammas = sorted(reg.gamma for reg in trainer.objective.regularizers if reg.gamma is not None)
    assert gammas == pytest.approx([w * 0.55 for w in weights])


def test_no_schedule_changes_nothing_and_logs_nothing(tmp_path: Path, mnist_dir: Path):
    out = train_in_process(tmp_path / "run", mnist_dir, "train.steps=3")
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert not {"lr_g", "lr_d", "beta2_g", "ema_kimg", "gamma_scale", "aug_p"} & row.keys()
