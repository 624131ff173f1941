"""launch/slurm/train.sbatch and preemption on a real SLURM cluster (two emulated nodes, CPU, gloo).

Skipped, with the reason, where the cluster cannot be started (not root, no slurm-wlm).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from distgan.training.backends.zero_reshard import checkpoint_world_size
from distgan.training.checkpoint import find_damage, list_checkpoints
from tests.launch.slurm_cluster import FINISHED, SlurmCluster
from tests.training.helpers import REPO, TINY, final_weights, training_pid

pytestmark = pytest.mark.slow

SBATCH = REPO / "launch" / "slurm" / "train.sbatch"
STEPS = 300  # long enough (~10 s of steps) for a signal to land mid-run
RUN = [*TINY, f"train.steps={STEPS}", "train.log_every=10"]


def job_env(**extra: str) -> dict[str, str]:
    return {
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "WANDB_SILENT": "true",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        **extra,
    }


def submit(
    slurm: SlurmCluster, work: Path, data: Path, *overrides: str, nodes: int = 2, env: dict[str, str] | None = None
) -> tuple[str, Path, Path]:
    out, log = work / "run", work / "job.out"
    job = slurm.sbatch(
        [f"--nodes={nodes}", f"--output={log}", "--time=10"],
        [str(SBATCH), *RUN, f"output_dir={out}", f"data.path={data}", *overrides],
        job_env(**(env or {})),
        cwd=work,
    )
    return job, out, log


def logged_steps(out: Path) -> list[int]:
    path = out / "metrics.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.exists() else []


def wait_for_step(out: Path, step: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(s >= step for s in logged_steps(out)):
            return
        time.sleep(0.05)
    raise TimeoutError(f"no metrics row at step >= {step} in {out} after {timeout} s")


@pytest.fixture(scope="module")
def uninterrupted(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Path]:
    from tests.conftest import write_mnist

    work = tmp_path_factory.mktemp("uninterrupted")
    job, out, log = submit(slurm, work, write_mnist(work / "mnist"))
    return slurm.wait(job, FINISHED, timeout=300), out, log


def test_two_nodes_train_one_two_rank_world(uninterrupted):
    info, out, log = uninterrupted
    text = log.read_text()
    assert info["JobState"] == "COMPLETED", text[-3000:]
    assert "2 node(s) x 1 process(es), head 127.0.0.1" in text
    assert "distgan: 2 process(es)" in text
    # One writer: every step logged once, one set of final weights.
    assert logged_steps(out) == list(range(10, STEPS + 1, 10))
    assert sorted(p.name for p in (out / "final").iterdir()) == [
        "discriminator.safetensors",
        "generator.safetensors",
        "generator_ema.safetensors",
    ]


def test_requeue_signal_checkpoints_requeues_and_resumes_exactly(slurm, uninterrupted, tmp_path, mnist_dir):
    _, reference, _ = uninterrupted
    job, out, log = submit(slurm, tmp_path, mnist_dir, "tracker=wandb", env={"WANDB_MODE": "offline"})
    wait_for_step(out, 30)
    slurm.run("scancel", "--signal=USR1", "--full", job)
    # scontrol requeue holds the job ~120 s (BeginTime); release it at once.
    slurm.wait(job, {"PENDING"}, timeout=120)
    slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now")
    info = slurm.wait(job, FINISHED, timeout=300)
    text = log.read_text()
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", text[-3000:]
    assert f"requeued SLURM job {job}" in text
    stopped = int(text.split("stopped at step ")[1].split()[0])
    assert 30 <= stopped < STEPS
    assert f"resumed from {out / 'checkpoints' / f'step_{stopped}'} at step {stopped}" in text
    assert "restart 1:" in text
    # The same run continued: every step logged once, bit-identical weights, one W&B run id.
    assert logged_steps(out) == list(range(10, STEPS + 1, 10))
    a, b = final_weights(reference), final_weights(out)
    assert all(a[k].equal(b[k]) for k in a), [k for k in a if not a[k].equal(b[k])]
    runs = sorted(p.name for p in (out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and runs[0].split("-")[-1] == runs[1].split("-")[-1], runs


def test_sigterm_alone_checkpoints_without_requeue(slurm, tmp_path, mnist_dir):
    job, out, log = submit(slurm, tmp_path, mnist_dir)
    wait_for_step(out, 30)
    slurm.run("scancel", "--signal=TERM", job)  # to the job's steps, as preemption does
    info = slurm.wait(job, FINISHED, timeout=180)
    text = log.read_text()
    assert "on SIGTERM: checkpoint" in text and "not requeued (SIGTERM)" in text, text[-3000:]
    assert info["Restarts"] == "0"
    stopped = int(text.split("stopped at step ")[1].split()[0])
    newest = list_checkpoints(out / "checkpoints")[-1]
    assert newest.name == f"step_{stopped}" and stopped < STEPS
    assert find_damage(newest) is None


def test_killed_rank_fails_the_job_and_leaves_intact_checkpoints(slurm, tmp_path, mnist_dir):
    job, out, log = submit(slurm, tmp_path, mnist_dir, "train.checkpoint_every=7")
    wait_for_step(out, 30)
    os.kill(training_pid(1, "distgan.train", {"SLURM_JOB_ID": job}), signal.SIGKILL)
    info = slurm.wait(job, FINISHED, timeout=120)  # no hang in a collective with the dead rank
    assert info["JobState"] == "FAILED", log.read_text()[-3000:]
    assert not (out / "final").exists()
    found = list_checkpoints(out / "checkpoints")
    assert found and all(find_damage(path) is None for path in found)


@pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None,
    reason='deepspeed is not installed (pip install "distgan[deepspeed]")',
)
def test_two_nodes_train_with_a_deepspeed_config(slurm, tmp_path, mnist_dir):
    job, out, log = submit(
        slurm,
        tmp_path,
        mnist_dir,
        "train.steps=20",
        "train.checkpoint_every=20",
        env={"ACCELERATE_CONFIG": "accelerate_configs/deepspeed_zero2.yaml"},
    )
    info = slurm.wait(job, FINISHED, timeout=300)
    text = log.read_text()
    assert info["JobState"] == "COMPLETED", text[-3000:]
    assert "2 node(s) x 1 process(es)" in text and "distgan: 2 process(es)" in text
    assert "distgan: DeepSpeed ZeRO-2, one engine per network, float32 weights" in text
    assert logged_steps(out) == [10, 20]
    # One DeepSpeed world across the nodes: each engine's optimizer state is split in two.
    step_20 = out / "checkpoints" / "step_20"
    assert checkpoint_world_size(step_20) == checkpoint_world_size(step_20 / "generator_engine") == 2
    assert all(v.isfinite().all() for v in final_weights(out).values())


def test_single_node_script_in_a_job(slurm, tmp_path, mnist_dir):
    out, log = tmp_path / "run", tmp_path / "job.out"
    command = " ".join(
        [str(REPO / "launch" / "single_node.sh"), *TINY, "train.steps=5", f"output_dir={out}", f"data.path={mnist_dir}"]
    )
    job = slurm.sbatch(
        ["--nodes=1", f"--output={log}", f"--wrap={command}"], [], job_env(NUM_PROCESSES="2"), cwd=tmp_path
    )
    info = slurm.wait(job, FINISHED, timeout=180)
    text = log.read_text()
    assert info["JobState"] == "COMPLETED", text[-3000:]
    assert "distgan: 2 process(es)" in text
    assert logged_steps(out) == [1, 2, 3, 4, 5]
