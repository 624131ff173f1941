"""Training throughput of distgan's trainer against a minimal hand-written loop of the same models.

    python benchmarks/throughput.py [--model dcgan64 resnet32 dcgan128 preset:mnist_dcgan] [--batch 256]
        [--precision auto|no|bf16] [--channels-last auto|true|false] [--compile] [--steps 20] [--repeats 5]
        [--peak-tflops 989] [--json out.json] [key=value ...]

One iteration = one D step on real+fake (one forward of both) + one G step with D frozen +
an EMA update, Adam, images already on the device. Both sides get the same networks (same
initial weights), batch, precision, memory format, optimizer kind (fused Adam, as the
trainer's make_optimizer) and compile setting; the hand-written side is what a careful user writes with
plain PyTorch (autocast, `torch.compile(model)`). Measured per model, in the same process:

- `trainer`: `Trainer.train_step` on synthetic images already on the device;
- `trainer+data`: the same, reading real batches through the trainer's own data path
  (in memory or DataLoader, as configured; a generated uint8 dataset unless data.* is given);
- `reference`: the hand-written loop.

Timed repeats alternate between the sides (warm-up and compilation excluded), each timed
block is CUDA-synchronized; img/s is the median over repeats, with min and max. FLOPs per
iteration are counted once with torch.utils.flop_counter on an eager fp32 copy (forward and
backward of both phases); MFU = FLOPs x iterations/s / peak. Peak memory is
torch.cuda.max_memory_allocated over a side's timed blocks (both sides' weights stay
resident). Runs on the CPU too (small --batch), which is what the CI smoke test does.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from distgan.config import Config, load_config  # noqa: E402
from distgan.models import build_models  # noqa: E402

# The issue's reference models: global batch 256, hinge loss, Adam.
MODELS = {
    "dcgan64": [
        "model.name=dcgan",
        "data.resolution=64",
        "data.channels=3",
        "model.z_dim=128",
        "model.g_width=64",
        "model.d_width=64",
        "model.g_norm=batch",
        "model.d_norm=batch",
    ],
    "resnet32": [
        "model.name=resnet",
        "data.resolution=32",
        "data.channels=3",
        "model.z_dim=128",
        "model.g_width=256",
        "model.d_width=128",
        "model.g_norm=batch",
        "optim.g.betas=[0.0,0.9]",
        "optim.d.betas=[0.0,0.9]",
    ],
    "dcgan128": [
        "model.name=dcgan",
        "data.resolution=128",
        "data.channels=3",
        "model.z_dim=128",
        "model.g_width=128",
        "model.d_width=128",
        "model.g_norm=batch",
        "model.d_norm=batch",
    ],
}
EMA_BETA = 0.999
REFERENCE_LOSSES = ("hinge", "nonsaturating", "minimax")


# ---- the hand-written loop ---------------------------------------------------------------
def d_loss(name: str, real: Tensor, fake: Tensor) -> Tensor:
    if name == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss(name: str, fake: Tensor) -> Tensor:
    if name == "hinge":
        return -fake.mean()
    return -F.softplus(fake).mean() if name == "minimax" else F.softplus(-fake).mean()


class Reference:
    """What a careful user writes by hand: autocast, fused Adam, channels_last, torch.compile."""

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        cfg: Config,
        device: torch.device,
        dtype: torch.dtype | None,
        channels_last: bool,
        compile_backend: str | None,
    ) -> None:
        if channels_last:
            G.to(memory_format=torch.channels_last)
            D.to(memory_format=torch.channels_last)
        self.G_eager, self.D_eager = G, D
        self.G = torch.compile(G, backend=compile_backend) if compile_backend else G
        self.D = torch.compile(D, backend=compile_backend) if compile_backend else D
        self.opt_g = torch.optim.Adam(G.parameters(), lr=cfg.optim.g.lr, betas=cfg.optim.g.betas, fused=True)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=cfg.optim.d.lr, betas=cfg.optim.d.betas, fused=True)
        self.ema = [p.detach().clone() for p in G.parameters()]
        self.loss, self.z_dim, self.device, self.dtype = cfg.loss.name, cfg.model.z_dim, device, dtype

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)

    def step(self, real: Tensor) -> None:
        n = real.shape[0]
        with self.autocast():
            with torch.no_grad():
                fake = self.G(torch.randn(n, self.z_dim, device=self.device))
            logits = self.D(torch.cat([real, fake])).float()
            loss_d = d_loss(self.loss, logits[:n], logits[n:])
        loss_d.backward()
        self.opt_d.step()
        self.opt_d.zero_grad(set_to_none=True)
        self.D_eager.requires_grad_(False)
        with self.autocast():
            loss_g = g_loss(self.loss, self.D(self.G(torch.randn(n, self.z_dim, device=self.device))).float())
        loss_g.backward()
        self.opt_g.step()
        self.opt_g.zero_grad(set_to_none=True)
        self.D_eager.requires_grad_(True)
        with torch.no_grad():
            torch._foreach_lerp_(self.ema, [p.detach() for p in self.G_eager.parameters()], 1 - EMA_BETA)


def flops_per_iteration(G: nn.Module, D: nn.Module, cfg: Config, real: Tensor) -> int:
    """Forward + backward FLOPs of one iteration, on eager fp32 copies (dtype does not change them)."""
    ref = Reference(copy.deepcopy(G).float(), copy.deepcopy(D).float(), cfg, real.device, None, False, None)
    with FlopCounterMode(display=False) as counter:
        ref.step(real.float())
    return counter.get_total_flops()


# ---- measuring ---------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def write_noise_mnist(root: Path, count: int = 512) -> Path:
    """A generated MNIST-format dataset (uint8 noise) for the trainer's data path when none is given."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name, magic, array in (
        ("train-images-idx3-ubyte.gz", 2051, rng.integers(0, 256, (count, 28, 28))),
        ("train-labels-idx1-ubyte.gz", 2049, rng.integers(0, 10, count)),
    ):
        header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
        (root / name).write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return root


