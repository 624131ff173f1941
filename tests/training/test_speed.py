"""The trainer's speed options for real on the CPU: compile, channels_last, the in-memory data
path and the precision default. What they must not change: results, resume, the stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch._dynamo.backends.registry import lookup_backend, register_backend

from distgan.training.speed import resolve_mixed_precision, wants_channels_last
from tests.training.helpers import final_weights, max_abs_diff, reset_accelerate, tiny_config, train_in_process

COMPILED_GRAPHS: list[int] = []


@register_backend(name="distgan_counting")
def _counting_backend(graph, example_inputs):
    """aot_eager (the real AOT autograd path, no C++ compiler), counting each compilation."""
    COMPILED_GRAPHS.append(len(graph.graph.nodes))
    return lookup_backend("aot_eager")(graph, example_inputs)


COMPILE = ["train.compile=true", "train.compile_backend=distgan_counting"]


def trainer(out: Path, data: Path, *overrides: str):
    from distgan.training.loop import Trainer

    reset_accelerate()
    return Trainer(tiny_config(out, data, *overrides))


def test_compile_survives_the_requires_grad_toggling(tmp_path: Path, mnist_dir: Path):
    torch._dynamo.reset()
    COMPILED_GRAPHS.clear()
    run = trainer(
        tmp_path / "run",
        mnist_dir,
        *COMPILE,
        "model.g_norm=batch",
        "model.d_norm=spectral",
        "loss.r1_gamma=1.0",
        "loss.r1_interval=4",
        "train.n_critic=2",
    )
    for _ in range(3):
        run.train_step(want_grad_norms=True)
    after_warmup = len(COMPILED_GRAPHS)
    # G under no_grad and with grad; D trainable on 2n images and frozen on n. The R1 steps
    # (every 4th D step) run eagerly: a compiled backward cannot be differentiated again.
    assert 4 <= after_warmup <= 6, COMPILED_GRAPHS
    for _ in range(8):
        run.train_step(want_grad_norms=False)
    assert len(COMPILED_GRAPHS) == after_warmup, "a step recompiled: the graphs are not reused"
    assert run.state.step == 11


def test_compiled_run_matches_eager_and_resumes_bit_exactly(tmp_path: Path, mnist_dir: Path):
    common = ["model.g_norm=batch", "train.channels_last=true", "loss.r1_gamma=0.5", "loss.r1_interval=3"]
    eager = final_weights(train_in_process(tmp_path / "eager", mnist_dir, "train.steps=6", *common))
    whole = train_in_process(tmp_path / "whole", mnist_dir, "train.steps=6", *common, *COMPILE)
    assert max_abs_diff(eager, final_weights(whole)) < 1e-4
    part = tmp_path / "part"
    train_in_process(part, mnist_dir, "train.steps=3", "train.checkpoint_every=3", *common, *COMPILE)
    resumed = trainer(part, mnist_dir, "train.steps=6", "train.resume=auto", *common, *COMPILE)
    assert resumed.state.step == 3
    resumed.run()
    a, b = final_weights(whole), final_weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_channels_last_weights_and_images(tmp_path: Path, mnist_dir: Path):
    run = trainer(tmp_path / "run", mnist_dir, "train.channels_last=true")
    conv = next(p for p in run.G_plain.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert next(run.real)[0].is_contiguous(memory_format=torch.channels_last)
    plain = trainer(tmp_path / "plain", mnist_dir)  # auto: off on the CPU
    assert not plain.channels_last and next(plain.real)[0].is_contiguous()


@pytest.mark.parametrize(
    "extra", [["model.g_norm=batch", "train.grad_accum=2"], ["train.batch_size=24", "train.n_critic=2"]]
)
def test_in_memory_and_dataloader_paths_train_identically(tmp_path: Path, mnist_dir: Path, extra: list[str]):
    # 64 images, 8-24 per batch: both runs cross several epoch boundaries.
    memory = train_in_process(tmp_path / "memory", mnist_dir, "train.steps=8", "data.in_memory=true", *extra)
    loader = train_in_process(
        tmp_path / "loader", mnist_dir, "train.steps=8", "data.in_memory=false", "data.num_workers=2", *extra
    )
    a, b = final_weights(memory), final_weights(loader)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    rows = [
        [json.loads(line)["loss_d"] for line in (out / "metrics.jsonl").read_text().splitlines()]
        for out in (memory, loader)
    ]
    assert rows[0] == rows[1]


def test_data_path_choice(tmp_path: Path, mnist_dir: Path):
    from distgan.data.memory import InMemoryBatches

    assert isinstance(trainer(tmp_path / "a", mnist_dir).loader, InMemoryBatches)  # auto: 64 images fit
    assert not isinstance(trainer(tmp_path / "b", mnist_dir, "data.in_memory=false").loader, InMemoryBatches)


def test_precision_default(monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    expected = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False) else "no"
    assert resolve_mixed_precision("auto") == expected
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")  # `accelerate launch --mixed_precision fp16`
    assert resolve_mixed_precision("auto") == "fp16"
    assert resolve_mixed_precision("no") == "no" and resolve_mixed_precision(None) is None
    assert not wants_channels_last("auto", torch.device("cpu"), torch.nn.Conv2d(1, 1, 1))
    assert wants_channels_last("auto", torch.device("cuda"), torch.nn.Conv2d(1, 1, 1))
    assert not wants_channels_last("auto", torch.device("cuda"), torch.nn.Linear(1, 1))


def test_bare_no_on_the_command_line_means_fp32():
    from distgan.config import load_config

    assert load_config("mnist_dcgan", ["train.mixed_precision=no"]).train.mixed_precision == "no"


@pytest.mark.slow
def test_two_compiled_processes_match_one_eager(tmp_path: Path, mnist_dir: Path):
    """Compiled forwards inside DDP (gloo), reading the in-memory data path on both ranks."""
    from tests.training.helpers import launch, outcome

    common = ["train.steps=4", "train.n_critic=2", "loss.r1_gamma=0.5", "loss.r1_interval=3"]
    eager = final_weights(train_in_process(tmp_path / "one", mnist_dir, *common))
    result = launch(tmp_path / "two", mnist_dir, 2, *common, "train.compile=true", "train.compile_backend=aot_eager")
    assert result.returncode == 0, outcome(result)
    assert "distgan: 2 process(es)" in result.stdout
    assert max_abs_diff(eager, final_weights(tmp_path / "two")) < 1e-4
