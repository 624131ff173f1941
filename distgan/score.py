"""Score images with a trained discriminator: a realness probability per image.

`python -m distgan.score RUN_DIR IMAGES... [--csv scores.csv] [--sheet sheet.png] [--checkpoint DIR]`

IMAGES are files or directories (searched recursively). Each image is shaped as the
training data was (channels, shorter side resized bicubic to the run's resolution, centre
crop), D's output is read as log-odds and the realness is sigmoid(output). The CSV lists
path, D output and realness, most real first; the contact sheet shows the images in that
order (row by row). With losses other than minimax / nonsaturating D's output is not a
log-odds: the column then ranks images but is no calibrated probability.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from distgan.errors import DistganError
from distgan.version import __version__

LOGISTIC_LOSSES = ("minimax", "nonsaturating")


def find_images(sources: list[Path]) -> list[Path]:
    from distgan.data.folder import IMAGE_EXTENSIONS

    found: list[Path] = []
    for source in sources:
        if source.is_dir():
            found += sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        elif source.is_file():
            found.append(source)
        else:
            raise DistganError(f"{source}: no such file or directory")
    if not found:
        raise DistganError(
            f"no images in {', '.join(map(str, sources))}: expected files ending in {' '.join(IMAGE_EXTENSIONS)}"
        )
    return found


def load_pixels(paths: list[Path], channels: int, resolution: int) -> torch.Tensor:
    from distgan.data.images import shape_image

    arrays = []
    for path in paths:
        try:
            with Image.open(path) as img:
                arrays.append(shape_image(img, channels, resolution))
        except (OSError, ValueError) as err:
            raise DistganError(f"{path} cannot be read as an image ({err})") from None
    return torch.from_numpy(np.stack(arrays))


@torch.no_grad()
def score(
    run: Path, paths: list[Path], batch_size: int = 256, class_id: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """(shaped uint8 images, D outputs [N], realness [N], loss name) for the images at `paths`;
    a class-conditional D scores them as images of class `class_id`."""
    from distgan.data import to_float_images
    from distgan.generator import load_discriminator

    discriminator, cfg = load_discriminator(run)
    if cfg.data.conditional and class_id is None:
        raise DistganError("this discriminator is class-conditional: give --class K, the class to score the images as")
    if not cfg.data.conditional and class_id is not None:
        raise DistganError("--class was given but this discriminator is unconditional: leave it out")
    channels = cfg.data.channels or (1 if cfg.data.source == "mnist" else 3)
    pixels = load_pixels(paths, channels, cfg.data.resolution)

    def run_d(x: torch.Tensor) -> torch.Tensor:
        return discriminator(x) if class_id is None else discriminator(x, torch.full((len(x),), class_id))

    try:
        outputs = torch.cat([run_d(to_float_images(chunk)).reshape(-1).float() for chunk in pixels.split(batch_size)])
    except IndexError:
        raise DistganError(f"--class {class_id} is not a class of this discriminator: give a class id from 0") from None
    return pixels, outputs, torch.sigmoid(outputs), cfg.loss.name


def write_csv(path: Path, paths: list[Path], outputs: torch.Tensor, realness: torch.Tensor, order: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "d_output", "realness"])
        for i in order:
            writer.writerow([str(paths[i]), f"{outputs[i].item():.6g}", f"{realness[i].item():.6f}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distgan.score", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory, final/best, or a discriminator .safetensors")
    parser.add_argument("images", type=Path, nargs="+", help="image files or directories")
    parser.add_argument("--csv", type=Path, default=Path("scores.csv"), help="output CSV (default: %(default)s)")
    parser.add_argument(
        "--sheet",
        type=Path,
        default=Path("scores.png"),
        help="contact sheet sorted by realness, row by row (default: %(default)s)",
    )
    parser.add_argument(
        "--class", dest="class_id", type=int, default=None, help="conditional runs: the class to score the images as"
    )
    parser.add_argument("--version", action="version", version=f"distgan {__version__}")
    args = parser.parse_args(argv)
    try:
        paths = find_images(args.images)
        pixels, outputs, realness, loss = score(args.run, paths, class_id=args.class_id)
    except DistganError as err:
        print(f"distgan: error: {err}", file=sys.stderr)
        return 2
    if loss not in LOGISTIC_LOSSES:
        print(
            f"distgan: note: loss {loss}: D's output is not a log-odds, so realness ranks images but is not "
            f"a calibrated probability",
            file=sys.stderr,
        )
    from distgan.data import to_float_images
    from distgan.utils.images import save_image_grid

    order = torch.argsort(realness, descending=True, stable=True).tolist()
    write_csv(args.csv, paths, outputs, realness, order)
    save_image_grid(to_float_images(pixels[order]), args.sheet)
    print(f"{len(paths)} images scored: {args.csv} (most real first), {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
