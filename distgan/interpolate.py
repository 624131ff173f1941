"""Latent interpolations from a trained EMA generator.

`python -m distgan.interpolate RUN_DIR --out interp.png [--rows 8] [--steps 10] [--seed 0] [--linear]`

Each row walks from one random latent to another in `--steps` images, along the great
circle (slerp, which keeps the norm a Gaussian latent typically has) or, with --linear,
along the straight line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import Tensor

from distgan.errors import DistganError
from distgan.version import __version__


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of a and b ([N, D]) at fractions t ([S]) -> [N, S, D]."""
    a_unit, b_unit = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_unit * b_unit).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]
    t = t[None, :, None]
    return (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / torch.sin(omega)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    return a[:, None] + t[None, :, None] * (b - a)[:, None]


@torch.no_grad()
def interpolate(
    source: Path,
    rows: int,
    steps: int,
    seed: int = 0,
    linear: bool = False,
    device: str = "cpu",
    class_id: str | int | None = None,
) -> Tensor:
    """Images [rows * steps, C, R, R] in [-1, 1], row-major. A conditional generator keeps one
    class per row: `class_id` for all, else row r has class r mod the class count."""
    from distgan.generator import load_generator

    generator = load_generator(source, device)
    z_dim = generator.z_dim
    gen = torch.Generator().manual_seed(seed)
    ends = torch.randn(2, rows, z_dim, generator=gen)
    t = torch.linspace(0, 1, steps)
    z = (lerp if linear else slerp)(ends[0], ends[1], t).reshape(rows * steps, z_dim)
    if not generator.num_classes:
        if class_id is not None:
            generator.class_id(class_id)  # raises: unconditional
        return generator(z.to(device))
    if class_id is not None:
        row_classes = torch.full((rows,), generator.class_id(class_id))
    else:
        row_classes = torch.arange(rows) % generator.num_classes
    return generator(z.to(device), row_classes.repeat_interleave(steps).to(device))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distgan.interpolate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "source", type=Path, help="a run directory, final/best, a generator .safetensors or a checkpoint"
    )
    parser.add_argument("--out", type=Path, default=Path("interp.png"), help="output PNG (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=8, help="interpolations (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=10, help="images per interpolation (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="latent seed (default: %(default)s)")
    parser.add_argument("--linear", action="store_true", help="straight lines instead of slerp")
    parser.add_argument(
        "--class",
        dest="class_id",
        default=None,
        help="conditional generators: the class of every row, an id or a name (default: row r has class r)",
    )
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: %(default)s; cuda where available, else cpu)",
    )
    parser.add_argument("--version", action="version", version=f"distgan {__version__}")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.steps < 2:
        parser.error("--rows must be at least 1 and --steps at least 2")
    try:
        images = interpolate(args.source, args.rows, args.steps, args.seed, args.linear, args.device, args.class_id)
    except DistganError as err:
        print(f"distgan: error: {err}", file=sys.stderr)
        return 2
    from distgan.utils.images import save_image_grid

    print(save_image_grid(images, args.out, columns=args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
