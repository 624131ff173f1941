"""Draw a grid from a trained generator.

`python -m distgan.sample SOURCE --num 64 --out grid.png [--seed S]`

SOURCE is a run directory (its `final/generator_ema.safetensors`), `final/best`, a
generator .safetensors file (it carries the run's config, so it can be used on its own)
or a checkpoint `checkpoints/step_<N>`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from distgan.errors import DistganError
from distgan.utils.images import save_image_grid
from distgan.version import __version__


@torch.no_grad()
def sample(source: str | Path, num: int, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """`num` images in [-1, 1] from the EMA generator at `source` (see `distgan.load_generator`)."""
    from distgan.generator import load_generator

    return load_generator(source, device).sample(num, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distgan.sample", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a run directory, final/best, a generator .safetensors or checkpoints/step_<N>")
    parser.add_argument("--num", type=int, default=64, help="number of images (default: %(default)s)")
    parser.add_argument("--out", default="grid.png", help="output PNG (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="latent seed (default: %(default)s)")
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: %(default)s; cuda where available, else cpu)",
    )
    parser.add_argument("--version", action="version", version=f"distgan {__version__}")
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error("--num must be at least 1")
    try:
        images = sample(args.source, args.num, args.seed, args.device)
    except DistganError as err:
        print(f"distgan: error: {err}", file=sys.stderr)
        return 2
    print(save_image_grid(images, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
