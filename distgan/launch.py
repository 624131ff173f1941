"""`distgan-launch [accelerate launch flags] [--config PRESET] [key=value ...]`: accelerate launch of
distgan's trainer whose failures read as the trainer wrote them.

`accelerate launch distgan/train.py` ends every failed run with the launcher's own traceback
(and torchrun's failure table) after the one line the trainer printed. This launcher takes the
same flags, runs the same launch in-process and exits with the trainer's exit code instead,
so a bad config, missing data or a refused resume is one line, printed once.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

# Where the trainer's own arguments begin: its options, or the first key=value override.
TRAIN_OPTIONS = ("--config", "--print-config")
USAGE = """usage: distgan.launch [ACCELERATE_LAUNCH_FLAGS ...] [--config PRESET_OR_YAML] [key.sub=value ...]

accelerate launch of distgan's trainer (distgan/train.py) that exits with the trainer's exit
code and no launcher traceback: a one-line error stays one line.

options:
  -h, --help            show this help message and exit
  --version             show program's version number and exit
  ACCELERATE_LAUNCH_FLAGS
                        any flag of `accelerate launch` (--config_file, --num_processes, --multi_gpu, ...)
  the rest              the trainer's arguments (see distgan-train --help)

example: distgan-launch --config_file accelerate_configs/cpu.yaml --num_processes 2 train.steps=200"""


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(accelerate launch flags, trainer arguments)."""
    for i, arg in enumerate(argv):
        if arg in TRAIN_OPTIONS or arg.startswith("--config=") or ("=" in arg and not arg.startswith("-")):
            return argv[:i], argv[i:]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if argv == ["--version"]:
        from distgan.version import __version__

        print(f"distgan {__version__}")
        return 0
    from accelerate.commands.launch import launch_command, launch_command_parser
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    launcher_flags, train_args = split_argv(argv)
    script = str(Path(__file__).resolve().parent / "train.py")
    args = launch_command_parser().parse_args([*launcher_flags, script, *train_args])
    # torchrun logs each rank's exit as a warning; the rank's own line already says why.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        launch_command(args)
    except subprocess.CalledProcessError as err:  # one process: the trainer's exit code
        return err.returncode
    except ChildFailedError as err:  # several: the first failed rank's
        _, failure = err.get_first_failure()
        return failure.exitcode if failure.exitcode and failure.exitcode > 0 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
