"""N processes with global batch B compute the same updates as one process with batch B.

Real multi-process runs: `accelerate launch --multi_gpu --num_processes 2` (gloo on CPU), exactly as a
user launches training, compared with the single-process run of the same config.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.helpers import final_weights, launch, max_abs_diff, outcome

CASES = {
    "nonsaturating-r1": ["loss.name=nonsaturating", "loss.r1_gamma=1.0", "loss.r1_interval=2"],
    "hinge-ncritic2-accum2": [
        "loss.name=hinge",
        "train.n_critic=2",
        "train.grad_accum=2",
        "model.d_norm=spectral",
        "train.consistency_check_every=1",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_processes_equal_one(tmp_path: Path, mnist_dir: Path, case: str):
    common = ["train.steps=6", *CASES[case]]
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        result = launch(out, mnist_dir, processes, *common)
        assert result.returncode == 0, outcome(result)
        assert f"distgan: {processes} process(es)" in result.stdout
        runs[processes] = out
    delta = max_abs_diff(final_weights(runs[1]), final_weights(runs[2]))
    assert delta < 1e-5, f"max |delta param| = {delta}"
    # Logged metrics are reduced across ranks, so they agree too.
    rows = [[json.loads(line) for line in (runs[p] / "metrics.jsonl").read_text().splitlines()] for p in (1, 2)]
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]] == list(range(1, 7))
    for one, two in zip(*rows):
        assert abs(one["loss_d"] - two["loss_d"]) < 1e-4 and abs(one["loss_g"] - two["loss_g"]) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "conditional"])
def test_sync_bn_makes_batchnorm_nets_world_size_independent(tmp_path: Path, mnist_dir: Path, conditional: bool):
    # Conditional: G's BatchNorms are conditional (per-class gain and bias after the synced statistics).
    bn = ["model.g_norm=batch", "model.d_norm=batch", "train.steps=6", f"data.conditional={str(conditional).lower()}"]
    weights = {}
    stdout = {}
    # auto (the default) syncs on two processes; one process has the whole batch anyway.
    for name, processes, sync in (("one", 1, "true"), ("two_sync", 2, "auto"), ("two_plain", 2, "false")):
        out = tmp_path / name
        # (Without sync BN the running statistics differ between ranks, so only synced runs are checked.)
        check = f"train.consistency_check_every={0 if sync == 'false' else 1}"
        result = launch(out, mnist_dir, processes, *bn, f"model.sync_bn={sync}", check)
        assert result.returncode == 0, outcome(result)
        weights[name], stdout[name] = final_weights(out), result.stdout
    if conditional:
        assert any("gain_embed" in key for key in weights["one"]), "G has no conditional BatchNorm"
    assert "model.sync_bn=false: BatchNorm normalises each process's slice" in stdout["two_plain"]
    assert "model.sync_bn" not in stdout["two_sync"]
    assert max_abs_diff(weights["one"], weights["two_sync"]) < 1e-5
    # Without it every rank normalizes by its own half batch, as the README says: not equivalent.
    assert max_abs_diff(weights["one"], weights["two_plain"]) > 1e-3


@pytest.mark.slow
def test_indivisible_batch_stops_before_work(tmp_path: Path, mnist_dir: Path):
    result = launch(tmp_path / "run", mnist_dir, 2, "train.batch_size=9", "train.steps=2")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("distgan: error:")]
    assert errors and "train.batch_size=9 is not divisible by processes x train.grad_accum = 2 x 1" in errors[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_checkpoint_from_two_processes_resumes_on_one_and_three(tmp_path: Path, mnist_dir: Path):
    common = ["train.batch_size=12", "train.checkpoint_every=3", "loss.r1_gamma=1.0", "loss.r1_interval=2"]
    whole = tmp_path / "whole"
    assert launch(whole, mnist_dir, 1, "train.steps=6", *common).returncode == 0
    for processes in (1, 3):
        out = tmp_path / f"resumed_on_{processes}"
        first = launch(out, mnist_dir, 2, "train.steps=3", *common)
        assert first.returncode == 0, outcome(first)
        second = launch(out, mnist_dir, processes, "train.steps=6", *common)
        assert second.returncode == 0, outcome(second)
        assert f"distgan: {processes} process(es)" in second.stdout
        assert "resumed from" in second.stdout and "at step 3" in second.stdout
        delta = max_abs_diff(final_weights(whole), final_weights(out))
        assert delta < 1e-5, f"resumed on {processes}: max |delta param| = {delta}"


@pytest.mark.slow
def test_consistency_check_names_the_first_diverging_tensor(tmp_path: Path, mnist_dir: Path):
    out = tmp_path / "run"
    result = launch(
        out,
        mnist_dir,
        2,
        "model.name=tests.training.diverging_nets:DriftingGAN",
        "train.steps=4",
        "train.consistency_check_every=2",
        "train.checkpoint_every=1",
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("distgan: error:")]
    assert len(errors) == 1, outcome(result)
    assert errors[0].startswith(
        "distgan: error: ranks disagree at step 2: generator parameter 'drift' on rank 1 differs from rank 0"
    )
    # It stops before writing the step-2 checkpoint; what was saved before stays.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_1"]
