"""Evaluation inside `Trainer.run`, as a hook: metrics to metrics.jsonl and the tracker,
curves.png redrawn, and the best generator by FID kept in `final/best/`."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from accelerate import Accelerator
from torch import nn

from distgan.config import Config
from distgan.evaluation.curves import draw_curves
from distgan.evaluation.evaluator import Evaluator
from distgan.training.hooks import Hook, Outcome, Stopwatch, when_enabled, writing
from distgan.training.metrics import JsonlLog
from distgan.training.state import TrainState
from distgan.training.tracking import log_scalars

BEST_DIR = "final/best"


class TrainingEvaluation(Hook):
    """FID/KID (and IS) of the EMA generator every `eval.every` steps and at the last one."""

    writes_files = True  # the row, curves.png and final/best on the main process

    def __init__(
        self,
        accelerator: Accelerator,
        cfg: Config,
        out: Path,
        generator_ema: nn.Module,
        z_dim: int,
        state: TrainState,
        log: JsonlLog | None,
        save_weights: Callable[[Path], None],
        stopwatch: Stopwatch,
        num_classes: int = 0,
    ) -> None:
        # Builds the extractor now: a wrong eval.inception fails before training.
        self.evaluator = Evaluator(accelerator, cfg)
        self.accelerator, self.cfg, self.out, self.generator, self.z_dim = accelerator, cfg, out, generator_ema, z_dim
        self.state, self.log, self.save_weights, self.stopwatch = state, log, save_weights, stopwatch
        self.num_classes = num_classes
        self.best_dir = out / BEST_DIR
        # A resumed run keeps the best it had.
        record = self.best_dir / "metrics.json"
        self.best_fid = json.loads(record.read_text())["fid"] if record.is_file() else math.inf

    def due(self, step: int, last: bool) -> bool:
        return when_enabled(self.cfg.eval.every, step, last)

    def __call__(self, step: int, last: bool) -> Outcome:
        """Evaluates on every rank; its time is not counted as training time."""
        start = time.perf_counter()
        result = self.evaluator.evaluate(
            self.generator, self.z_dim, self.cfg.eval.num_images, seed=self.cfg.seed, num_classes=self.num_classes
        )
        row = {"step": step, "kimg": self.state.data_position / 1000, **result}
        if self.log is not None:
            self.log.write(row)
            with writing(self.out / "curves.png"):
                draw_curves(self.log.path, self.out / "curves.png")
        log_scalars(self.accelerator, row, step)
        if result["fid"] < self.best_fid:  # the same decision on every rank: the result was broadcast
            self.best_fid = result["fid"]
            self.save_weights(self.best_dir)
            if self.accelerator.is_main_process:
                (self.best_dir / "metrics.json").write_text(json.dumps(row, indent=1) + "\n")
        self.stopwatch.exclude(time.perf_counter() - start)
        return None
