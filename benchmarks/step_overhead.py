"""Time the trainer's step against a minimal hand-written loop of the same models.

    python benchmarks/step_overhead.py [--config mnist_dcgan] [--steps 30] [--repeats 5] [key=value ...]

Both sides get the same networks (same init), batch, precision and real images already on
the device; both do one D step on real+fake in one forward, one G step with D frozen, and
an EMA update. The trainer additionally runs its phase bookkeeping, accumulate contexts,
global-batch noise and device-side metrics. Prints the median seconds per step of each
and the ratio (target: trainer / reference <= 1.05 on CPU).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from distgan.config import load_config  # noqa: E402
from distgan.training.loop import Trainer  # noqa: E402


def reference_step(G, D, opt_g, opt_d, ema_params, real, z_dim, beta):
    """What a careful user writes by hand for one non-saturating GAN step."""
    n = real.shape[0]
    with torch.no_grad():
        fake = G(torch.randn(n, z_dim, device=real.device))
    logits = D(torch.cat([real, fake]))
    loss_d = F.softplus(-logits[:n]).mean() + F.softplus(logits[n:]).mean()
    loss_d.backward()
    opt_d.step()
    opt_d.zero_grad(set_to_none=True)
    D.requires_grad_(False)
    loss_g = F.softplus(-D(G(torch.randn(n, z_dim, device=real.device)))).mean()
    loss_g.backward()
    opt_g.step()
    opt_g.zero_grad(set_to_none=True)
    D.requires_grad_(True)
    with torch.no_grad():
        torch._foreach_lerp_(ema_params, [p.detach() for p in G.parameters()], 1 - beta)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="mnist_dcgan")
    parser.add_argument("--data-path", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--steps", type=int, default=30, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    cfg = load_config(args.config, [f"data.path={args.data_path}", "data.num_workers=0", "train.progress=false",
                                    "output_dir=/tmp/distgan-step-overhead", "train.resume=never",
                                    "loss.name=nonsaturating", "loss.r1_gamma=0", *args.overrides])
    trainer = Trainer(cfg)
    device = trainer.accelerator.device
    G_ref = copy.deepcopy(trainer.accelerator.unwrap_model(trainer.G))
    D_ref = copy.deepcopy(trainer.accelerator.unwrap_model(trainer.D))
    opt_cls = type(trainer.opt_g.optimizer)
    opt_g = opt_cls(G_ref.parameters(), **trainer.opt_g.optimizer.defaults)
    opt_d = opt_cls(D_ref.parameters(), **trainer.opt_d.optimizer.defaults)
    ema_params = [p.detach().clone() for p in G_ref.parameters()]

    batch = cfg.train.batch_size // trainer.accelerator.num_processes
    real = torch.rand(batch, trainer.channels, trainer.resolution, trainer.resolution, device=device) * 2 - 1
    beta = 0.999

    def run_trainer(steps: int) -> None:
        for _ in range(steps):
            trainer.train_step(lambda: real)

    def run_reference(steps: int) -> None:
        with trainer.accelerator.autocast():
            for _ in range(steps):
                reference_step(G_ref, D_ref, opt_g, opt_d, ema_params, real, trainer.z_dim, beta)

    run_trainer(args.warmup)
    run_reference(args.warmup)
    times = {"trainer": [], "reference": []}
    for _ in range(args.repeats):
        for name, fn in (("trainer", run_trainer), ("reference", run_reference)):
            sync(device)
            start = time.perf_counter()
            fn(args.steps)
            sync(device)
            times[name].append((time.perf_counter() - start) / args.steps)

    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "config": args.config, "model": cfg.model.name, "batch": cfg.train.batch_size,
        "precision": trainer.accelerator.mixed_precision, "device": str(device),
        "threads": torch.get_num_threads(),
        "trainer_s_per_step": med["trainer"], "reference_s_per_step": med["reference"],
        "trainer_spread": [min(times["trainer"]), max(times["trainer"])],
        "reference_spread": [min(times["reference"]), max(times["reference"])],
        "ratio": med["trainer"] / med["reference"],
    }
    print(f"{cfg.model.name} batch {cfg.train.batch_size} {trainer.accelerator.mixed_precision} on {device}: "
          f"trainer {med['trainer'] * 1e3:.2f} ms/step, hand-written {med['reference'] * 1e3:.2f} ms/step, "
          f"ratio {result['ratio']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
