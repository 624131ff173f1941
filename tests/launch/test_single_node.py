"""launch/single_node.sh picks the accelerate config for the machine and passes overrides through."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.training.helpers import REPO, TINY


@pytest.mark.slow
def test_cpu_machine_trains_with_overrides(tmp_path: Path, mnist_dir: Path):
    out = tmp_path / "run"
    env = {
        **os.environ,
        "NUM_GPUS": "0",
        "OMP_NUM_THREADS": "1",
        "PATH": f"{Path(os.sys.executable).parent}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        [
            str(REPO / "launch" / "single_node.sh"),
            *TINY,
            f"output_dir={out}",
            f"data.path={mnist_dir}",
            "train.steps=2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "launch: accelerate launch --cpu --num_processes 1" in result.stderr
    assert "distgan: 1 process(es)" in result.stdout
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
