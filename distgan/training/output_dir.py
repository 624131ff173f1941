"""The output directory, checked before any work: writable, with room for what the run writes.

A read-only or full `output_dir` would otherwise be found at the first sample grid or the
first checkpoint, after minutes or hours of training. Both checks run on the main process
(the only writer besides checkpoint shards) and every rank learns the verdict, so all stop
together with the same one line.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from accelerate import Accelerator
from torch import nn

from distgan.errors import DistganError
from distgan.training.checkpoint import all_ranks_ok


class OutputDirError(DistganError):
    """The output directory cannot take what the run will write."""


def _agree(accelerator: Accelerator, problem: str | None) -> None:
    """Raises on every rank when the main process found a problem (its message there)."""
    if not all_ranks_ok(accelerator, problem is None):
        raise OutputDirError(problem or "the main process cannot write output_dir (its error says why)")


def check_writable(accelerator: Accelerator, out: Path) -> None:
    """Writes, syncs and removes a probe file in `out` (main process). Directories it had to
    create are removed again: a run refused later (missing data, say) leaves nothing behind."""
    problem = None
    if accelerator.is_main_process:
        created = [p for p in (out, *out.parents) if not p.exists()]
        probe = out / f".distgan-write-test-{uuid.uuid4().hex[:8]}"
        try:
            out.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as handle:
                handle.write(b"distgan")
                os.fsync(handle.fileno())
            probe.unlink()
            for directory in created:  # deepest first
                directory.rmdir()
        except OSError as err:
            reason = err.strerror or type(err).__name__
            problem = f"output_dir={out} cannot be written ({reason}): choose a writable output_dir=DIR"
    _agree(accelerator, problem)


def checkpoint_bytes(*networks: nn.Module, optimizer_moments: int = 2) -> int:
    """One checkpoint's size, estimated from the networks: fp32 weights, Adam's two moments
    per trained network, and the EMA generator (the first network)."""
    sizes = [sum(t.numel() * 4 for t in [*net.parameters(), *net.buffers()]) for net in networks]
    return sum(sizes) * (1 + optimizer_moments) + (sizes[0] if sizes else 0)


def _size(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:.0f} KiB"


def check_free_space(accelerator: Accelerator, out: Path, needed: int) -> None:
    """Refuses to start when `out` has less free space than one checkpoint (`needed` bytes)."""
    problem = None
    if accelerator.is_main_process:
        existing = next(p for p in (out, *out.parents) if p.exists())  # out itself is made later
        free = shutil.disk_usage(existing).free
        if free < needed:
            problem = (
                f"output_dir={out} has {_size(free)} free and one checkpoint of these networks needs about "
                f"{_size(needed)}: free some space or choose another output_dir"
            )
    _agree(accelerator, problem)
