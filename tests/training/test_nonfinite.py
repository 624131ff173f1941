"""`train.on_nonfinite`: NaN/Inf are injected by a real discriminator (tests/training/poison_nets.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from distgan.errors import NonFiniteError
from distgan.training.checkpoint import STATE_FILE
from distgan.training.nonfinite import NonFiniteGuard
from tests.training.helpers import final_weights, launch, max_abs_diff, outcome, train_in_process

POISON = "model.name=tests.training.poison_nets:PoisonedGAN"


def d_call(step: int) -> int:
    """Index of D's forward in the D phase of `step` (from 1), with n_critic=1 and grad_accum=1."""
    return 2 * (step - 1)


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def adam_steps(checkpoint: Path) -> tuple[int, int]:
    """(G, D) optimizer step counts: G's optimizer is prepared first."""
    counts = []
    for name in ("optimizer.bin", "optimizer_1.bin"):
        state = torch.load(checkpoint / name, weights_only=False)["state"]
        counts.append(int(state[0]["step"]))
    return counts[0], counts[1]


@pytest.mark.slow
def test_nan_on_one_rank_skips_the_step_on_every_rank(tmp_path: Path, mnist_dir: Path):
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        result = launch(
            out,
            mnist_dir,
            processes,
            POISON,
            "model.kwargs.poison=nan",
            f"model.kwargs.poison_calls=[{d_call(3)}]",
            f"model.kwargs.poison_rank={processes - 1}",
            "train.steps=5",
            "train.checkpoint_every=5",
            "train.consistency_check_every=1",
        )
        assert result.returncode == 0, outcome(result)
        runs[processes] = out
        logged = rows(out)
        assert [r["skipped_d"] for r in logged] == [0, 0, 1, 0, 0]
        assert [r["skipped_g"] for r in logged] == [0] * 5
        # Non-finite values are left out of the means; with no finite value left, null (not NaN).
        assert all(isinstance(r["loss_d"], float) for r in logged if r["step"] != 3)
        if processes == 1:
            assert logged[2]["loss_d"] is None
        assert adam_steps(out / "checkpoints" / "step_5") == (5, 4)
    weights = final_weights(runs[1])
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert max_abs_diff(weights, final_weights(runs[2])) < 1e-5


@pytest.mark.slow
def test_stop_ends_every_rank_with_one_line_and_keeps_the_checkpoint(tmp_path: Path, mnist_dir: Path):
    out = tmp_path / "run"
    result = launch(
        out,
        mnist_dir,
        2,
        POISON,
        "model.kwargs.poison=inf",
        f"model.kwargs.poison_calls=[{d_call(4)}]",
        "model.kwargs.poison_rank=1",
        "train.on_nonfinite=stop",
        "train.steps=6",
        "train.checkpoint_every=2",
    )
    # The ranks stop together with distgan's exit code 2 (torchrun then reports 1 and ends any
    # rank still tearing down), not by a hang or a crash.
    assert result.returncode != 0 and "exitcode  : 2" in result.stderr, outcome(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("distgan: error:")]
    assert len(errors) == 1, result.stderr
    assert "non-finite loss or gradients in D (1 step(s)) at step 4 (train.on_nonfinite=stop)" in errors[0]
    assert f"newest checkpoint kept: {out / 'checkpoints' / 'step_2'}" in errors[0]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_2"]


def test_rollback_reloads_the_newest_checkpoint_with_fresh_noise(tmp_path: Path, mnist_dir: Path):
    common = ["train.steps=8", "train.checkpoint_every=2"]
    out = train_in_process(
        tmp_path / "run",
        mnist_dir,
        POISON,
        "model.kwargs.poison=nan",
        f"model.kwargs.poison_calls=[{d_call(5)}, {d_call(6)}]",
        "train.on_nonfinite=rollback",
        "train.nonfinite_patience=2",
        *common,
    )
    logged = rows(out)
    events = [r for r in logged if r.get("event") == "rollback"]
    assert len(events) == 1 and events[0]["from_step"] == 6 and events[0]["step"] == 4
    steps = [r["step"] for r in logged if "event" not in r]
    assert steps == list(range(1, 9))  # the rolled-back rows are replaced by the redone steps
    assert all(r["img_per_s"] > 0 for r in logged if "event" not in r)  # throughput restarts with the rollback
    assert all(r["skipped_d"] == 0 for r in logged if "event" not in r and r["step"] > 4)
    state = json.loads((out / "checkpoints" / "step_8" / STATE_FILE).read_text())
    assert state["rollbacks"] == 1 and state["step"] == 8
    weights = final_weights(out)
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    # A fresh noise stream: the redone steps are not the ones an unpoisoned run takes.
    clean = train_in_process(
        tmp_path / "clean", mnist_dir, POISON, "model.kwargs.poison=nan", "model.kwargs.poison_calls=[]", *common
    )
    assert max_abs_diff(weights, final_weights(clean)) > 1e-4


def test_skip_gives_up_after_patience_consecutive_steps(tmp_path: Path, mnist_dir: Path):
    calls = ", ".join(str(d_call(s)) for s in range(2, 9))
    with pytest.raises(
        NonFiniteError,
        match=r"3 consecutive steps skipped for non-finite values at step 4 \(train.on_nonfinite=skip\); "
        r"no checkpoint to roll back to yet",
    ) as caught:
        train_in_process(
            tmp_path / "run",
            mnist_dir,
            POISON,
            "model.kwargs.poison=nan",
            f"model.kwargs.poison_calls=[{calls}]",
            "train.nonfinite_patience=3",
            "train.steps=8",
        )
    assert "fp16" not in str(caught.value)  # an fp32 run has no loss scale to overflow


def test_overflow_is_named_only_in_fp16():
    from accelerate import Accelerator

    for fp16, named in ((False, False), (True, True)):
        guard = NonFiniteGuard("skip", 1, torch.device("cpu"), fp16=fp16)
        guard.record("d", torch.ones(()), scaled=fp16)
        guard.end_step()
        verdict = guard.verdict(Accelerator(cpu=True))
        assert verdict.action == "stop"
        assert ("fp16 overflow" in verdict.reason) is named, verdict.reason


def test_rollback_without_a_checkpoint_stops(tmp_path: Path, mnist_dir: Path):
    with pytest.raises(NonFiniteError, match="no checkpoint to roll back to yet"):
        train_in_process(
            tmp_path / "run",
            mnist_dir,
            POISON,
            "model.kwargs.poison=nan",
            f"model.kwargs.poison_calls=[{d_call(1)}]",
            "train.on_nonfinite=rollback",
            "train.nonfinite_patience=1",
            "train.steps=3",
        )
