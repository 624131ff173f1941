"""The run's periodic work, one hook per job, called in order after every training step.

A hook says when it is due and does its job; it returns `RESTART` when the step's state was
replaced (a rollback: the remaining hooks skip this step) or `STOP` to end the run.
An interval of 0 means "only at the last step" for sample grids and checkpoints, and "off" for
evaluation and the consistency check, as the config reference says.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import torch
from accelerate import Accelerator
from torch import Tensor, nn
from tqdm.auto import tqdm

from distgan.config import TrainConfig
from distgan.errors import CheckpointError, DistganError, NonFiniteError
from distgan.evaluation.curves import draw_curves
from distgan.training.checkpoint import all_ranks_ok, checkpoint_step, list_checkpoints
from distgan.training.consistency import check_ranks_agree
from distgan.training.metrics import DeviceMeter, JsonlLog
from distgan.training.nonfinite import NonFiniteGuard, Verdict
from distgan.training.preemption import PreemptionWatch
from distgan.training.state import TrainState
from distgan.training.tracking import log_sample_grid, log_scalars
from distgan.utils.images import save_image_grid

Outcome = Literal["restart", "stop"] | None
RESTART: Outcome = "restart"
STOP: Outcome = "stop"


def at_interval(interval: int, step: int, last: bool) -> bool:
    """Every `interval` steps and at the last step; 0: at the last step only."""
    return last or (interval > 0 and step % interval == 0)


def when_enabled(interval: int, step: int, last: bool) -> bool:
    """Every `interval` steps and at the last step; 0: never."""
    return interval > 0 and (last or step % interval == 0)


class Hook:
    # Writes files on the main process alone (metrics, grids, curves, evaluations): an OSError
    # there is noted instead of raised, so the other ranks are not left waiting in a collective,
    # and `StopOnWriteFailure` stops every rank together.
    writes_files = False

    def due(self, step: int, last: bool) -> bool:
        raise NotImplementedError

    def __call__(self, step: int, last: bool) -> Outcome:
        raise NotImplementedError


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Names `path` in an OSError that does not (image and plot writers often do not)."""
    try:
        yield
    except OSError as err:
        if err.filename:
            raise
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err


class WriteFailures:
    """The first failed write of the run, as one line (main process)."""

    def __init__(self) -> None:
        self.first: str | None = None

    def note(self, hook: Hook, err: OSError) -> None:
        if self.first is None:
            where = f" {err.filename}" if err.filename else ""
            self.first = f"could not write{where} ({err.strerror or type(err).__name__}, in {type(hook).__name__})"


def run_due(hooks: list[Hook], step: int, last: bool, failures: WriteFailures | None = None) -> Outcome:
    """Runs the due hooks in order until one restarts the step or stops the run."""
    for hook in hooks:
        if not hook.due(step, last):
            continue
        try:
            outcome = hook(step, last)
        except OSError as err:
            if failures is None or not hook.writes_files:
                raise
            failures.note(hook, err)
            continue
        if outcome is not None:
            return outcome
    return None


class Stopwatch:
    """Training throughput: wall time and images since the last reading, minus evaluation time."""

    def __init__(self, images: int) -> None:
        self.restart(images)

    def restart(self, images: int) -> None:
        """From now and `images` (after a rollback the image count goes back)."""
        self.start, self.images = time.perf_counter(), images

    def exclude(self, seconds: float) -> None:
        self.start += seconds

    def images_per_second(self, images: int) -> float:
        now = time.perf_counter()
        rate = (images - self.images) / max(now - self.start, 1e-9)
        self.start, self.images = now, images
        return rate


