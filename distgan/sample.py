"""Draw a grid from a trained generator.

`python -m distgan.sample SOURCE --num 64 --out grid.png [--seed S] [--class K]`

SOURCE is a run directory (its `final/generator_ema.safetensors`), `final/best`, a
generator .safetensors file (it carries the run's config, so it can be used on its own),
a `save_pretrained` folder or a checkpoint `checkpoints/step_<N>`. A class-conditional
generator draws `--num` images of class K (an id or a class name) with `--class K`, and
without it one row per class, `--num` / classes images each.
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
def sample(
    source: str | Path, num: int, seed: int = 0, device: str = "cpu", class_id: str | int | None = None
) -> torch.Tensor:
    """`num` images in [-1, 1] from the EMA generator at `source` (see `distgan.load_generator`),
    of class `class_id` when given (conditional generators; else uniformly drawn classes)."""
    from distgan.generator import load_generator

    return load_generator(source, device).sample(num, seed, labels=class_id)


@torch.no_grad()
def sample_grid(
    source: str | Path, num: int, seed: int = 0, device: str = "cpu", class_id: str | int | None = None
) -> tuple[torch.Tensor, int | None]:
    """(images, grid columns): `sample`, except that a conditional generator without `class_id`
    gives one row per class of max(1, num // classes) images."""
    from distgan.generator import load_generator

    generator = load_generator(source, device)
    if not generator.num_classes or class_id is not None:
        return generator.sample(num, seed, labels=class_id), None
    per_class = max(1, num // generator.num_classes)
    labels = torch.arange(generator.num_classes).repeat_interleave(per_class)
    return generator.sample(len(labels), seed, labels=labels), per_class


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distgan.sample", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a run directory, final/best, a generator .safetensors or checkpoints/step_<N>")
    parser.add_argument("--num", type=int, default=64, help="number of images (default: %(default)s)")
    parser.add_argument("--out", default="grid.png", help="output PNG (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="latent seed (default: %(default)s)")
    parser.add_argument(
        "--class",
        dest="class_id",
        default=None,
        help="conditional generators: the class to draw, an id or a name (default: one row per class)",
    )
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
        images, columns = sample_grid(args.source, args.num, args.seed, args.device, args.class_id)
    except DistganError as err:
        print(f"distgan: error: {err}", file=sys.stderr)
        return 2
    print(save_image_grid(images, args.out, columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
