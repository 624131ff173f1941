"""DeepSpeed ZeRO-1/2 for G and D: real `accelerate launch` runs with accelerate_configs/deepspeed_zero*.yaml
(gloo on CPU), compared with the DDP run of the same config.

Skipped, with the reason, where deepspeed is not installed (`pip install "distgan[deepspeed]"`; CI installs it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from distgan.training.checkpoint import EMA_FILE, MANIFEST
from tests.training.helpers import R3GAN_RECIPE, final_weights, launch, max_abs_diff, outcome

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("deepspeed") is None,
        reason='deepspeed is not installed (pip install "distgan[deepspeed]")',
    ),
]

# R1 and R2 (double backward through D's plain module), n_critic 2 and grad_accum 2 (engine accumulation).
COMMON = [
    "train.steps=6",
    "loss.name=nonsaturating",
    "loss.r1_gamma=1.0",
    "loss.r1_interval=2",
    "loss.r2_gamma=1.0",
    "loss.r2_interval=3",
    "train.n_critic=2",
    "train.grad_accum=2",
    "train.consistency_check_every=1",
]
POISON = "model.name=tests.training.poison_nets:PoisonedGAN"


def zero(stage: int, out: Path, data: Path, processes: int, *overrides: str, precision: str = "no"):
    return launch(out, data, processes, *overrides, config_file=f"deepspeed_zero{stage}.yaml", precision=precision)


@pytest.fixture(scope="module")
def ddp_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.conftest import write_mnist

    root = tmp_path_factory.mktemp("ddp")
    data = write_mnist(root / "mnist")
    result = launch(root / "run", data, 2, *COMMON)
    assert result.returncode == 0, outcome(result)
    return root / "run", data


@pytest.mark.parametrize(("stage", "processes"), [(1, 2), (2, 1), (2, 2)])
def test_zero_matches_ddp(tmp_path: Path, ddp_reference: tuple[Path, Path], stage: int, processes: int):
    reference, data = ddp_reference
    out = tmp_path / "run"
    result = zero(stage, out, data, processes, *COMMON)
    assert result.returncode == 0, outcome(result)
    assert f"distgan: {processes} process(es)" in result.stdout
    assert "DeepSpeed ZeRO-" in result.stdout
    delta = max_abs_diff(final_weights(reference), final_weights(out))
    assert delta < 1e-5, f"ZeRO-{stage} on {processes} process(es) vs DDP: max |delta param| = {delta}"
    rows = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (reference, out)]
    for ddp, ds in zip(*rows, strict=True):
        assert abs(ddp["loss_d"] - ds["loss_d"]) < 1e-4 and abs(ddp["loss_g"] - ds["loss_g"]) < 1e-4
        assert abs(ddp["grad_norm_d"] - ds["grad_norm_d"]) < 1e-3 * max(1.0, ddp["grad_norm_d"])


# The modern recipe: R3GAN's network and RpGAN (the G phase reads its own reals), R1 + R2 on every
# D step, class-conditional networks and ADA on every D input.
MODERN = [
    *R3GAN_RECIPE,
    "data.conditional=true",
    "aug.name=ada",
    "aug.p=0.5",
    "aug.adaptive=false",
    "train.steps=4",
    "train.grad_accum=2",
]


def test_zero2_matches_ddp_on_the_modern_recipe(tmp_path: Path, mnist_dir: Path):
    ddp = launch(tmp_path / "ddp", mnist_dir, 2, *MODERN)
    assert ddp.returncode == 0, outcome(ddp)
    ds = zero(2, tmp_path / "zero2", mnist_dir, 2, *MODERN)
    assert ds.returncode == 0, outcome(ds)
    assert "DeepSpeed ZeRO-2" in ds.stdout and "10 classes (conditional)" in ds.stdout
    delta = max_abs_diff(final_weights(tmp_path / "ddp"), final_weights(tmp_path / "zero2"))
    assert delta < 1e-5, f"ZeRO-2 vs DDP under RpGAN + R1 + R2, conditional, ADA: max |delta param| = {delta}"


RESUME = ["loss.name=hinge", "train.checkpoint_every=3"]


@pytest.fixture(scope="module")
def zero2_step_3(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A ZeRO-2 run of 2 processes stopped at step 3 of 6 (its checkpoint step_3), and its data."""
    from tests.conftest import write_mnist

    root = tmp_path_factory.mktemp("zero2_step_3")
    data = write_mnist(root / "mnist")
    result = zero(2, root / "run", data, 2, *RESUME, "train.steps=3")
    assert result.returncode == 0, outcome(result)
    step_3 = root / "run" / "checkpoints" / "step_3"
    # D's engine at the top, G's in its own directory (the two Accelerators' names would collide).
    assert (step_3 / "pytorch_model").is_dir() and (step_3 / "generator_engine" / "pytorch_model").is_dir()
    return root / "run", data


