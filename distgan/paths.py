"""Where distgan keeps files between runs: the one place the cache location is decided."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "DISTGAN_CACHE_DIR"


def cache_dir() -> Path:
    """$DISTGAN_CACHE_DIR, else $XDG_CACHE_HOME/distgan, else ~/.cache/distgan (decoded datasets, FID statistics)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "distgan"
