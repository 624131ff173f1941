"""World-size independence over the whole option matrix, on 1, 2 and 3 real processes.

Pairwise coverage: every loss (RpGAN's G phase reading its own reals), R1 on/off, lazy
interval 1/4, R2 every step and lazy, n_critic 1/2, grad_accum 1/2, EMA on/off, the kimg
schedules, augmentation (ADA at a fixed and an adaptive p, DiffAugment) and class
conditioning each appear in some case. Each case trains 10 steps with the same
GLOBAL batch on 1, 2 and 3 gloo processes and compares G, D, the EMA and both optimizers'
Adam state.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.training.helpers import R3GAN_RECIPE, final_weights, launch, max_abs_diff, outcome

CASES = {
    "minimax-r1r2every-accum2": [
        "loss.name=minimax",
        "loss.r1_gamma=1.0",
        "loss.r1_interval=1",
        "loss.r2_gamma=1.0",
        "loss.r2_interval=1",
        "train.grad_accum=2",
    ],
    "nonsaturating-lazyr1-critic2-noema": [
        "loss.name=nonsaturating",
        "loss.r1_gamma=1.0",
        "loss.r1_interval=4",
        "train.n_critic=2",
        "ema.enabled=false",
    ],
    "wgan-critic2-accum2": ["loss.name=wgan", "train.n_critic=2", "train.grad_accum=2"],
    "wgangp-lazyr1": ["loss.name=wgan-gp", "loss.r1_gamma=0.5", "loss.r1_interval=4"],
    "hinge-r1every-critic2-noema": [
        "loss.name=hinge",
        "loss.r1_gamma=1.0",
        "loss.r1_interval=1",
        "train.n_critic=2",
        "ema.enabled=false",
    ],
    "schedules-cosine-r1every": [
        "schedule.shape=cosine",
        "schedule.kimg=0.06",
        "schedule.lr_warmup_kimg=0.02",
        "schedule.lr_scale_end=0.25",
        "schedule.beta2_end=0.99",
        "schedule.gamma_scale_end=0.1",
        "schedule.ema_kimg_end=0.05",
        "loss.r1_gamma=1.0",
        "loss.r1_interval=1",
    ],
    # R3GAN: its network, the G phase reading its own reals, R1 and R2 on every D step.
    "rpgan-r1r2-every": [*R3GAN_RECIPE, "train.grad_accum=2"],
    "lsgan-lazyr2-accum2-noema": [
        "loss.name=lsgan",
        "loss.r2_gamma=2.0",
        "loss.r2_interval=3",
        "train.grad_accum=2",
        "ema.enabled=false",
    ],
    # Augmentation inside every D call (reals, fakes, the R1 and mix inputs, both phases).
    "ada-fixed-r1every-accum2": [
        "aug.name=ada",
        "aug.p=0.5",
        "aug.adaptive=false",
        "loss.r1_gamma=1.0",
        "loss.r1_interval=1",
        "train.grad_accum=2",
    ],
    # p adjusted every 2 steps from the sign counts of all processes: it must move alike.
    "ada-adaptive-wgangp-critic2": [
        "aug.name=ada",
        "aug.p=0.3",
        "aug.target=0.0",
        "aug.interval=2",
        "aug.speed_kimg=0.1",
        "loss.name=wgan-gp",
        "train.n_critic=2",
    ],
    # RpGAN under augmentation: the G phase augments its own reals as well as the fakes.
    "diffaug-rpgan-lazyr1": ["aug.name=diffaug", "loss.name=rpgan", "loss.r1_gamma=1.0", "loss.r1_interval=2"],
    # Class-conditional: real labels travel with their images, fake classes come from the global stream.
    "conditional-hinge-r1every-accum2": [
        "data.conditional=true",
        "loss.name=hinge",
        "loss.r1_gamma=1.0",
        "loss.r1_interval=1",
        "train.grad_accum=2",
    ],
    "conditional-r3gan-ada": [
        *R3GAN_RECIPE,
        "data.conditional=true",
        "aug.name=ada",
        "aug.p=0.4",
        "aug.adaptive=false",
    ],
}
STEPS = 10


def optimizer_state(out: Path) -> dict[str, torch.Tensor]:
    ckpt = out / "checkpoints" / f"step_{STEPS}"
    flat = {}
    for name in ("optimizer.bin", "optimizer_1.bin"):
        state = torch.load(ckpt / name, map_location="cpu", weights_only=False)["state"]
        for index, slots in state.items():
            for slot, value in slots.items():
                if torch.is_tensor(value) and value.is_floating_point():
                    flat[f"{name}/{index}/{slot}"] = value
    return flat


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_one_two_and_three_processes_agree(tmp_path: Path, mnist_dir: Path, case: str):
    common = [
        f"train.steps={STEPS}",
        "train.batch_size=12",
        f"train.checkpoint_every={STEPS}",
        "train.log_every=5",
        *CASES[case],
    ]
    outs = {}
    for processes in (1, 2, 3):
        outs[processes] = out = tmp_path / f"p{processes}"
        result = launch(out, mnist_dir, processes, *common)
        assert result.returncode == 0, outcome(result)
        assert f"distgan: {processes} process(es)" in result.stdout
    aug_p = {n: [json.loads(row).get("aug_p") for row in (out / "metrics.jsonl").open()] for n, out in outs.items()}
    assert aug_p[1] == aug_p[2] == aug_p[3], f"augmentation p per world size: {aug_p}"
    reference_weights, reference_optim = final_weights(outs[1]), optimizer_state(outs[1])
    assert reference_optim, "no Adam state found in the checkpoint"
    for processes in (2, 3):
        weights = max_abs_diff(reference_weights, final_weights(outs[processes]))
        optim = max_abs_diff(reference_optim, optimizer_state(outs[processes]))
        assert weights < 1e-5 and optim < 1e-5, f"{processes} processes: weights {weights:.2e}, Adam {optim:.2e}"