def measure(model: str, args: argparse.Namespace, workdir: Path) -> dict:
    from distgan.compat import reset_accelerate_state
    from distgan.training.loop import Trainer

    reset_accelerate_state()
    preset, overrides = ("mnist_dcgan", MODELS[model]) if model in MODELS else (model.removeprefix("preset:"), [])
    base = ["loss.name=hinge"] if model in MODELS else []
    data = (
        []
        if any(o.startswith("data.path=") for o in args.overrides)
        else ["data.source=mnist", f"data.path={write_noise_mnist(workdir / 'noise-mnist')}"]
    )
    cfg = load_config(
        preset,
        [
            *base,
            *overrides,
            *data,
            f"train.batch_size={args.batch}",
            f"train.mixed_precision={args.precision}",
            f"train.channels_last={args.channels_last}",
            f"train.compile={args.compile}",
            f"train.compile_backend={args.compile_backend}",
            "train.n_critic=1",
            "train.grad_accum=1",
            "loss.r1_gamma=0",
            "train.progress=false",
            f"output_dir={workdir / model.replace(':', '-')}",
            "train.resume=never",
            f"data.cache_dir={workdir / 'cache'}",
            *args.overrides,
        ],
    )
    if cfg.loss.name not in REFERENCE_LOSSES:
        raise SystemExit(
            f"the hand-written loop implements {', '.join(REFERENCE_LOSSES)}, not {cfg.loss.name}: add loss.name=hinge"
        )
    trainer = Trainer(cfg)
    acc = trainer.accelerator
    device = acc.device
    precision = acc.mixed_precision
    if precision == "fp16":
        raise SystemExit("the hand-written loop has no loss scaling: use --precision bf16 or no")
    dtype = torch.bfloat16 if precision == "bf16" else None
    torch.manual_seed(cfg.seed)  # the trainer's initial weights
    nets = build_models(cfg.model, channels=trainer.channels, resolution=trainer.resolution)
    G, D = nets.generator.to(device), nets.discriminator.to(device)
    batch = cfg.train.batch_size // acc.num_processes
    shape = (batch, trainer.channels, trainer.resolution, trainer.resolution)
    real = torch.rand(shape, device=device) * 2 - 1
    flops = flops_per_iteration(G, D, cfg, real)
    reference = Reference(
        G, D, cfg, device, dtype, trainer.channels_last, args.compile_backend if cfg.train.compile else None
    )
    if trainer.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    synthetic = itertools.repeat((real, torch.zeros(batch, dtype=torch.int64, device=device)))

    sides: dict[str, Callable[[], None]] = {
        "trainer": lambda: trainer.train_step(synthetic),
        "trainer+data": lambda: trainer.train_step(),
        "reference": lambda: reference.step(real),
    }
    for run in sides.values():  # warm-up: compilation, cuDNN autotuning, allocator
        for _ in range(args.warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in sides}
    peak: dict[str, int] = dict.fromkeys(sides, 0)
    for _ in range(args.repeats):
        for name, run in sides.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                run()
            sync(device)
            times[name].append((time.perf_counter() - start) / args.steps)
            if device.type == "cuda":
                peak[name] = max(peak[name], torch.cuda.max_memory_allocated(device))

    rows = {}
    for name, seconds in times.items():
        per_s = [cfg.train.batch_size / s for s in seconds]
        it_per_s = 1 / statistics.median(seconds)
        rows[name] = {
            "img_per_s": statistics.median(per_s),
            "img_per_s_min": min(per_s),
            "img_per_s_max": max(per_s),
            "ms_per_iter": statistics.median(seconds) * 1e3,
            "peak_mem_gib": peak[name] / 2**30 if device.type == "cuda" else None,
            "tflops_per_s": flops * it_per_s / 1e12,
            "mfu": flops * it_per_s / (args.peak_tflops * 1e12) if args.peak_tflops else None,
        }
    for row in rows.values():
        row["ratio_to_reference"] = row["img_per_s"] / rows["reference"]["img_per_s"]
    return {
        "model": model,
        "batch": cfg.train.batch_size,
        "precision": precision,
        "channels_last": trainer.channels_last,
        "compile": cfg.train.compile,
        "in_memory": type(trainer.loader).__name__ == "InMemoryBatches",
        "tflop_per_iter": flops / 1e12,
        "processes": acc.num_processes,
        "sides": rows,
    }


