"""A run directory belongs to one experiment: what may change when a run is continued.

Continuing a run (a resume, or a fresh start into a directory that already holds a run)
compares the resolved config with the one the run was trained under: the config stored in
the checkpoint (`config.yaml` inside `checkpoints/step_<N>/`) or, for checkpoints written
before that file, the run directory's `config.yaml`. A change to anything that alters the
computation is refused in one line before any file is written; a change that only alters
how long the run goes on, what it logs, where it reports or how fast it runs is allowed and
appended to `config_changes.jsonl` in the run directory.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from distgan.config import Config
from distgan.errors import DistganError

CONFIG_FILE = "config.yaml"  # in the run directory and in every checkpoint
CHANGES_FILE = "config_changes.jsonl"

# Keys (or key prefixes ending in ".") whose change leaves every update of G and D as it was.
# compile and channels_last change float summation order only, like a thread count does.
MAY_CHANGE_ON_RESUME = (
    "output_dir",
    "tracker",
    "tracking.",
    "eval.",
    "train.steps",
    "train.log_every",
    "train.sample_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.resume",
    "train.progress",
    "train.consistency_check_every",
    "train.on_nonfinite",
    "train.nonfinite_patience",
    "train.compile",
    "train.compile_backend",
    "train.channels_last",
    "data.num_workers",
    "data.in_memory",
    "data.on_device",
    "data.cache_dir",
)


class RunConfigChanged(DistganError):
    """The config differs from the run's in a way that alters the computation."""


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"steps": 3}} -> {"train.steps": 3}; a dict-valued option (model.kwargs) stays one value."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != "model.kwargs":
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def may_change(key: str) -> bool:
    return any(
        key == allowed or (allowed.endswith(".") and key.startswith(allowed)) for allowed in MAY_CHANGE_ON_RESUME
    )


def _same(key: str, old: Any, new: Any) -> bool:
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        return list(old) == list(new)
    if key == "data.channels" and (old is None or new is None):
        return True  # None means "as the data has it": the data check on resume still compares shapes
    if key == "model.sync_bn" and {old, new} <= {False, "auto"}:
        return True  # auto is off on one process and BatchNorm's all-reduce is the same average
    return old == new


def config_changes(old: dict[str, Any], new: Config) -> dict[str, tuple[Any, Any]]:
    """key -> (old, new) for every differing key. A key an older distgan did not write is
    compared against its default, so options added later do not count as changes."""
    old_flat, new_flat = flatten(old), flatten(new.model_dump(mode="json"))
    defaults = flatten(Config().model_dump(mode="json"))
    changes = {}
    for key, value in new_flat.items():
        before = old_flat.get(key, defaults.get(key))
        if not _same(key, before, value):
            changes[key] = (before, value)
    return changes


def run_config_of(run_dir: Path, checkpoint: Path | None) -> tuple[dict[str, Any], Path] | None:
    """The config a run was trained under, and the file it came from, or None for a new directory."""
    # A checkpoint written before checkpoints held their config: its run directory's.
    own = [checkpoint / CONFIG_FILE, checkpoint.parent.parent / CONFIG_FILE] if checkpoint is not None else []
    candidates = [*own, run_dir / CONFIG_FILE]
    for path in candidates:
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError) as err:
                raise DistganError(
                    f"{path} cannot be read ({type(err).__name__}); restore it or use a new output_dir"
                ) from None
            if isinstance(data, dict):
                return data, path
    return None


def check_continuation(cfg: Config, run_dir: Path, checkpoint: Path | None) -> dict[str, tuple[Any, Any]]:
    """Refuses a config that alters the computation of the run in `run_dir`; returns the allowed changes."""
    found = run_config_of(run_dir, checkpoint)
    if found is None:
        return {}
    old, source = found
    changes = config_changes(old, cfg)
    refused = {key: change for key, change in changes.items() if not may_change(key)}
    if refused:
        shown = ", ".join(f"{key} {before!r} -> {after!r}" for key, (before, after) in list(refused.items())[:4])
        more = f" and {len(refused) - 4} more" if len(refused) > 4 else ""
        what = f"checkpoint {checkpoint.name}" if checkpoint is not None else "the run"
        raise RunConfigChanged(
            f"{run_dir} holds a run trained with another config ({shown}{more}; {what}, {source.name}); "
            f"to train this config use a new output_dir=DIR; to continue the run, keep its values for those keys"
        )
    return changes


def record_changes(run_dir: Path, step: int, changes: dict[str, tuple[Any, Any]]) -> None:
    """Appends one line for a continuation with changed settings (main process)."""
    if not changes:
        return
    line = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "step": step,
        "changes": {key: {"from": before, "to": after} for key, (before, after) in changes.items()},
    }
    with open(run_dir / CHANGES_FILE, "a") as f:
        f.write(json.dumps(line) + "\n")


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{key} {before!r} -> {after!r}" for key, (before, after) in changes.items())
