"""Draw a grid from a trained generator.

`python -m distgan.sample RUN_DIR_OR_SAFETENSORS --num 64 --out grid.png [--seed S]`

RUN_DIR uses `final/generator_ema.safetensors`; a .safetensors file carries the run's
config in its metadata, so it can be used on its own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from distgan.errors import DistganError
from distgan.utils.images import save_image_grid


def resolve_weights(source: str | Path) -> Path:
    path = Path(source)
    if path.is_dir():
        path = path / "final" / "generator_ema.safetensors"
    if not path.is_file():
        raise DistganError(f"no generator weights at {path}: give a run directory with final/ or a .safetensors file")
    return path


def load_generator(source: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, int]:
    """Rebuilds G from the config stored in the weights file; returns (G in eval mode, z_dim)."""
    from distgan.evaluation.loading import load_network

    generator, _, z_dim = load_network(resolve_weights(source), device)
    return generator, z_dim


@torch.no_grad()
def sample(source: str | Path, num: int, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    generator, z_dim = load_generator(source, device)
    z = torch.randn(num, z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    return generator(z)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distgan.sample", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a run directory or a generator .safetensors file")
    parser.add_argument("--num", type=int, default=64, help="number of images (default: %(default)s)")
    parser.add_argument("--out", default="grid.png", help="output PNG (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="latent seed (default: %(default)s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
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
