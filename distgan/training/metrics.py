"""Training statistics kept on the device and read back only at log intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import Tensor


class DeviceMeter:
    """Sums of scalar tensors per name; no host sync until `reduce`."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, stats: dict[str, Tensor]) -> None:
        for name, value in stats.items():
            if name in self.sums:
                self.sums[name].add_(value.detach())
            else:
                self.sums[name] = value.detach().float().clone()
            self.counts[name] = self.counts.get(name, 0) + 1

    def reduce(self, accelerator: Accelerator) -> dict[str, float]:
        """Mean over the interval and over ranks, in one collective and one device-to-host copy."""
        if not self.sums:
            return {}
        names = sorted(self.sums)
        means = torch.stack([self.sums[n] / self.counts[n] for n in names])
        means = accelerator.reduce(means, reduction="mean")
        self.sums.clear()
        self.counts.clear()
        return dict(zip(names, means.tolist()))


class JsonlLog:
    """`metrics.jsonl`: one JSON object per logged step, appended and flushed."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        # Truncation waits for the first new row: a run that stops before logging loses nothing.
        self._pending_truncate = resume_step if path.exists() else None

    def _truncate_after(self, step: int) -> None:
        # Rows logged after the checkpoint we resume from are replayed: drop them so each
        # step appears once.
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
            if row.get("step", 0) <= step:
                kept.append(line)
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, row: dict[str, Any]) -> None:
        if self._pending_truncate is not None:
            self._truncate_after(self._pending_truncate)
            self._pending_truncate = None
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
