"""`python -m distgan.evaluate` on 2 gloo processes measures what 1 process measures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.training.helpers import REPO, accelerate_launch


def launch_evaluate(processes: int, run: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        *accelerate_launch(processes),
        "-m",
        "distgan.evaluate",
        str(run),
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


@pytest.mark.slow
def test_two_processes_gather_what_one_process_computes(eval_assets: dict[str, Path], tmp_path: Path):
    results, caches = [], []
    for processes in (1, 2):
        cache = tmp_path / f"cache{processes}"
        # Odd counts: the last shard is short, so the padding of the gather is exercised.
        result = launch_evaluate(
            processes,
            eval_assets["run"],
            "--num",
            "45",
            f"eval.inception={eval_assets['extractor_logits']}",
            f"eval.stats_cache={cache}",
            "eval.num_real=61",
            "eval.batch_size=8",
            "eval.kid_subsets=4",
            "eval.kid_subset_size=20",
        )
        assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        results.append(json.loads(result.stdout.strip().splitlines()[-1]))
        (entry,) = cache.glob("*.npz")
        caches.append(np.load(entry)["features"])
        # 61 of the 64 training images: a seeded subset, which must not depend on the world size.
        assert json.loads(entry.with_suffix(".json").read_text())["subset_seed"] == 0
    one, two = results
    assert (one["processes"], two["processes"]) == (1, 2)
    assert caches[0].shape == caches[1].shape == (61, 32)
    np.testing.assert_allclose(caches[1], caches[0], rtol=1e-5, atol=1e-6)  # same rows, same order
    for key in ("fid", "kid", "is"):
        assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-7), key
    assert one["eval_images"] == two["eval_images"] == 45 and one["fid"] > 0
    lines = (eval_assets["run"] / "evaluations.jsonl").read_text().splitlines()
    assert [json.loads(line)["processes"] for line in lines[-2:]] == [1, 2]


def test_evaluate_cli_errors_are_one_line(eval_assets: dict[str, Path], tmp_path: Path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "distgan.evaluate", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )

    no_run = run(str(tmp_path))
    assert no_run.returncode == 2 and "has no config.yaml" in no_run.stderr
    missing = run(str(eval_assets["run"]), "--num", "10", f"eval.inception={tmp_path / 'none.pt'}")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert missing.stderr.strip().count("\n") == 0, missing.stderr