def environment(device: torch.device) -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()} CPU"
    )
    return {
        "device": name,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "commit": commit,
        "command": " ".join(["python", *sys.argv]),
    }


def print_table(results: list[dict], env: dict) -> None:
    print(f"\n{env['device']}, torch {env['torch']}, {env['threads']} threads, commit {env['commit']}")
    head = (
        f"{'model':<20} {'batch':>5} {'prec':>4} {'NHWC':>4} {'comp':>4} {'side':<13} {'img/s':>9} "
        f"{'min-max':>15} {'ms/it':>8} {'vs ref':>6} {'TFLOP/it':>9} {'MFU':>6} {'peak GiB':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        for side, s in r["sides"].items():
            mfu = f"{100 * s['mfu']:.1f}%" if s["mfu"] is not None else "-"
            mem = f"{s['peak_mem_gib']:.2f}" if s["peak_mem_gib"] is not None else "-"
            print(
                f"{r['model']:<20} {r['batch']:>5} {r['precision']:>4} {'y' if r['channels_last'] else 'n':>4} "
                f"{'y' if r['compile'] else 'n':>4} {side:<13} {s['img_per_s']:>9.1f} "
                f"{s['img_per_s_min']:>7.1f}-{s['img_per_s_max']:<7.1f} {s['ms_per_iter']:>8.2f} "
                f"{s['ratio_to_reference']:>6.3f} {r['tflop_per_iter']:>9.4f} {mfu:>6} {mem:>8}"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        nargs="+",
        default=list(MODELS),
        help=f"{', '.join(MODELS)} or preset:NAME (default: the three reference models)",
    )
    parser.add_argument("--batch", type=int, default=256, help="global batch")
    parser.add_argument("--precision", default="auto", choices=["auto", "no", "bf16"])
    parser.add_argument("--channels-last", default="auto", choices=["auto", "true", "false"])
    parser.add_argument("--compile", action="store_true", help="train.compile=true on both sides")
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--steps", type=int, default=20, help="iterations per timed block")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="peak of the device for MFU (default: 989, the H100's dense bf16, on CUDA; none on CPU)",
    )
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides for every model")
    args = parser.parse_args(argv)
    if args.peak_tflops is None and torch.cuda.is_available():
        args.peak_tflops = 989.0
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="distgan-throughput-") as tmp:
        results = [measure(model, args, Path(tmp)) for model in args.model]
    env = environment(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    print_table(results, env)
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "args": vars(args), "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
