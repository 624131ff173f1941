"""How far N processes (or T threads) move a run from one process, at a preset's real widths.

    python benchmarks/equivalence.py --config mnist_dcgan --steps 10 1000 [key=value ...]

Trains the preset for each step count three ways on the CPU, with the same global batch and
seed: one process with one thread (the reference), two processes (gloo, one thread each),
and one process with two threads. Prints one JSON line per comparison: per network (G, EMA G,
D; trained weights, not BatchNorm running statistics) the largest absolute difference from
the reference and the relative L2 distance |w - w_ref| / |w_ref|. The tests prove equivalence
on small networks (< 1e-5 after 6-10 steps); these figures are what float summation order
does to the real ones over a real run, where Adam and the GAN game amplify it.

    python benchmarks/equivalence.py --config mnist_dcgan --steps 10 1000
    python benchmarks/equivalence.py --compare DIR_A DIR_B     # two finished runs' final/
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]


def train(out: Path, config: str, steps: int, processes: int, threads: int, overrides: list[str]) -> float:
    mode = ["--multi_gpu"] if processes > 1 else ["--cpu"]
    cmd = [
        *(sys.executable, "-m", "accelerate.commands.launch", *mode, "--num_processes", str(processes)),
        *("--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29613"),
        str(REPO / "distgan" / "train.py"),
        *("--config", config, f"output_dir={out}", f"train.steps={steps}", "train.progress=false"),
        *("train.sample_every=0", "train.checkpoint_every=0", "train.resume=never", *overrides),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"training failed ({' '.join(cmd)}):\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def weights(out: Path) -> dict[str, torch.Tensor]:
    found = {}
    for name in ("generator", "generator_ema", "discriminator"):
        for key, value in load_file(str(out / "final" / f"{name}.safetensors")).items():
            if value.is_floating_point():
                found[f"{name}/{key}"] = value.double()
    return found


def compare(reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Per network: max |delta| and relative L2 distance over its trained weights."""
    found = {}
    for net in ("generator", "generator_ema", "discriminator"):
        keys = [k for k in reference if k.startswith(f"{net}/") and "running_" not in k and "num_batches" not in k]
        delta = sum(((reference[k] - other[k]) ** 2).sum() for k in keys) ** 0.5
        norm = sum((reference[k] ** 2).sum() for k in keys) ** 0.5
        found[net] = {
            "max_abs_diff": max((reference[k] - other[k]).abs().max().item() for k in keys),
            "rel_l2": (delta / norm).item(),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="mnist_dcgan")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"))
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args()
    if args.compare:
        print(json.dumps(compare(weights(args.compare[0]), weights(args.compare[1]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.steps:
            runs = {}
            for label, processes, threads in (("1 process", 1, 1), ("2 processes", 2, 1), ("2 threads", 1, 2)):
                out = Path(tmp) / f"{steps}-{processes}-{threads}"
                seconds = train(out, args.config, steps, processes, threads, args.overrides)
                runs[label] = (weights(out), seconds)
            reference, _ = runs["1 process"]
            for label in ("2 processes", "2 threads"):
                other, seconds = runs[label]
                row = {
                    "config": args.config,
                    "overrides": args.overrides,
                    "steps": steps,
                    "vs_1_process_1_thread": label,
                    **compare(reference, other),
                    "seconds": round(seconds, 1),
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
