"""Checkpoints in `<output_dir>/checkpoints/step_<N>/`: complete or absent, newest K kept.

All ranks write into a hidden temporary directory through `accelerator.save_state`; once
every rank is done, the main process writes a manifest of sizes and hashes and renames the
directory into place. A rename is atomic, so a crash mid-write leaves only a `.tmp-*`
directory that is never read and is cleaned up by the next save; a file damaged later is
caught by the manifest when resuming.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors import safe_open
from torch import nn

from distgan.errors import CheckpointError

_STEP_DIR = re.compile(r"^step_(\d+)$")
# Written last, with every file's size and SHA-256: a checkpoint whose files disagree with it
# was torn or corrupted after the fact.
MANIFEST = "distgan_manifest.json"
# Files distgan writes into every checkpoint itself, by name (accelerate's custom objects are
# numbered by registration order instead).
EMA_FILE = "generator_ema.safetensors"  # the EMA generator's state_dict, fp32, keys as the generator's own
STATE_FILE = "train_state.json"  # step, data position, rollbacks, tracker run id
SCALERS_FILE = "loss_scalers.pt"  # fp16: one GradScaler state per network
GENERATOR_ENGINE_DIR = "generator_engine"  # DeepSpeed: G's engine; D's is at the top
# Files accelerate's save_state writes that must exist for a checkpoint to be usable.
REQUIRED_FILES = ("model.safetensors", "model_1.safetensors", "optimizer.bin", "optimizer_1.bin", EMA_FILE, STATE_FILE)


def checkpoint_step(path: Path) -> int | None:
    match = _STEP_DIR.match(path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under root, oldest first."""
    if not root.is_dir():
        return []
    found = [(checkpoint_step(p), p) for p in root.iterdir() if p.is_dir()]
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def written_by_deepspeed(path: Path) -> bool:
    return (path / GENERATOR_ENGINE_DIR).is_dir()


def missing_files(path: Path) -> list[str]:
    return [name for name in REQUIRED_FILES if not (path / name).is_file()]


def find_damage(path: Path) -> str | None:
    """What is wrong with a checkpoint directory, naming the file, or None when it is intact.

    Checks every file against the manifest written last (size, then SHA-256); a checkpoint
    from before manifests is only checked for its required files.
    """
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        missing = missing_files(path)
        return f"missing {', '.join(missing)}" if missing else None
    try:
        files = json.loads(manifest_path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{manifest_path} is unreadable ({type(err).__name__})"
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            return f"{file} is missing"
        size = file.stat().st_size
        if size != expected["bytes"]:
            return f"{file} has {size} bytes, the manifest says {expected['bytes']} (truncated or partly written)"
        if _sha256(file) != expected["sha256"]:
            return f"{file} does not match its SHA-256 in the manifest (corrupted)"
    return None


def architecture_mismatch(path: Path, networks: dict[str, tuple[str, nn.Module]]) -> str | None:
    """A one-line refusal when the checkpoint's tensors do not have the networks' shapes, else None.

    `networks` maps a name (G, D) to the checkpoint file holding its weights and the module
    to compare with. Read before loading, because torch's own error is many lines and names neither network.
    """
    for name, (file, module) in networks.items():
        if not (path / file).is_file():
            continue  # a DeepSpeed checkpoint keeps D elsewhere; the damage check covers missing files
        with safe_open(str(path / file), "pt") as saved:
            stored = {key: list(saved.get_slice(key).get_shape()) for key in saved.keys()}
        differing = [
            f"{name} '{key}' is {_shape(was)} in the checkpoint, {_shape(now)} now"
            for key, (was, now) in shape_differences(stored, module).items()
        ]
        if differing:
            more = f" (and {len(differing) - 1} more)" if len(differing) > 1 else ""
            return (
                f"checkpoint {path.name} does not fit the configured network: {differing[0]}{more}; "
                f"resume with the config it was trained with or start a new output_dir"
            )
    return None


def shape_differences(
    stored: dict[str, list[int]], module: nn.Module
) -> dict[str, tuple[list[int] | None, list[int] | None]]:
    """key -> (stored shape, the module's shape) for every tensor the two do not share at one
    shape; None where one side lacks it. The module's keys come first, in its order."""
    current = {key: list(value.shape) for key, value in module.state_dict().items()}
    return {
        key: (stored.get(key), current.get(key))
        for key in [*current, *(k for k in stored if k not in current)]
        if stored.get(key) != current.get(key)
    }


def _shape(shape: list[int] | None) -> str:
    return "absent" if shape is None else "[" + ",".join(map(str, shape)) + "]"


def resolve_resume(resume: str, root: Path) -> Path | None:
    """`auto`: newest intact checkpoint or None; `never`: None; else that directory, if intact.

    `never` refuses an output_dir that already holds checkpoints: starting over there would
    overwrite them and the run's metrics. `auto` skips a damaged checkpoint with a warning
    naming the file and falls back to the one before; nothing is deleted.
    """
    found = list_checkpoints(root)
    if resume == "never":
        if found:
            raise CheckpointError(
                f"{root} already holds checkpoints up to {found[-1].name}: use train.resume=auto "
                f"to continue that run, or a new output_dir to start another"
            )
        return None
    if resume == "auto":
        newest_damage = None
        for candidate in reversed(found):
            damage = find_damage(candidate)
            if damage is None:
                return candidate
            warnings.warn(f"skipping damaged checkpoint {candidate}: {damage}", stacklevel=2)
            newest_damage = newest_damage or f"{candidate.name}: {damage}"
        if found:  # starting over would prune them and rewrite the run's metrics
            raise CheckpointError(
                f"every checkpoint in {root} is damaged (newest, {newest_damage}); move {root} away to start over"
            )
        return None
    path = Path(resume).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"train.resume={resume}: no such checkpoint directory; use auto, never or a step_<N> dir")
    damage = find_damage(path)
    if damage:
        raise CheckpointError(f"train.resume={resume}: damaged checkpoint, {damage}; use an older one or auto")
    return path


