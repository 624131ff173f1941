"""Experiment trackers through accelerate: W&B (never fatal), TensorBoard, or none.

`metrics.jsonl` is written by the loop whatever the tracker; this module only forwards.
"""

from __future__ import annotations

import importlib
import os
import uuid
import warnings
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from distgan.config import Config
from distgan.errors import DistganError
from distgan.training.state import TrainState


def check_tracker(cfg: Config) -> None:
    """Refuses a tracker whose package is not installed, before any work: accelerate would only
    warn and the run would log to no tracker at all."""
    if cfg.tracker == "none":
        return
    try:
        importlib.import_module(cfg.tracker)
    except ImportError as err:
        raise DistganError(f"tracker={cfg.tracker} needs the {cfg.tracker} package: pip install {cfg.tracker}") from err


def start_tracking(accelerator: Accelerator, cfg: Config, state: TrainState) -> None:
    """Starts the configured tracker on the main process; W&B falls back to offline."""
    if cfg.tracker == "none" or not accelerator.is_main_process:
        return
    config = cfg.model_dump(mode="json")
    if cfg.tracker == "tensorboard":
        accelerator.init_trackers(cfg.tracking.project, config=_flat(config))
        return
    import wandb

    # The id lives in the checkpoint, so a resumed run continues the same W&B run.
    state.wandb_run_id = state.wandb_run_id or uuid.uuid4().hex[:8]
    init_kwargs = {
        "id": state.wandb_run_id,
        "resume": "allow",
        "dir": cfg.output_dir,
        "name": cfg.tracking.run_name,
    }
    if "WANDB_INIT_TIMEOUT" not in os.environ:
        init_kwargs["settings"] = wandb.Settings(init_timeout=60)
    project = os.environ.get("WANDB_PROJECT", cfg.tracking.project)
    try:
        accelerator.init_trackers(project, config=config, init_kwargs={"wandb": init_kwargs})
    except Exception as err:  # any failure to reach W&B must not cost the run
        warnings.warn(
            f"W&B could not start ({type(err).__name__}: {err}); logging offline to "
            f"{cfg.output_dir}/wandb, upload later with `wandb sync`",
            stacklevel=1,
        )
        # The failed run still holds its id in wandb's service: tear it down, then start the
        # same run id offline (the environment is no longer read once a session exists).
        wandb.teardown()
        os.environ["WANDB_MODE"] = "offline"
        accelerator.trackers = []
        init_kwargs["mode"] = "offline"
        accelerator.init_trackers(project, config=config, init_kwargs={"wandb": init_kwargs})


def log_scalars(accelerator: Accelerator, row: dict[str, Any], step: int) -> None:
    if accelerator.trackers:
        # None is "no value" (kid_std of one KID subset): trackers take numbers and strings only.
        accelerator.log({k: v for k, v in row.items() if k != "step" and v is not None}, step=step)


def log_sample_grid(accelerator: Accelerator, path: Path, step: int) -> None:
    if not accelerator.trackers or not accelerator.is_main_process:
        return
    for tracker in accelerator.trackers:
        if tracker.name == "wandb":
            import wandb

            tracker.tracker.log({"samples": wandb.Image(str(path))}, step=step)
        elif tracker.name == "tensorboard":
            import numpy as np
            from PIL import Image

            pixels = np.asarray(Image.open(path).convert("RGB"))
            tracker.writer.add_image("samples", pixels, step, dataformats="HWC")


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    # TensorBoard's hparams accept only scalars and strings.
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        else:
            out[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out
