"""ADA's p controller: its rule, and in a real training run p rising while D overfits, within [0, 1]."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from distgan.augment.adaptive import AdaptiveP
from distgan.config import AugConfig
from tests.conftest import write_mnist
from tests.training.helpers import train_in_process


def test_the_rule_every_interval_with_the_sums_of_all_its_steps():
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    ctl = AdaptiveP(AugConfig(name="ada", interval=2, speed_kimg=0.1, target=0.6), 10, acc.device)
    step = 10 * 2 / 100  # images per step x interval / (speed_kimg x 1000)
    ctl.observe(torch.tensor([1.0, 2.0, -1.0, float("nan")]))  # r = 1/3 so far: NaN is not counted
    assert ctl.end_step(1, 0.5, acc) == 0.5  # not an adjustment step
    ctl.observe(torch.tensor([3.0, 4.0]))  # the interval: 4 positive, 1 negative of 5, r = 3/5 = target: no move
    assert ctl.end_step(2, 0.5, acc) == 0.5
    ctl.observe(torch.tensor([1.0, 1.0, 1.0]))
    assert ctl.end_step(4, 0.5, acc) == pytest.approx(0.5 + step)  # r = 1 > 0.6: up
    ctl.observe(torch.tensor([-1.0]))
    assert ctl.end_step(6, 0.1, acc) == 0.0  # down, clamped at 0
    ctl.observe(torch.tensor([1.0]))
    assert ctl.end_step(8, 0.9, acc) == 1.0  # up, clamped at 1
    # A checkpoint between adjustments carries the sums so far, and the next adjustment uses them.
    ctl.observe(torch.tensor([-1.0, -1.0]))
    assert ctl.fold(acc) == [-2, 2]
    resumed = AdaptiveP(ctl.cfg, 10, acc.device)
    resumed.load([-2, 2])
    resumed.observe(torch.tensor([1.0]))  # r = -1/3: down
    assert resumed.end_step(10, 0.5, acc) == pytest.approx(0.5 - step)


@pytest.mark.slow
def test_p_rises_while_d_overfits_and_stays_in_0_1(tmp_path: Path):
    data = write_mnist(tmp_path / "mnist", n=256)
    # A D much wider than G with a 20x larger learning rate: D(real) turns positive within a few steps.
    # Adjusting every step by 8 / 100 images, p could climb from 0 to 1 in 13 steps.
    out = train_in_process(
        *(tmp_path / "run", data, "train.steps=30", "aug.name=ada", "aug.interval=1", "aug.speed_kimg=0.1"),
        *("model.d_width=16", "model.g_width=4", "optim.d.lr=0.002", "optim.g.lr=0.0001", "ema.enabled=false"),
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    p = [row["aug_p"] for row in rows]
    assert all(0.0 <= value <= 1.0 for value in p), p
    assert p[-1] >= 0.8 and max(p) == 1.0, p  # rose to the clamp
    assert sum(row["d_real"] > 0 for row in rows[-10:]) >= 8, "D did not overfit: the test lost its premise"
    state = json.loads((out / "checkpoints" / "step_30" / "train_state.json").read_text())
    assert state["aug_p"] == p[-1]
    # The statistic p followed is logged with it, and kept for a resume's first rows.
    assert max(row["aug_rt"] for row in rows if "aug_rt" in row) > 0.6  # what made p rise
    assert state["aug_rt"] == rows[-1]["aug_rt"]
