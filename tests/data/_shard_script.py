"""Run by test_loader under `accelerate launch` (or plain python for 1 process).

Usage: _shard_script.py MNIST_DIR OUT_DIR NUM_PROCESSES. Prepares the loader exactly as the trainer does
(Accelerator with DataLoaderConfiguration(split_batches=True)) for a few (num_workers, start)
settings and writes what this rank received to OUT_DIR/rank{R}.json. Sample i of the test
data has label i, so the labels name the indices each rank got.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration

from distgan.config import DataConfig
from distgan.data import build_dataset, build_loader

GLOBAL_BATCH, SEED, STEPS = 8, 11, 12
SETTINGS = [(0, 0), (2, 0), (2, 13)]  # (num_workers, start)


def main() -> None:
    data_dir, out_dir, expected = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    acc = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(split_batches=True, non_blocking=True))
    # `accelerate launch --cpu --num_processes 2` silently starts ONE process (accelerate 1.15):
    # fail loudly instead of comparing a world of one with itself.
    assert acc.num_processes == expected, f"launched {acc.num_processes} processes, expected {expected}"
    dataset = build_dataset(DataConfig(source="mnist", path=str(data_dir), resolution=28))
    rng_before = torch.get_rng_state()
    runs = []
    for workers, start in SETTINGS:
        loader = acc.prepare(build_loader(dataset, GLOBAL_BATCH, SEED, start, workers))
        try:
            len(loader)
            length = "has a length"
        except TypeError:
            length = "TypeError"
        # What this rank's DataLoader hands to dataset.__getitems__: only its slice of each batch.
        index_batch = next(iter(loader.batch_sampler))
        labels, pixels = [], []
        batches = iter(loader)
        for _ in range(STEPS):
            batch = next(batches)
            assert batch["image"].dtype == torch.uint8 and batch["image"].device.type == acc.device.type
            labels.append(batch["label"].tolist())
            pixels.append(batch["image"][:, 0, 0, 0].tolist())  # pixel (0, 0) of sample i is i
        runs.append(
            {
                "workers": workers,
                "start": start,
                "labels": labels,
                "pixels": pixels,
                "shape": list(batch["image"].shape),
                "len": length,
                "index_batch": list(index_batch),
                "batch_sampler": type(loader.batch_sampler).__name__,
            }
        )
        del batches, loader
    out = {
        "rank": acc.process_index,
        "num_processes": acc.num_processes,
        "runs": runs,
        "global_rng_untouched": bool(torch.equal(rng_before, torch.get_rng_state())),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"rank{acc.process_index}.json").write_text(json.dumps(out))
    acc.wait_for_everyone()
    acc.end_training()


if __name__ == "__main__":
    main()
