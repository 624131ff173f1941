"""Resuming a ZeRO-1/2 checkpoint at another world size, through DeepSpeed's universal checkpoint.

ZeRO-1/2 keep the parameters whole on every rank but partition the optimizer state (fp32
master weights, Adam moments) into one file per rank, which an engine only loads at the
world size that wrote it. `deepspeed.checkpoint.ds_to_universal` merges those partitions
into one file per parameter, which an engine configured with `checkpoint.load_universal`
slices for its own rank at any world size.

The original checkpoint is never written to: the main process converts each engine's
state into a hidden directory next to it (under the run's checkpoint root) and links the
other files in, renaming it into place only when complete, so a crash mid-conversion
leaves the original as it was and only a `.reshard-*` directory that the next conversion
removes. The view is deleted once every rank has loaded it.

Order, under DeepSpeed: `prepare_reshard` on the plugins before the engines are prepared
(the flag is read from the engine config), then each load inside `resharded_view`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import DeepSpeedPlugin, broadcast_object_list

from distgan.errors import CheckpointError
from distgan.training.checkpoint import GENERATOR_ENGINE_DIR

ENGINE_TAG = "pytorch_model"  # the tag accelerate's save_state gives every DeepSpeed engine
ENGINE_DIRS = (".", GENERATOR_ENGINE_DIR)  # D's engine at the top of a checkpoint, G's below
_OPTIMIZER_SHARDS = "zero_pp_rank_*_mp_rank_00_optim_states.pt"
_VIEW_PREFIX = ".reshard-"


def checkpoint_world_size(checkpoint: Path) -> int | None:
    """How many ranks partitioned the ZeRO optimizer state of `checkpoint`; None when it holds none."""
    shards = list((checkpoint / ENGINE_TAG).glob(_OPTIMIZER_SHARDS))
    return len(shards) or None


def needs_reshard(checkpoint: Path | None, world_size: int) -> bool:
    """Whether `checkpoint` holds ZeRO state partitioned over another number of ranks."""
    written_by = checkpoint_world_size(checkpoint) if checkpoint is not None else None
    return written_by is not None and written_by != world_size


def prepare_reshard(plugins: Iterable[DeepSpeedPlugin]) -> None:
    """Makes the engines about to be prepared from `plugins` load universal checkpoints.

    Every later load of such an engine must then go through `resharded_view`, even of a
    checkpoint of the same world size (a rollback to one this run wrote).
    """
    for plugin in plugins:
        plugin.deepspeed_config.setdefault("checkpoint", {})["load_universal"] = True


@contextmanager
def resharded_view(accelerator: Accelerator, checkpoint: Path, scratch: Path) -> Iterator[Path]:
    """A directory that accelerate's `load_state` reads like `checkpoint`, with every engine's
    state in universal form, inside `scratch` (on the filesystem every rank sees). Call on
    every rank; the main process converts while the others wait, and removes it on exit."""
    view = scratch / f"{_VIEW_PREFIX}{checkpoint.name}"
    error = None
    if accelerator.is_main_process:
        try:
            _build(checkpoint, view)
        except Exception as err:  # noqa: BLE001 - whatever it is, every rank must reach the broadcast and stop
            error = str(err).splitlines()[0] if str(err) else type(err).__name__
    error = broadcast_object_list([error])[0] if accelerator.num_processes > 1 else error
    if error is not None:
        raise CheckpointError(
            f"checkpoint {checkpoint} holds ZeRO state of {checkpoint_world_size(checkpoint)} "
            f"processes and could not be converted for {accelerator.num_processes} ({error}); "
            f"resume it on {checkpoint_world_size(checkpoint)} processes, or start a new output_dir"
        )
    try:
        yield view
    finally:
        accelerator.wait_for_everyone()  # every rank has read it
        if accelerator.is_main_process:
            shutil.rmtree(view, ignore_errors=True)


def _build(checkpoint: Path, view: Path) -> None:
    view.parent.mkdir(parents=True, exist_ok=True)
    for stale in view.parent.glob(f"{_VIEW_PREFIX}*"):  # left by a crash, or by another checkpoint
        shutil.rmtree(stale, ignore_errors=True)
    partial = view.parent / f"{view.name}.partial"
    try:
        for engine_dir in ENGINE_DIRS:
            source, target = checkpoint / engine_dir, partial / engine_dir
            target.mkdir(parents=True, exist_ok=True)
            for entry in source.iterdir():  # the loop's own files (EMA, RNG, train state) are read as they are
                if entry.name != ENGINE_TAG and entry.name not in ENGINE_DIRS:
                    os.symlink(entry.resolve(), target / entry.name)
            _to_universal(source / ENGINE_TAG, target / ENGINE_TAG)
        os.replace(partial, view)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _to_universal(tag_dir: Path, out: Path) -> None:
    # A separate process: the converter prints progress, asserts on what it cannot read, and
    # must not touch this process's distributed state. `--inject_missing_state`: engines of a
    # plain nn.Module record no universal-checkpoint info, which ZeRO-1/2 do not need.
    command = [
        sys.executable,
        "-m",
        "deepspeed.checkpoint.ds_to_universal",
        "--input_folder",
        str(tag_dir),
        "--output_folder",
        str(out),
        "--num_extract_workers",
        "1",
        "--num_merge_workers",
        "1",
        "--inject_missing_state",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise subprocess.SubprocessError(f"ds_to_universal on {tag_dir}: {lines[-1] if lines else result.returncode}")
