"""Training statistics kept on the device and read back only at log intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import Tensor


class DeviceMeter:
    """Sums of scalar tensors per name; no host sync until `reduce`.

    Non-finite values (from a step that was skipped) are left out of the means, so one bad
    step does not hide the interval's losses; an interval with no finite value reports NaN.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, Tensor] = {}

    def add(self, stats: dict[str, Tensor]) -> None:
        for name, value in stats.items():
            value = value.detach().float()
            finite = torch.isfinite(value)
            if name not in self.sums:
                self.sums[name] = torch.zeros_like(value)
                self.counts[name] = torch.zeros_like(value)
            self.sums[name].add_(torch.where(finite, value, 0.0))
            self.counts[name].add_(finite.float())

    def clear(self) -> None:
        self.sums.clear()
        self.counts.clear()

    def reduce(self, accelerator: Accelerator) -> dict[str, float]:
        """Mean over the interval and over ranks, in one collective and one device-to-host copy."""
        if not self.sums:
            return {}
        names = sorted(self.sums)
        totals = accelerator.reduce(
            torch.stack([torch.stack([self.sums[n], self.counts[n]]) for n in names]), reduction="sum"
        )
        means = torch.where(totals[:, 1] > 0, totals[:, 0] / totals[:, 1].clamp_min(1), float("nan"))
        self.clear()
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

    def rewind(self, step: int) -> None:
        """After a rollback to `step`: the rows after it describe steps that are redone."""
        self._pending_truncate = step if self.path.exists() else None

    def write(self, row: dict[str, Any]) -> None:
        if self._pending_truncate is not None:
            self._truncate_after(self._pending_truncate)
            self._pending_truncate = None
        # NaN is not JSON: a metric with no finite value in the interval is written as null.
        row = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
