"""fp16 loss scaling with one scaler per network, run through the trainer's own code path on CPU.

accelerate applies no fp16 autocast on CPU, so the math is fp32, but the scaling, the
overflow skip and the scale updates are the code that runs on a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from distgan.training.checkpoint import SCALERS_FILE
from distgan.training.loop import Trainer
from tests.training.helpers import reset_accelerate, tiny_config, train_in_process
from tests.training.test_nonfinite import POISON, adam_steps, d_call

FP16 = ["train.mixed_precision=fp16", POISON, "model.kwargs.poison=grad_inf"]
INIT_SCALE = 65536.0  # torch's GradScaler default


def test_overflow_in_d_skips_only_d_and_lowers_only_d_scale(tmp_path: Path, mnist_dir: Path):
    out = train_in_process(
        tmp_path / "run",
        mnist_dir,
        *FP16,
        f"model.kwargs.poison_calls=[{d_call(2)}]",
        "train.steps=4",
        "train.checkpoint_every=4",
        "loss.r1_gamma=1.0",
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["overflow_d"] for r in rows] == [0, 1, 0, 0]
    assert [r["overflow_g"] for r in rows] == [0, 0, 0, 0]
    # An overflow is routine in fp16: the scaler's business, not a non-finite step.
    assert [r["skipped_d"] for r in rows] == [0, 0, 0, 0]
    assert adam_steps(out / "checkpoints" / "step_4") == (4, 3)
    scalers = torch.load(out / "checkpoints" / "step_4" / SCALERS_FILE, weights_only=True)
    assert scalers["d"]["scale"] == INIT_SCALE * 0.5
    assert scalers["g"]["scale"] == INIT_SCALE


def test_overflow_in_g_leaves_d_alone(tmp_path: Path, mnist_dir: Path):
    out = train_in_process(
        tmp_path / "run",
        mnist_dir,
        *FP16,
        f"model.kwargs.poison_calls=[{d_call(2) + 1}]",
        "train.steps=3",
        "train.checkpoint_every=3",
    )
    assert adam_steps(out / "checkpoints" / "step_3") == (2, 3)
    scalers = torch.load(out / "checkpoints" / "step_3" / SCALERS_FILE, weights_only=True)
    assert (scalers["d"]["scale"], scalers["g"]["scale"]) == (INIT_SCALE, INIT_SCALE * 0.5)


def test_both_scales_are_restored_on_resume(tmp_path: Path, mnist_dir: Path):
    out = tmp_path / "run"
    poison = f"model.kwargs.poison_calls=[{d_call(1)}, {d_call(2)}, {d_call(2) + 1}]"
    train_in_process(out, mnist_dir, *FP16, poison, "train.steps=3", "train.checkpoint_every=3")
    reset_accelerate()
    resumed = Trainer(tiny_config(out, mnist_dir, *FP16, poison, "train.steps=5", "train.resume=auto"))
    assert resumed.state.step == 3
    assert resumed.backend.scalers.scalers["d"].get_scale() == INIT_SCALE * 0.25
    assert resumed.backend.scalers.scalers["g"].get_scale() == INIT_SCALE * 0.5
