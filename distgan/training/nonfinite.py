"""Steps whose loss or gradients are not finite: skipped on every rank alike, counted on the device.

The decision to skip is taken on the device, without a host sync: the fused Adam kernel
takes a `found_inf` flag and leaves parameters and moments alone when it is set (the same
mechanism GradScaler uses). Gradients are read after DDP's all-reduce, and NaN/Inf survive
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

    def __init__(self, policy: Policy, patience: int, device: torch.device) -> None:
        self.policy = policy
        self.patience = patience
        self._one = torch.ones((), device=device)
        self._nonfinite = torch.zeros(2, device=device)
        self._overflows = torch.zeros(2, device=device)
        self._consecutive = torch.zeros((), device=device)
        self._step_skipped = torch.zeros((), device=device)
        self._loss_bad = torch.zeros((), device=device)

    def note_loss(self, loss: Tensor) -> None:
        """Every micro-batch: remembers whether the loss itself was finite."""
        self._loss_bad = torch.maximum(self._loss_bad, (~torch.isfinite(loss.detach())).float())

    def before_step(self, optimizer: torch.optim.Optimizer, phase: str, scaled: bool) -> None:
        """On the micro-batch that steps, after backward: flags the optimizer to skip if needed.

        `optimizer` is the torch optimizer (inside accelerate's wrapper). With a loss scaler
        (`scaled`), the scaler does the skipping and lowers its scale; a skip with a finite
        loss is then an overflow, routine in fp16, not an error.
        """
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        found = torch.zeros((), device=self._one.device)
        if grads:
            # Checks (and multiplies by one) in one fused pass over all gradients.
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, self._one)
        skip = torch.maximum(found, self._loss_bad)
        index = self.PHASES.index(phase)
        if scaled:
            self._overflows[index] += found * (1 - self._loss_bad)
            self._nonfinite[index] += self._loss_bad
        else:
            self._nonfinite[index] += skip
            optimizer.found_inf = skip  # read by the fused Adam kernel; removed in after_step
            optimizer.grad_scale = None
        self._step_skipped = torch.maximum(self._step_skipped, skip)
        self._loss_bad = torch.zeros_like(self._loss_bad)

    def after_engine_step(self, phase: str, skipped: bool, scaled: bool) -> None:
        """Under DeepSpeed, which skips a step with a non-finite gradient norm itself (on every rank)."""
        skip = torch.full((), float(skipped), device=self._one.device)
        index = self.PHASES.index(phase)
        if scaled:  # fp16: each engine's loss scaler skipped it; finite loss means a routine overflow
            self._overflows[index] += skip * (1 - self._loss_bad)
            self._nonfinite[index] += self._loss_bad
        else:
            self._nonfinite[index] += torch.maximum(skip, self._loss_bad)
        self._step_skipped = torch.maximum(self._step_skipped, torch.maximum(skip, self._loss_bad))
        self._loss_bad = torch.zeros_like(self._loss_bad)

    @staticmethod
    def after_step(optimizer: torch.optim.Optimizer) -> None:
        for name in ("found_inf", "grad_scale"):
            if hasattr(optimizer, name):
                delattr(optimizer, name)

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
            verdict.reason = f"{consecutive} consecutive steps skipped for non-finite values or fp16 overflow"
        return verdict

    def reset_consecutive(self) -> None:
        self._consecutive.zero_()