def resumable_copy(zero2_step_3: tuple[Path, Path], to: Path) -> Path:
    shutil.copytree(zero2_step_3[0], to, symlinks=True)
    return to


def test_zero2_resume_ends_where_an_uninterrupted_run_ends(tmp_path: Path, zero2_step_3: tuple[Path, Path]):
    data = zero2_step_3[1]
    whole = tmp_path / "whole"
    assert (result := zero(2, whole, data, 2, *RESUME, "train.steps=6")).returncode == 0, outcome(result)
    part = resumable_copy(zero2_step_3, tmp_path / "part")
    result = zero(2, part, data, 2, *RESUME, "train.steps=6")
    assert result.returncode == 0, outcome(result)
    assert f"resumed from {part / 'checkpoints' / 'step_3'} at step 3" in result.stdout
    a, b = final_weights(whole), final_weights(part)
    assert all(a[k].equal(b[k]) for k in a), [k for k in a if not a[k].equal(b[k])]
    # A DeepSpeed checkpoint under a DDP launch is named as such.
    result = launch(part, data, 2, *RESUME, "train.steps=9")
    assert "was written by a DeepSpeed run; resume it with the same DeepSpeed accelerate config" in result.stderr, (
        outcome(result)
    )
    assert sorted(p.name for p in (part / "checkpoints").iterdir()) == ["step_3", "step_6"]


def test_zero2_checkpoint_resumes_at_another_world_size(tmp_path: Path, zero2_step_3: tuple[Path, Path]):
    # ZeRO-2 partitions the optimizer state over the ranks; resumed on another number through a
    # universal checkpoint, the 3 steps after the resume (Adam moments included) match an
    # uninterrupted run. (Resetting the moments instead moves the weights by about 1e-3.)
    data = zero2_step_3[1]
    whole = tmp_path / "whole"
    assert (result := zero(2, whole, data, 1, *RESUME, "train.steps=6")).returncode == 0, outcome(result)
    part = resumable_copy(zero2_step_3, tmp_path / "part")
    step_3 = part / "checkpoints" / "step_3"
    before = {f: f.read_bytes() for f in sorted(step_3.rglob("*")) if f.is_file()}
    result = zero(2, part, data, 1, *RESUME, "train.steps=6")
    assert result.returncode == 0, outcome(result)
    assert "distgan: 1 process(es)" in result.stdout and f"resumed from {step_3} at step 3" in result.stdout
    delta = max_abs_diff(final_weights(whole), final_weights(part))
    assert delta < 1e-5, f"ZeRO-2 resumed 2 -> 1 vs uninterrupted on 1: max |delta param| = {delta}"
    # The conversion went to a hidden directory, now gone; the original is byte for byte as it was.
    assert sorted(p.name for p in (part / "checkpoints").iterdir()) == ["step_3", "step_6"]
    assert {f: f.read_bytes() for f in sorted(step_3.rglob("*")) if f.is_file()} == before
    # 1 -> 2: the uninterrupted 1-process run's own step_3, resumed on 2 processes.
    grown = tmp_path / "grown"
    shutil.copytree(whole, grown)
    shutil.rmtree(grown / "checkpoints" / "step_6")
    result = zero(2, grown, data, 2, *RESUME, "train.steps=6")
    assert result.returncode == 0, outcome(result)
    assert "distgan: 2 process(es)" in result.stdout and "at step 3" in result.stdout
    delta = max_abs_diff(final_weights(whole), final_weights(grown))
    assert delta < 1e-5, f"ZeRO-2 resumed 1 -> 2 vs uninterrupted on 1: max |delta param| = {delta}"


def test_zero2_checkpoint_that_cannot_be_converted_is_named_in_one_line(
    tmp_path: Path, zero2_step_3: tuple[Path, Path]
):
    data = zero2_step_3[1]
    part = resumable_copy(zero2_step_3, tmp_path / "part")
    step_3 = part / "checkpoints" / "step_3"
    # An optimizer shard DeepSpeed cannot read, with a manifest that agrees (so it is not "damaged").
    shard = "pytorch_model/zero_pp_rank_1_mp_rank_00_optim_states.pt"
    torch.save({"not": "a ZeRO shard"}, step_3 / shard)
    manifest = json.loads((step_3 / MANIFEST).read_text())
    manifest["files"][shard] = {
        "bytes": (step_3 / shard).stat().st_size,
        "sha256": hashlib.sha256((step_3 / shard).read_bytes()).hexdigest(),
    }
    (step_3 / MANIFEST).write_text(json.dumps(manifest))
    before = {f: f.read_bytes() for f in sorted(step_3.rglob("*")) if f.is_file()}
    result = zero(2, part, data, 1, *RESUME, "train.steps=6")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("distgan: error:")]
    assert errors and errors[0].startswith(
        f"distgan: error: checkpoint {step_3} holds ZeRO state of 2 processes and could not be converted for 1"
    ), outcome(result)
    assert errors[0].endswith("resume it on 2 processes, or start a new output_dir")
    assert sorted(p.name for p in (part / "checkpoints").iterdir()) == ["step_3"]
    assert {f: f.read_bytes() for f in sorted(step_3.rglob("*")) if f.is_file()} == before


