"""Quality at a wall-clock budget: train for N minutes, then FID of the newest checkpoint.

    python benchmarks/quality.py NAME --minutes 30 [--config PRESET] [--intra-fid] [--eval key=value] [key=value ...]
    python benchmarks/quality.py NAME --train-only ...   then   python benchmarks/quality.py NAME --eval-only ...

Runs `python -m distgan.train --config PRESET key=value ... output_dir=runs/quality/NAME` with
no step limit, stops it with Ctrl-C (SIGINT: a checkpoint at the next step boundary, as a user
would stop it) once `--minutes` of wall time have passed since it started (start-up and data
decoding included), then measures the EMA generator of that checkpoint with
`python -m distgan.evaluate --num 10000 eval.real_split=test` (the default FID protocol,
`--eval` overrides added (repeatable), e.g. `--eval data.path=null` to measure a run on an MNIST subset
against the bundled test digits). Prints one JSON row: the command, steps, kimg, training
seconds, FID, KID (and the intra-class FID with `--intra-fid`), the protocol, the machine.
Training and evaluation inherit OMP_NUM_THREADS / the torch default threads of the shell.
`--train-only` / `--eval-only` split the two, so that on a small machine the trainings of a
comparison can run side by side with nothing else on the CPU and the evaluations later (the
training's seconds and command are kept in runs/quality/NAME/quality_train.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch


def newest_checkpoint(out: Path) -> Path:
    steps = sorted(
        (p for p in (out / "checkpoints").glob("step_*") if (p / "train_state.json").is_file()),
        key=lambda p: int(p.name.removeprefix("step_")),
    )
    if not steps:
        sys.exit(f"quality: {out} has no complete checkpoint: the run stopped before its first step")
    return steps[-1]


def run_training(train: list[str], out: Path, name: str, minutes: float) -> float:
    """Runs `train` until it ends or `minutes` pass, then stops it with Ctrl-C -> wall seconds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(out.parent / f"{name}.train.log", "w") as log:
        process = subprocess.Popen(train, stdout=log, stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=minutes * 60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            process.wait()
    if process.returncode != 0:
        sys.exit(f"quality: training exited {process.returncode}; see {out.parent / f'{name}.train.log'}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the run's name: runs/quality/NAME")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--config", default="mnist_dcgan")
    parser.add_argument("--num", type=int, default=10000, help="generated images for FID (default: %(default)s)")
    parser.add_argument("--intra-fid", action="store_true")
    parser.add_argument("--eval", action="append", default=[], metavar="key=value", help="an evaluation override")
    parser.add_argument("--root", type=Path, default=Path("runs/quality"))
    phase = parser.add_mutually_exclusive_group()
    phase.add_argument("--train-only", action="store_true", help="train and stop; evaluate later with --eval-only")
    phase.add_argument("--eval-only", action="store_true", help="evaluate the run a --train-only call left")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_intermixed_args()

    out = args.root / args.name
    train = [
        *(sys.executable, "-m", "distgan.train", "--config", args.config, *args.overrides),
        *(f"output_dir={out}", "train.steps=100000000", "train.progress=false", "train.checkpoint_every=5000"),
    ]
    trained = out / "quality_train.json"
    if args.eval_only:
        if not trained.is_file():
            sys.exit(f"quality: {trained} is missing: train first with `--train-only`")
        stored = json.loads(trained.read_text())
        train_seconds, train = stored["train_seconds"], [sys.executable, *stored["command"]]
    else:
        train_seconds = run_training(train, out, args.name, args.minutes)
        trained.write_text(json.dumps({"train_seconds": train_seconds, "command": train[1:]}))
        if args.train_only:
            return
    checkpoint = newest_checkpoint(out)
    state = json.loads((checkpoint / "train_state.json").read_text())

    evaluate = [
        *(sys.executable, "-m", "distgan.evaluate", str(out), "--checkpoint", str(checkpoint), "--num", str(args.num)),
        *(["--intra-fid"] if args.intra_fid else []),
        *("eval.real_split=test", "train.progress=false", *args.eval),
    ]
    eval_start = time.perf_counter()
    result = subprocess.run(evaluate, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"quality: evaluation failed: {result.stderr.strip().splitlines()[-1:]}")
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    row = {
        "name": args.name,
        "command": " ".join(train[1:]),
        "steps": state["step"],
        "kimg": state["data_position"] / 1000,
        "train_seconds": round(train_seconds),
        **{
            k: metrics[k]
            for k in ("fid", "kid", "kid_std", "intra_fid", "eval_images", "eval_real_images")
            if k in metrics
        },
        "eval_protocol": metrics["eval_protocol"],
        "eval_real_split": metrics["eval_real_split"],
        "eval_seconds": round(time.perf_counter() - eval_start),
        "threads": int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
    }
    line = json.dumps(row)
    with open(args.root / "results.jsonl", "a") as handle:
        handle.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
