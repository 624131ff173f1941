"""Steps whose loss or gradients are not finite: skipped on every rank alike, counted on the device.

The decision to skip is taken on the device, without a host sync (how each backend applies
it: distgan.training.backends). Gradients are read after DDP's all-reduce, and NaN/Inf survive
a sum, so a bad value on ONE rank makes every rank skip the same step. What to do about
skipped steps (log, roll back, stop) is decided at log steps from counters reduced across
ranks, see `NonFiniteGuard.verdict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from accelerate import Accelerator
from torch import Tensor

Policy = Literal["skip", "rollback", "stop"]


@dataclass
class Verdict:
    """Counts over the interval since the last verdict, the same on every rank."""

    nonfinite: dict[str, int]  # phase -> steps skipped for a non-finite loss or gradient
    overflows: dict[str, int]  # phase -> fp16 loss-scale overflows (the scaler skipped them)
    consecutive: int  # steps in a row, up to now, in which some phase was skipped
    action: Literal["continue", "rollback", "stop"]
    reason: str = ""


class NonFiniteGuard:
    PHASES = ("d", "g")

    def __init__(self, policy: Policy, patience: int, device: torch.device, fp16: bool = False) -> None:
        self.policy = policy
        self.patience = patience
        self.fp16 = fp16  # only then can a skip be a loss-scale overflow, worth naming
        self._nonfinite = torch.zeros(2, device=device)
        self._overflows = torch.zeros(2, device=device)
        self._consecutive = torch.zeros((), device=device)
        self._step_skipped = torch.zeros((), device=device)
        self._loss_bad = torch.zeros((), device=device)

    def note_loss(self, loss: Tensor) -> None:
        """Every micro-batch: remembers whether the loss itself was finite."""
        self._loss_bad = torch.maximum(self._loss_bad, (~torch.isfinite(loss.detach())).float())

    def record(self, phase: str, found_inf: Tensor, scaled: bool) -> Tensor:
        """On the micro-batch that steps: notes the phase's step, returns the skip flag for it.

        `found_inf` (a device scalar) says whether the gradients were not finite. With a loss
        scaler (`scaled`), the scaler does the skipping and lowers its scale; a skip with a
        finite loss is then an overflow, routine in fp16, not an error.
        """
        skip = torch.maximum(found_inf, self._loss_bad)
        index = self.PHASES.index(phase)
        if scaled:
            self._overflows[index] += found_inf * (1 - self._loss_bad)
            self._nonfinite[index] += self._loss_bad
        else:
            self._nonfinite[index] += skip
        self._step_skipped = torch.maximum(self._step_skipped, skip)
        self._loss_bad = torch.zeros_like(self._loss_bad)
        return skip

    def end_step(self) -> None:
        """After both phases: extends or resets the run of consecutive skipped steps."""
        self._consecutive = (self._consecutive + 1) * self._step_skipped
        self._step_skipped = torch.zeros_like(self._step_skipped)

    def verdict(self, accelerator: Accelerator) -> Verdict:
        """At a log step: one gather, the max over ranks, the same decision everywhere."""
        local = torch.cat([self._nonfinite, self._overflows, self._consecutive.reshape(1)])
        counts = accelerator.gather(local.reshape(1, -1)).amax(0).tolist()
        self._nonfinite.zero_()
        self._overflows.zero_()
        nonfinite = dict(zip(self.PHASES, map(int, counts[0:2])))
        overflows = dict(zip(self.PHASES, map(int, counts[2:4])))
        consecutive = int(counts[4])
        verdict = Verdict(nonfinite, overflows, consecutive, "continue")
        bad = sum(nonfinite.values())
        if self.policy == "stop" and bad:
            phases = " and ".join(f"{'D' if p == 'd' else 'G'} ({n} step(s))" for p, n in nonfinite.items() if n)
            verdict.action, verdict.reason = "stop", f"non-finite loss or gradients in {phases}"
        elif consecutive >= self.patience:
            verdict.action = "rollback" if self.policy == "rollback" else "stop"
            causes = "non-finite values or fp16 overflow" if self.fp16 else "non-finite values"
            verdict.reason = f"{consecutive} consecutive steps skipped for {causes}"
        return verdict

    def reset_consecutive(self) -> None:
        self._consecutive.zero_()