def test_nonfinite_gradient_is_skipped_by_the_engine_and_counted(tmp_path: Path, mnist_dir: Path):
    # D's forward 4 is the D phase of step 3 (n_critic 1, grad_accum 1); poisoned on rank 1 only.
    out = tmp_path / "run"
    result = zero(
        2,
        out,
        mnist_dir,
        2,
        POISON,
        "model.kwargs.poison=nan",
        "model.kwargs.poison_calls=[4]",
        "model.kwargs.poison_rank=1",
        "train.steps=5",
        "train.consistency_check_every=1",
    )
    assert result.returncode == 0, outcome(result)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["skipped_d"] for r in rows] == [0, 0, 1, 0, 0]
    assert [r["skipped_g"] for r in rows] == [0] * 5
    weights = final_weights(out)
    assert all(v.isfinite().all() for v in weights.values())


def test_zero2_bf16_trains_with_r1_and_keeps_an_fp32_ema(tmp_path: Path, mnist_dir: Path):
    out = tmp_path / "run"
    result = zero(
        2,
        out,
        mnist_dir,
        2,
        "train.steps=4",
        "loss.r1_gamma=1.0",
        "loss.r1_interval=2",
        "train.mixed_precision=null",
        "train.checkpoint_every=2",
        "train.sample_every=2",
        precision="bf16",
    )
    assert result.returncode == 0, outcome(result)
    assert "DeepSpeed ZeRO-2, one engine per network, bfloat16 weights" in result.stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(r["skipped_d"] == r["skipped_g"] == 0 for r in rows)
    assert all(isinstance(r["loss_d"], float) and isinstance(r["r1"], float) for r in rows if "r1" in r)
    ema = load_file(str(out / "checkpoints" / "step_4" / EMA_FILE))
    assert {v.dtype for v in ema.values() if v.is_floating_point()} == {torch.float32}
    assert all(v.isfinite().all() for v in final_weights(out).values())


def _cpu_lacks_deepspeed_fp16() -> bool:
    # DeepSpeed's CPU accelerator trains fp16 only where oneDNN has fp16 kernels (AVX512-FP16 or
    # AMX-FP16); on other CPUs it refuses fp16 engines. GPUs always have them.
    if torch.cuda.is_available() or importlib.util.find_spec("deepspeed") is None:
        return False
    return not torch.ops.mkldnn._is_mkldnn_fp16_supported()


@pytest.mark.skipif(
    _cpu_lacks_deepspeed_fp16(),
    reason="this CPU has neither AVX512-FP16 nor AMX-FP16, without which DeepSpeed refuses fp16 engines on the CPU",
)
def test_zero2_fp16_overflow_in_d_skips_only_d_with_its_own_loss_scaler(tmp_path: Path, mnist_dir: Path):
    # An Inf gradient (finite loss) from D's backward at step 3: D's engine skips that step as an
    # fp16 overflow; G's engine, with its own scaler, steps every time.
    out = tmp_path / "run"
    result = zero(
        2,
        out,
        mnist_dir,
        2,
        POISON,
        "model.kwargs.poison=grad_inf",
        "model.kwargs.poison_calls=[4]",
        "train.steps=5",
        "train.mixed_precision=null",
        precision="fp16",
    )
    assert result.returncode == 0, outcome(result)
    assert "float16 weights" in result.stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["overflow_d"] for r in rows] == [0, 0, 1, 0, 0]
    assert [r["overflow_g"] for r in rows] == [0] * 5
    assert all(r["skipped_d"] == r["skipped_g"] == 0 for r in rows)  # routine in fp16, not an error
    assert all(v.isfinite().all() for v in final_weights(out).values())


def test_weight_clipping_is_refused_before_work(tmp_path: Path, mnist_dir: Path):
    result = zero(2, tmp_path / "run", mnist_dir, 1, "loss.name=wgan")
    assert result.returncode != 0
    assert "loss.name=wgan clips D's weights in place" in result.stderr, outcome(result)
    assert not (tmp_path / "run" / "checkpoints").exists()