def save_checkpoint(
    accelerator: Accelerator, root: Path, step: int, keep: int, write: Callable[[str], None] | None = None
) -> Path:
    """Writes `root/step_<step>` atomically and prunes to the newest `keep`. Call on every rank.

    `write(directory)` writes the state (default: `accelerator.save_state`).

    If any rank fails to write (a full disk, say), every rank raises CheckpointError, the
    partial directory is removed and the previous checkpoints are left as they were.
    """
    final = root / f"step_{step}"
    tmp = root / f".tmp-step_{step}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    write = write or (lambda directory: accelerator.save_state(directory, safe_serialization=True))
    error = _attempt(lambda: write(str(tmp)))
    if all_ranks_ok(accelerator, error is None):
        if accelerator.is_main_process:
            error = _attempt(lambda: _seal(tmp, final, root))
    elif error is None:
        error = "another process could not write its part"
    if not all_ranks_ok(accelerator, error is None):
        previous = list_checkpoints(root)
        # torch.save reports a full disk as "unexpected pos"; the free space says what happened.
        full = _disk_full_note(root, previous[-1] if previous else None)
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)  # give the space back
        kept = f"the newest checkpoint is still {previous[-1]}" if previous else "no earlier checkpoint exists"
        raise CheckpointError(
            f"could not write checkpoint {final}: {full}{error or 'the main process could not seal it'}; {kept}"
        )
    if accelerator.is_main_process:
        for old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in [*root.glob(".tmp-step_*"), *root.glob(".old-step_*")]:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _attempt(write: Callable[[], object]) -> str | None:
    """None on success, else why the write failed (ENOSPC, EIO, ... surface as many types)."""
    try:
        write()
    except Exception as err:  # torch.save raises OSError/RuntimeError, safetensors its own error
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0]
        return f"{reason} ({type(err).__name__})"
    return None


def all_ranks_ok(accelerator: Accelerator, ok: bool) -> bool:
    # A collective: every rank learns whether every rank succeeded, so none waits for a dead one.
    if accelerator.num_processes == 1:
        return ok
    failed = torch.tensor([0 if ok else 1], device=accelerator.device)
    return int(accelerator.reduce(failed, reduction="sum").item()) == 0


def _disk_full_note(root: Path, previous: Path | None) -> str:
    free = shutil.disk_usage(root).free
    needed = sum(f.stat().st_size for f in previous.rglob("*") if f.is_file()) if previous else 0
    if free >= max(needed, 1 << 20):
        return ""
    return f"the disk is full ({free / 2**20:.1f} MiB free, a checkpoint takes {needed / 2**20:.1f} MiB): "


def _seal(tmp: Path, final: Path, root: Path) -> None:
    """Manifest last, everything on disk, then the rename that makes the checkpoint visible."""
    files = {
        str(f.relative_to(tmp)): {"bytes": f.stat().st_size, "sha256": _sha256(f)}
        for f in sorted(tmp.rglob("*"))
        if f.is_file()
    }
    (tmp / MANIFEST).write_text(json.dumps({"files": files}, indent=1))
    _fsync_tree(tmp)
    if final.exists():  # the same step saved again: keep the old copy until the new one is in place
        os.replace(final, root / f".old-{final.name}")
    os.replace(tmp, final)
    _fsync_dir(root)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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