class Progress(Hook):
    """The progress bar, on the main process (`train.progress`)."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=not enabled)

    def due(self, step: int, last: bool) -> bool:
        return True

    def __call__(self, step: int, last: bool) -> Outcome:
        self.bar.update(step - self.bar.n)
        return None

    def close(self) -> None:
        self.bar.close()


class NonFiniteCheck(Hook):
    """Judges the skipped steps before every log row and every checkpoint (a checkpoint never
    holds a step not yet judged); rolls back or stops as `train.on_nonfinite` says, identically on
    every rank (the verdict is reduced over all of them)."""

    writes_files = True  # the rollback row

    def __init__(
        self,
        guard: NonFiniteGuard,
        accelerator: Accelerator,
        train: TrainConfig,
        checkpoint_root: Path,
        rollback: Callable[[Path], int],
        log: JsonlLog | None,
    ) -> None:
        self.guard, self.accelerator, self.train, self.checkpoint_root = guard, accelerator, train, checkpoint_root
        self.rollback, self.log = rollback, log
        self.verdict: Verdict | None = None

    def due(self, step: int, last: bool) -> bool:
        return at_interval(self.train.log_every, step, last) or at_interval(self.train.checkpoint_every, step, last)

    def __call__(self, step: int, last: bool) -> Outcome:
        self.verdict = verdict = self.guard.verdict(self.accelerator)
        if verdict.action == "continue":
            return None
        newest = list_checkpoints(self.checkpoint_root)
        if verdict.action == "rollback" and newest:
            rollbacks = self.rollback(newest[-1])
            self.accelerator.print(
                f"distgan: {verdict.reason} at step {step}; rolled back to {newest[-1].name} "
                f"(rollback {rollbacks}, fresh noise stream)"
            )
            if self.log is not None:
                resumed = checkpoint_step(newest[-1])
                self.log.rewind(resumed)
                self.log.write(
                    {
                        "step": resumed,
                        "event": "rollback",
                        "from_step": step,
                        "reason": verdict.reason,
                        "rollbacks": rollbacks,
                    }
                )
            return RESTART
        self.stop(verdict, step)

    def stop(self, verdict: Verdict, step: int) -> None:
        newest = list_checkpoints(self.checkpoint_root)
        kept = f"newest checkpoint kept: {newest[-1]}" if newest else "no checkpoint to roll back to yet"
        raise NonFiniteError(
            f"{verdict.reason} at step {step} (train.on_nonfinite={self.train.on_nonfinite}); "
            f"{kept}; lower optim.g.lr/optim.d.lr, add loss.r1_gamma, or use "
            f"train.on_nonfinite=rollback with train.checkpoint_every"
        )


class LogMetrics(Hook):
    """A metrics.jsonl row, the tracker's scalars and the progress bar's numbers."""

    writes_files = True

    def __init__(
        self,
        every: int,
        meter: DeviceMeter,
        accelerator: Accelerator,
        state: TrainState,
        log: JsonlLog | None,
        progress: Progress,
        nonfinite: NonFiniteCheck,
        stopwatch: Stopwatch,
        host_values: Callable[[], dict[str, float]] = dict,
    ) -> None:
        self.every, self.meter, self.accelerator, self.state = every, meter, accelerator, state
        self.log, self.progress, self.nonfinite, self.stopwatch = log, progress, nonfinite, stopwatch
        self.host_values = host_values  # values the host already holds (scheduled ones): no sync

    def due(self, step: int, last: bool) -> bool:
        return at_interval(self.every, step, last)

    def __call__(self, step: int, last: bool) -> Outcome:
        acc, verdict = self.accelerator, self.nonfinite.verdict
        row = self.meter.reduce(acc)  # the only host sync of the interval
        row = {
            "step": step,
            "kimg": self.state.data_position / 1000,
            **row,
            **{f"skipped_{p}": n for p, n in verdict.nonfinite.items()},
            "img_per_s": self.stopwatch.images_per_second(self.state.data_position),
            **self.host_values(),
        }
        if acc.mixed_precision == "fp16":
            row.update({f"overflow_{p}": n for p, n in verdict.overflows.items()})
        if acc.device.type == "cuda":
            row["gpu_mem_gib"] = torch.cuda.max_memory_allocated(acc.device) / 2**30
        if self.log is not None:
            self.log.write(row)
            self.progress.bar.set_postfix(
                loss_d=f"{row.get('loss_d', float('nan')):.3f}",
                loss_g=f"{row.get('loss_g', float('nan')):.3f}",
                img_s=f"{row['img_per_s']:.0f}",
                refresh=False,
            )
        log_scalars(acc, row, step)
        return None


class ConsistencyCheck(Hook):
    """Debug: every rank holds the same weights (`train.consistency_check_every`, 0: off)."""

    def __init__(self, every: int, accelerator: Accelerator, modules: dict[str, nn.Module]) -> None:
        self.every, self.accelerator, self.modules = every, accelerator, modules

    def due(self, step: int, last: bool) -> bool:
        return self.every > 0 and step % self.every == 0

    def __call__(self, step: int, last: bool) -> Outcome:
        check_ranks_agree(self.accelerator, self.modules, step)
        return None


class Checkpointing(Hook):
    """A checkpoint every `train.checkpoint_every` steps (0: at the last step only)."""

    def __init__(self, every: int, root: Path, save: Callable[[int], Path]) -> None:
        self.every, self.root, self.save = every, root, save
        self.saved_step = -1

    def due(self, step: int, last: bool) -> bool:
        return at_interval(self.every, step, last)

    def __call__(self, step: int, last: bool) -> Outcome:
        self.save(step)
        self.saved_step = step
        return None


class SampleGrid(Hook):
    """A fixed-noise grid from the EMA generator (`train.sample_every`, 0: at the last step only),
    drawn on the main process only: the EMA copy is a plain module, so no DDP collective runs,
    which on one rank alone would hang."""

    writes_files = True

    def __init__(
        self,
        every: int,
        accelerator: Accelerator,
        generator_ema: nn.Module,
        z: Tensor,
        out: Path,
        log: JsonlLog | None,
        labels: Tensor | None = None,
    ) -> None:
        self.every, self.accelerator, self.generator, self.z, self.out, self.log = (
            *(every, accelerator, generator_ema),
            *(z, out, log),
        )
        self.labels = labels  # a conditional grid: the class of each image, one row per class

    def due(self, step: int, last: bool) -> bool:
        return at_interval(self.every, step, last)

    def __call__(self, step: int, last: bool) -> Outcome:
        if self.accelerator.is_main_process:
            with torch.no_grad():
                images = self.generator(self.z) if self.labels is None else self.generator(self.z, self.labels)
            path = self.out / "samples" / f"step_{step}.png"
            columns = None if self.labels is None else int((self.labels == self.labels[0]).sum())
            with writing(path):
                save_image_grid(images, path, columns)
            log_sample_grid(self.accelerator, path, step)
            if self.log is not None and self.log.path.is_file():
                with writing(self.out / "curves.png"):
                    draw_curves(self.log.path, self.out / "curves.png")
        return None


class Preemption(Hook):
    """SIGTERM, SIGINT, SIGHUP or the requeue signal on any rank: a checkpoint of this step, a requeue
    (on the requeue signal), the end."""

    def __init__(
        self, watch: PreemptionWatch, accelerator: Accelerator, nonfinite: NonFiniteCheck, checkpointing: Checkpointing
    ) -> None:
        self.watch, self.accelerator = watch, accelerator
        self.nonfinite, self.checkpointing = nonfinite, checkpointing

    def due(self, step: int, last: bool) -> bool:
        return not last

    def __call__(self, step: int, last: bool) -> Outcome:
        received = self.watch.stop_requested()
        if received is None:
            return None
        acc = self.accelerator
        if self.checkpointing.saved_step != step:
            verdict = self.nonfinite.guard.verdict(acc)  # judged before it is saved, as always
            if verdict.action == "stop":
                self.nonfinite.stop(verdict, step)
            # A due rollback needs no checkpoint: the requeued job resumes from its target.
            if verdict.action == "continue":
                self.checkpointing(step, last)
        for tracker in acc.trackers:
            tracker.finish()
        if "wandb" in sys.modules:  # stop its service now: the requeue's SIGTERM would kill it mid-teardown
            sys.modules["wandb"].teardown()
        acc.wait_for_everyone()  # every rank is past the checkpoint before the requeue kills the steps
        if acc.is_main_process:
            name = signal.Signals(received).name
            status = self.watch.requeue() if received == self.watch.requeue_signal else f"not requeued ({name})"
            if not status.startswith("requeued") and "resume" not in status:
                status += "; run the same command to resume"
            print(
                f"distgan: stopped at step {step} on {name}: checkpoint "
                f"{self.checkpointing.root / f'step_{step}'} written; {status}",
                flush=True,
            )
        return STOP


class StopOnWriteFailure(Hook):
    """After the steps where a file-writing hook ran: if the main process could not write, every
    rank checkpoints this step (when it can) and stops with one line. Its one collective runs
    only on those steps, which already hold a host sync (the log row)."""

    def __init__(
        self,
        failures: WriteFailures,
        writers: list[Hook],
        accelerator: Accelerator,
        nonfinite: NonFiniteCheck,
        checkpointing: Checkpointing,
    ) -> None:
        self.failures, self.writers, self.accelerator = failures, writers, accelerator
        self.nonfinite, self.checkpointing = nonfinite, checkpointing

    def due(self, step: int, last: bool) -> bool:
        return any(writer.due(step, last) for writer in self.writers)

    def __call__(self, step: int, last: bool) -> Outcome:
        if all_ranks_ok(self.accelerator, self.failures.first is None):
            return None
        if self.checkpointing.saved_step == step:
            saved = f"checkpoint step_{step} holds this step"
        elif self.nonfinite.guard.verdict(self.accelerator).action != "continue":
            saved = "this step is not checkpointed (non-finite values pending)"
        else:
            try:
                self.checkpointing(step, last)
                saved = f"checkpoint step_{step} written"
            except CheckpointError:
                newest = list_checkpoints(self.checkpointing.root)
                kept = newest[-1].name if newest else "none"
                saved = f"no checkpoint of this step could be written either (newest: {kept})"
        raise DistganError(
            f"stopped at step {step}: {self.failures.first or 'the main process could not write its outputs'}; "
            f"{saved}; free space or fix output_dir, then run the same command to resume"
        )
