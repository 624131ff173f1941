"""Measure FID / KID (and IS where the extractor has logits) of a trained run.

`python -m distgan.evaluate RUN_DIR [--num 50000] [--checkpoint PATH] [--seed S] [eval.key=value ...]`

Uses the EMA generator of RUN_DIR/final (or --checkpoint: final/best, a generator
.safetensors, or checkpoints/step_<N>) and the run's config.yaml, with eval.* overrides
(eval.inception=PATH, eval.real_split=test, ...). Under `accelerate launch` every process
generates and encodes its share. Prints one JSON line and appends it to RUN_DIR/evaluations.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from distgan.config import load_config
from distgan.distributed import leave_process_group
from distgan.errors import DistganError
from distgan.version import __version__


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="distgan.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (holds config.yaml)")
    parser.add_argument(
        "--num",
        type=int,
        default=50000,
        help="generated images (default: %(default)s, as papers report FID; 10000 for a quicker look)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="generator to measure (default: RUN_DIR/final/generator_ema.safetensors)",
    )
    parser.add_argument("--seed", type=int, default=None, help="latent seed (default: the run's seed)")
    parser.add_argument(
        "--intra-fid",
        action="store_true",
        help="conditional generators: also the intra-class FID, each class's --num / classes images "
        "against the reference images of that class, and its mean over classes",
    )
    parser.add_argument("--version", action="version", version=f"distgan {__version__}")
    parser.add_argument(
        "overrides", nargs="*", metavar="key.sub=value", help="config overrides, e.g. eval.inception=PATH"
    )
    return parser.parse_intermixed_args(argv)  # overrides may come before or after options


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from accelerate import Accelerator

    acc = Accelerator(cpu=not torch.cuda.is_available())
    try:
        if args.num < 2:
            raise DistganError(f"--num {args.num}: FID needs at least 2 generated images")
        config_file = args.run_dir / "config.yaml"
        if not config_file.is_file():
            raise DistganError(f"{args.run_dir} has no config.yaml: give the output_dir of a distgan run")
        cfg = load_config(str(config_file), args.overrides)
        from distgan.evaluation.evaluator import Evaluator
        from distgan.generator import load_generator

        generator = load_generator(args.checkpoint or args.run_dir, acc.device)
        evaluator = Evaluator(acc, cfg)  # the extractor is checked before any image is generated
        seed = cfg.seed if args.seed is None else args.seed
        if args.intra_fid and not generator.num_classes:
            raise DistganError("--intra-fid needs a class-conditional generator (data.conditional=true)")
        result = evaluator.evaluate(generator, generator.z_dim, args.num, seed, generator.num_classes)
        if args.intra_fid:
            per_class = args.num // generator.num_classes
            result.update(evaluator.intra_fid(generator, generator.z_dim, per_class, seed, generator.num_classes))
    except DistganError as err:
        if acc.is_main_process:
            print(f"distgan: error: {err}", file=sys.stderr)
        leave_process_group()
        return 2
    if acc.is_main_process:
        row = {
            "checkpoint": str((args.checkpoint or args.run_dir / "final").resolve()),
            "seed": seed,
            "processes": acc.num_processes,
            **result,
        }
        line = json.dumps(row)
        with open(args.run_dir / "evaluations.jsonl", "a") as handle:
            handle.write(line + "\n")
        print(line)
    leave_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
