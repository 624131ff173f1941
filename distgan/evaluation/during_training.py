"""Evaluation inside Trainer.run: metrics to metrics.jsonl and the tracker, curves.png
redrawn, and the best generator by FID kept in `final/best/`."""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING

from distgan.evaluation.curves import draw_curves
from distgan.evaluation.evaluator import Evaluator
from distgan.training.tracking import log_scalars

if TYPE_CHECKING:
    from distgan.training.loop import Trainer

BEST_DIR = "final/best"


class TrainingEvaluation:
    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.evaluator = Evaluator(trainer.accelerator, trainer.cfg)
        self.best_dir = trainer.out / BEST_DIR
        # A resumed run keeps the best it had.
        record = self.best_dir / "metrics.json"
        self.best_fid = json.loads(record.read_text())["fid"] if record.is_file() else math.inf

    def run(self, step: int) -> float:
        """Evaluates the EMA generator at `step` on every rank; returns the seconds it took."""
        start = time.perf_counter()
        t, cfg = self.trainer, self.trainer.cfg
        result = self.evaluator.evaluate(t.ema.generator, t.z_dim, cfg.eval.num_images, seed=cfg.seed)
        row = {"step": step, "kimg": t.state.data_position / 1000, **result}
        if t.log is not None:
            t.log.write(row)
            draw_curves(t.log.path, t.out / "curves.png")
        log_scalars(t.accelerator, row, step)
        if result["fid"] < self.best_fid:  # the same decision on every rank: the result was broadcast
            self.best_fid = result["fid"]
            t.save_final(self.best_dir)
            if t.accelerator.is_main_process:
                (self.best_dir / "metrics.json").write_text(json.dumps(row, indent=1) + "\n")
        return time.perf_counter() - start
