"""Checkpoints in `<output_dir>/checkpoints/step_<N>/`: complete or absent, newest K kept.

All ranks write into a hidden temporary directory through `accelerator.save_state`; once
every rank is done, the main process renames it into place. A rename is atomic, so a
crash mid-write leaves only a `.tmp-*` directory that is never read and is cleaned up by
the next save.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

from accelerate import Accelerator

from distgan.errors import CheckpointError

_STEP_DIR = re.compile(r"^step_(\d+)$")
# Files accelerate's save_state writes that must exist for a checkpoint to be usable.
REQUIRED_FILES = ("model.safetensors", "model_1.safetensors", "optimizer.bin", "optimizer_1.bin")


def checkpoint_step(path: Path) -> int | None:
    match = _STEP_DIR.match(path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under root, oldest first."""
    if not root.is_dir():
        return []
    found = [(checkpoint_step(p), p) for p in root.iterdir() if p.is_dir()]
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def missing_files(path: Path) -> list[str]:
    return [name for name in REQUIRED_FILES if not (path / name).is_file()]


def resolve_resume(resume: str, root: Path) -> Path | None:
    """`auto`: newest complete checkpoint or None; `never`: None; else that directory.

    `never` refuses an output_dir that already holds checkpoints: starting over there would
    overwrite them and the run's metrics.
    """
    found = list_checkpoints(root)
    if resume == "never":
        if found:
            raise CheckpointError(f"{root} already holds checkpoints up to {found[-1].name}: use train.resume=auto "
                                  f"to continue that run, or a new output_dir to start another")
        return None
    if resume == "auto":
        for candidate in reversed(found):
            missing = missing_files(candidate)
            if not missing:
                return candidate
            warnings.warn(f"skipping incomplete checkpoint {candidate} (missing {', '.join(missing)})", stacklevel=2)
        return None
    path = Path(resume).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"train.resume={resume}: no such checkpoint directory; use auto, never or a step_<N> dir")
    missing = missing_files(path)
    if missing:
        raise CheckpointError(f"train.resume={resume}: incomplete checkpoint, missing {', '.join(missing)}")
    return path


def save_checkpoint(accelerator: Accelerator, root: Path, step: int, keep: int) -> Path:
    """Writes `root/step_<step>` atomically and prunes to the newest `keep`. Call on every rank."""
    final = root / f"step_{step}"
    tmp = root / f".tmp-step_{step}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp), safe_serialization=True)
    except OSError as err:
        raise CheckpointError(f"could not write checkpoint {tmp}: {err.strerror or err}; "
                              f"the previous checkpoint is kept") from err
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _fsync_tree(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
        for old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in root.glob(".tmp-step_*"):
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _fsync_tree(path: Path) -> None:
    # The rename must not become visible before the data it names is on disk.
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
