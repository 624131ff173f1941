"""Train a GAN: `accelerate launch distgan/train.py [--config PRESET_OR_YAML] [key.sub=value ...]`.

Also `python -m distgan.train ...` and the `distgan-train` console script. With no
arguments it trains the default preset (DCGAN on MNIST at 32x32).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (`accelerate launch distgan/train.py`): Python put distgan/ itself on
    # sys.path, where its modules would shadow top-level packages. Use the repo root instead.
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(_here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import os  # noqa: E402

from distgan.config import DEFAULT_PRESET, load_config, preset_names  # noqa: E402
from distgan.distributed import leave_process_group  # noqa: E402
from distgan.errors import DistganError  # noqa: E402
from distgan.version import __version__  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="distgan.train",
        description="Train a GAN on one CPU, one GPU, many GPUs or many nodes.",
        epilog=f"presets: {', '.join(preset_names())}. "
        "Example: python -m distgan.train train.steps=200 output_dir=runs/first (the MNIST subset bundled "
        "with distgan; data.path=DIR trains on a directory of the four MNIST IDX files instead)",
    )
    parser.add_argument("--config", default=DEFAULT_PRESET, help="a preset name or a YAML file (default: %(default)s)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--version", action="version", version=f"distgan {__version__}")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    is_main = os.environ.get("RANK", "0") == "0"
    try:
        cfg = load_config(args.config, args.overrides)
        if args.print_config:
            print(cfg.to_yaml(), end="")
            return 0
        from distgan.training.loop import Trainer  # heavy imports only once the config is good

        Trainer(cfg).run()
    except DistganError as err:
        if is_main:
            print(f"distgan: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the training loop watches for it, or after
        from distgan.training.preemption import INTERRUPTED, abort

        abort(INTERRUPTED)
    finally:
        leave_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
