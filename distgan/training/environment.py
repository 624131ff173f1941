"""What a run directory says about itself: the resolved config and, per start, the environment.

`environment.jsonl` gains one line each time the run starts or resumes, so a run resumed on
another machine, world size or precision keeps the record of every start.
"""

from __future__ import annotations

import json
import platform
import socket
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from distgan.config import Config
from distgan.version import __version__

ENVIRONMENT_FILE = "environment.jsonl"


def package_version(name: str) -> str | None:
    """The installed version, or None where the package is not installed (deepspeed is optional)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment(accelerator: Accelerator, start_step: int) -> dict[str, Any]:
    """One start of a run: versions, world, device, precision, host, command line, time."""
    return {
        "start_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "start_step": start_step,
        "distgan": __version__,
        "torch": package_version("torch"),
        "accelerate": package_version("accelerate"),
        "deepspeed": package_version("deepspeed"),
        "python": platform.python_version(),
        "world_size": accelerator.num_processes,
        "device_type": accelerator.device.type,
        "mixed_precision": accelerator.mixed_precision,
        "hostname": socket.gethostname(),
        "command": sys.argv,
    }


def describe_run(out: Path, cfg: Config, accelerator: Accelerator, start_step: int) -> None:
    """Writes config.yaml and appends this start to environment.jsonl (main process only)."""
    (out / "config.yaml").write_text(cfg.to_yaml())
    with open(out / ENVIRONMENT_FILE, "a") as f:
        f.write(json.dumps(environment(accelerator, start_step)) + "\n")
