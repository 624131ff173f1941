"""The trainer end to end on tiny real data: every model and loss, outputs, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from distgan.config import Config
from distgan.models import build_models
from distgan.training.checkpoint import EMA_FILE, STATE_FILE
from tests.training.helpers import R3GAN_RECIPE, final_weights, reset_accelerate, tiny_config, train_in_process

MODEL_LOSS = [
    ("mlp", "minimax", ["data.resolution=16"]),
    ("mlp", "lsgan", ["data.resolution=16"]),
    ("dcgan", "nonsaturating", ["loss.r1_gamma=1.0", "loss.r1_interval=2"]),
    ("dcgan", "wgan", ["train.n_critic=2"]),
    ("dcgan", "wgan-gp", ["model.d_norm=none"]),
    ("dcgan", "hinge", ["model.g_norm=batch", "model.d_norm=spectral", "train.grad_accum=2"]),
    ("resnet", "hinge", ["data.resolution=8", "model.g_width=8", "model.d_width=8", "model.g_norm=batch"]),
    ("resnet", "nonsaturating", ["data.resolution=8", "model.g_width=8", "model.d_width=8"]),
    ("r3gan", "rpgan", ["data.resolution=8", "model.g_width=8", "model.d_width=8", "loss.r2_gamma=0.1"]),
]


@pytest.mark.parametrize(
    ("model", "loss", "extra"), MODEL_LOSS, ids=[f"{model}-{loss}" for model, loss, _ in MODEL_LOSS]
)
def test_every_model_and_loss_trains(tmp_path: Path, mnist_dir: Path, model: str, loss: str, extra: list[str]):
    out = train_in_process(
        tmp_path / "run", mnist_dir, f"model.name={model}", f"loss.name={loss}", "train.steps=3", *extra
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row in rows:
        for key in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "img_per_s"):
            assert math.isfinite(row[key]), (key, row)
    cfg = Config.model_validate(yaml.safe_load((out / "config.yaml").read_text()))
    torch.manual_seed(cfg.seed)
    initial = build_models(cfg.model, channels=1, resolution=cfg.data.resolution)
    trained = final_weights(out)
    for prefix, net in (("generator", initial.generator), ("discriminator", initial.discriminator)):
        changed = [
            not torch.equal(v, trained[f"{prefix}/{k}"]) for k, v in net.state_dict().items() if v.is_floating_point()
        ]
        assert sum(changed) >= len(changed) // 2, f"{prefix} barely moved"
    if loss == "wgan":
        d = [v for k, v in trained.items() if k.startswith("discriminator/")]
        assert max(t.abs().max().item() for t in d) <= 0.01 + 1e-7


def test_output_layout(tmp_path: Path, mnist_dir: Path):
    out = train_in_process(
        tmp_path / "run",
        mnist_dir,
        "train.steps=4",
        "train.log_every=2",
        "train.sample_every=2",
        "train.checkpoint_every=1",
        "train.keep_checkpoints=2",
    )
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_3", "step_4"]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_2.png", "step_4.png"]
    grid = Image.open(out / "samples" / "step_4.png")
    assert grid.mode == "L" and grid.size == (8 * 18 + 2, 8 * 18 + 2)  # 64 tiles of 16px + 2px gaps
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and rows[1]["kimg"] == pytest.approx(4 * 8 / 1000)
    assert sorted(p.name for p in (out / "final").iterdir()) == [
        "discriminator.safetensors",
        "generator.safetensors",
        "generator_ema.safetensors",
    ]
    saved = Config.model_validate(yaml.safe_load((out / "config.yaml").read_text()))
    assert saved == tiny_config(
        out,
        mnist_dir,
        "train.steps=4",
        "train.log_every=2",
        "train.sample_every=2",
        "train.checkpoint_every=1",
        "train.keep_checkpoints=2",
    )
    ckpt = out / "checkpoints" / "step_4"
    for name in (
        "model.safetensors",
        "model_1.safetensors",
        "optimizer.bin",
        "optimizer_1.bin",
        "random_states_0.pkl",
        EMA_FILE,
        STATE_FILE,
    ):
        assert (ckpt / name).is_file(), name
    assert not list((out / "checkpoints").glob(".tmp*"))


def test_zero_intervals_mean_only_at_the_last_step(tmp_path: Path, mnist_dir: Path):
    out = train_in_process(
        tmp_path / "run",
        mnist_dir,
        "train.steps=3",
        "train.sample_every=0",
        "train.checkpoint_every=0",
        "train.log_every=2",
    )
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_3"]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_3.png"]
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [2, 3]


RESUME_CASES = {
    "bn-r1-accum-critic": [
        "model.g_norm=batch",
        "model.d_norm=spectral",
        "loss.r1_gamma=0.5",
        "loss.r1_interval=3",
        "train.n_critic=2",
        "train.grad_accum=2",
    ],
    "wgan-gp": ["loss.name=wgan-gp"],
    # R3GAN: the G phase's own real batch moves the data position; R1 and R2 on every D step.
    "rpgan-r1r2": [*R3GAN_RECIPE, "train.grad_accum=2"],
    # Resumed mid-ramp (40 of the 60 images of the ramp): every scheduled value from the data position.
    "schedules": [
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
    # Class-conditional R3GAN under ADA: labels from the data position, fake classes from the noise stream.
    "conditional-r3gan-ada": [
        *R3GAN_RECIPE,
        "data.conditional=true",
        "aug.name=ada",
        "aug.p=0.3",
        "aug.adaptive=false",
    ],
    # Adaptive ADA adjusting every 3 steps: the checkpoint at step 5 holds p and the sums of steps 4-5.
    "ada-adaptive": [
        "aug.name=ada",
        "aug.p=0.5",
        "aug.target=0.0",
        "aug.interval=3",
        "aug.speed_kimg=0.2",
        "loss.r1_gamma=0.5",
        "loss.r1_interval=2",
    ],
}


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_resume_is_bit_exact(tmp_path: Path, mnist_dir: Path, case: str):
    extra = RESUME_CASES[case]
    # 8 images per step, 64 images: the resumed half crosses an epoch boundary.
    whole = train_in_process(tmp_path / "whole", mnist_dir, "train.steps=12", *extra)
    part = tmp_path / "part"
    train_in_process(part, mnist_dir, "train.steps=5", "train.checkpoint_every=5", *extra)
    reset_accelerate()
    from distgan.training.loop import Trainer

    resumed = Trainer(tiny_config(part, mnist_dir, "train.steps=12", "train.resume=auto", *extra))
    # Real images read: each D step's batch, and under RpGAN the G step's own batch too.
    reads = resumed.cfg.train.n_critic + (resumed.cfg.loss.name == "rpgan")
    assert (resumed.state.step, resumed.state.data_position) == (5, 5 * 8 * reads)
    if resumed.augment is not None and resumed.augment.adaptive is not None:
        saved = json.loads((part / "checkpoints" / "step_5" / "train_state.json").read_text())
        assert resumed.augment.p == saved["aug_p"] and resumed.augment.adaptive.carried == saved["aug_signs"]
        assert saved["aug_signs"][1] > 0, "the checkpoint should fall between two adjustments"
    resumed.run()
    a, b = final_weights(whole), final_weights(part)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = {
        run: [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (whole, part)
    }
    assert [row["step"] for row in rows[part]] == list(range(1, 13))
    assert [row.get("aug_p") for row in rows[part]] == [row.get("aug_p") for row in rows[whole]]


def test_resume_refusals_keep_what_is_saved(tmp_path: Path, mnist_dir: Path):
    from distgan.errors import CheckpointError
    from distgan.training.loop import Trainer

    out = tmp_path / "run"
    train_in_process(out, mnist_dir, "train.steps=2", "train.checkpoint_every=1")
    metrics = (out / "metrics.jsonl").read_text()
    reset_accelerate()
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        Trainer(tiny_config(out, mnist_dir, f"train.resume={tmp_path / 'missing'}"))
    with pytest.raises(CheckpointError, match="already holds checkpoints up to step_2: use train.resume=auto"):
        Trainer(tiny_config(out, mnist_dir, "train.resume=never"))
    # A torn newest checkpoint: auto falls back to the previous one; naming it fails clearly.
    (out / "checkpoints" / "step_2" / "optimizer_1.bin").unlink()
    with pytest.raises(CheckpointError, match="damaged checkpoint, .*step_2/optimizer_1.bin is missing"):
        Trainer(tiny_config(out, mnist_dir, f"train.resume={out / 'checkpoints' / 'step_2'}"))
    with pytest.warns(UserWarning, match="skipping damaged checkpoint .*step_2/optimizer_1.bin is missing"):
        trainer = Trainer(tiny_config(out, mnist_dir, "train.resume=auto", "train.steps=3"))
    assert trainer.state.step == 1
    # With every checkpoint damaged, auto refuses rather than start over on top of them.
    (out / "checkpoints" / "step_1" / "model.safetensors").write_bytes(b"garbage")
    reset_accelerate()
    with (
        pytest.raises(
            CheckpointError,
            match=r"every checkpoint in .* is damaged \(newest, step_2: .*step_2/optimizer_1.bin is missing\)",
        ),
        pytest.warns(UserWarning),
    ):
        Trainer(tiny_config(out, mnist_dir, "train.resume=auto"))
    # A checkpoint without a manifest (written before manifests) that fails to load is named.
    (out / "checkpoints" / "step_1" / "distgan_manifest.json").unlink()
    reset_accelerate()
    with pytest.raises(CheckpointError, match=r"checkpoint .*step_1 cannot be loaded"), pytest.warns(UserWarning):
        Trainer(tiny_config(out, mnist_dir, "train.resume=auto"))
    assert (out / "metrics.jsonl").read_text() == metrics
    assert (out / "checkpoints" / "step_1" / "model.safetensors").exists()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains(tmp_path: Path, mnist_dir: Path, precision: str):
    from distgan.training.loop import Trainer

    cfg = tiny_config(
        tmp_path / "run",
        mnist_dir,
        f"train.mixed_precision={precision}",
        "train.steps=3",
        "loss.r1_gamma=1.0",
        "loss.r1_interval=1",
    )
    reset_accelerate()
    trainer = Trainer(cfg)
    assert trainer.accelerator.mixed_precision == precision
    if precision == "bf16" or torch.cuda.is_available():
        # bf16 needs no loss scaling; fp16 on CUDA gets one scaler (accelerate has none on CPU).
        assert (trainer.accelerator.scaler is not None) == (precision == "fp16")
    out = trainer.run()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["r1"]) for r in rows)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("modern", [[], ["data.conditional=true", "aug.name=ada", "aug.p=0.5", "aug.adaptive=false"]])
def test_r3gan_with_rpgan_r1_and_r2_trains_in_mixed_precision(
    tmp_path: Path, mnist_dir: Path, precision: str, modern: list[str]
):
    from distgan.training.loop import Trainer

    reset_accelerate()
    r3gan = ["model.name=r3gan", "loss.name=rpgan", f"train.mixed_precision={precision}", "train.steps=3"]
    penalties = ["loss.r1_gamma=0.1", "loss.r1_interval=1", "loss.r2_gamma=0.1", "loss.r2_interval=1"]
    trainer = Trainer(tiny_config(tmp_path / "run", mnist_dir, *r3gan, *penalties, *modern))
    assert trainer.accelerator.mixed_precision == precision
    out = trainer.run()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    assert all(math.isfinite(r[k]) for r in rows for k in ("loss_d", "loss_g", "r1", "r2"))
    assert trainer.state.data_position == 3 * 2 * 8  # D's batch and G's own, 8 images each


def test_the_mnist_r3gan_preset_trains(tmp_path: Path, mnist_dir: Path):
    from distgan.config import load_config
    from distgan.training.loop import Trainer

    reset_accelerate()
    # The preset as shipped, with a smaller batch to stay fast.
    overrides = [f"output_dir={tmp_path / 'run'}", f"data.path={mnist_dir}", "data.num_workers=0", "train.steps=2"]
    cfg = load_config("mnist_r3gan", [*overrides, "train.batch_size=8", "train.log_every=1", "train.progress=false"])
    out = Trainer(cfg).run()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in rows] == [0.016, 0.032]  # D's and G's real batch per step
    assert all(math.isfinite(r[k]) for r in rows for k in ("loss_d", "loss_g", "r1", "r2", "lr_g", "gamma_scale"))
    assert (out / "final" / "generator_ema.safetensors").is_file()
