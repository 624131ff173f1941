"""Running the real trainer in-process or under `accelerate launch` from tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from distgan.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]

# Small and fast: 16x16 DCGAN without batch statistics, so world size cannot matter.
TINY = [
    "data.resolution=16",
    "data.num_workers=0",
    "model.name=dcgan",
    "model.z_dim=8",
    "model.g_width=8",
    "model.d_width=8",
    "model.g_norm=none",
    "model.d_norm=none",
    "train.batch_size=8",
    "train.log_every=1",
    "train.sample_every=0",
    "train.checkpoint_every=0",
    "train.progress=false",
    "ema.kimg=0.01",
]


# R3GAN's recipe on the test networks: its network, RpGAN, R1 and R2 on every D step.
R3GAN_RECIPE = [
    "model.name=r3gan",
    "loss.name=rpgan",
    "loss.r1_gamma=0.1",
    "loss.r1_interval=1",
    "loss.r2_gamma=0.1",
    "loss.r2_interval=1",
]


def run_module(module: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """`python -m distgan.<module> ARGS` in the repo, one thread, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", f"distgan.{module}", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=timeout,
    )


def train_cli(out: Path, data: Path, *overrides: str) -> subprocess.CompletedProcess:
    """`python -m distgan.train` on the tiny test config."""
    return run_module("train", *TINY, f"output_dir={out}", f"data.path={data}", *overrides)


def tiny_config(out: Path, data: Path, *overrides: str) -> Config:
    return load_config("mnist_dcgan", [*TINY, f"output_dir={out}", f"data.path={data}", *overrides])


def reset_accelerate() -> None:
    """Accelerator state is process-global; a second in-process run must start from scratch."""
    from distgan.compat import reset_accelerate_state

    reset_accelerate_state()


def train_in_process(out: Path, data: Path, *overrides: str) -> Path:
    from distgan.training.loop import Trainer

    reset_accelerate()
    return Trainer(tiny_config(out, data, *overrides)).run()


def accelerate_launch(processes: int, config_file: str | None = None, precision: str = "no") -> list[str]:
    """`python -m accelerate.commands.launch` with the flags every test launch passes, up to the script.

    `--multi_gpu` is accelerate's torchrun launcher; without a GPU distgan joins the
    processes with gloo. (`--cpu` starts ONE process whatever --num_processes says, and
    `--multi_gpu` refuses fewer than two.) `config_file` names a file of accelerate_configs/
    to launch with instead (e.g. deepspeed_zero2.yaml).
    """
    if config_file is not None:
        mode = ["--config_file", str(REPO / "accelerate_configs" / config_file)]
    else:
        mode = ["--multi_gpu"] if processes > 1 else ["--cpu"]
    return [
        *(sys.executable, "-m", "accelerate.commands.launch", *mode, "--num_processes", str(processes)),
        *("--num_machines", "1", "--mixed_precision", precision, "--dynamo_backend", "no"),
        *("--main_process_port", str(_free_port())),
    ]


def launch_command(
    out: Path, data: Path, processes: int, *overrides: str, config_file: str | None = None, precision: str = "no"
) -> list[str]:
    """`accelerate launch ... distgan/train.py ...`, as a user runs it (see `accelerate_launch`)."""
    return [
        *accelerate_launch(processes, config_file, precision),
        *(str(REPO / "distgan" / "train.py"), *TINY, f"output_dir={out}", f"data.path={data}", *overrides),
    ]


def launch(
    out: Path,
    data: Path,
    processes: int,
    *overrides: str,
    timeout: int = 300,
    env: dict[str, str] | None = None,
    config_file: str | None = None,
    precision: str = "no",
) -> subprocess.CompletedProcess:
    """Runs `launch_command` to the end."""
    cmd = launch_command(out, data, processes, *overrides, config_file=config_file, precision=precision)
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def training_pid(rank: int, cmdline_has: str, env: dict[str, str] | None = None) -> int:
    """The training process of one global rank (torchrun sets RANK and LOCAL_RANK for it alone),
    whose command line contains `cmdline_has` and whose environment holds `env`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = dict(
                item.split("=", 1)
                for item in (proc / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in item
            )
        except OSError:
            continue
        if (
            environ.get("RANK") == str(rank)
            and "LOCAL_RANK" in environ
            and cmdline_has.encode() in cmdline
            and all(environ.get(k) == v for k, v in (env or {}).items())
        ):
            return int(proc.name)
    raise LookupError(f"no rank {rank} training process with {cmdline_has!r} in its command line")


def outcome(result: subprocess.CompletedProcess) -> str:
    """The end of a launch's output, for assertion messages, after every rank's error line: the
    tail alone can hold one rank's traceback and the launcher's while cutting another rank's."""
    errors = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("distgan: error:") or re.match(r"^(\[rank\d+\]: )?[\w.]*(Error|Exception)\b.*:", line)
    ]
    return (
        f"exit {result.returncode}\n--- every error line ---\n" + "\n".join(errors[-20:]) + "\n"
        f"--- stdout ---\n{result.stdout[-1500:]}\n--- stderr ---\n{result.stderr[-2500:]}"
    )


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    weights = {}
    for name in ("generator", "generator_ema", "discriminator"):
        for key, value in load_file(str(out / "final" / f"{name}.safetensors")).items():
            weights[f"{name}/{key}"] = value
    return weights


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
