"""Smoke test of benchmarks/throughput.py on the CPU: it runs, counts FLOPs, writes its JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "throughput.py"


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_writes_table_and_json(throughput, tmp_path: Path, capsys):
    out = tmp_path / "result.json"
    throughput.main(
        [
            "--model",
            "preset:mnist_dcgan",
            "--batch",
            "8",
            "--steps",
            "2",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--precision",
            "no",
            "--peak-tflops",
            "1",
            "--json",
            str(out),
            "data.resolution=16",
            "model.g_width=8",
            "model.d_width=8",
            "model.z_dim=8",
        ]
    )
    saved = json.loads(out.read_text())
    (result,) = saved["results"]
    assert result["batch"] == 8 and result["precision"] == "no" and result["in_memory"]
    assert set(result["sides"]) == {"trainer", "trainer+data", "reference"}
    for side in result["sides"].values():
        assert side["img_per_s_min"] <= side["img_per_s"] <= side["img_per_s_max"]
        assert side["mfu"] == pytest.approx(side["tflops_per_s"] / 1)
    assert result["sides"]["reference"]["ratio_to_reference"] == 1.0
    assert result["tflop_per_iter"] > 0 and saved["environment"]["commit"]
    assert "trainer+data" in capsys.readouterr().out


def test_reference_models_have_the_issue_flops(throughput):
    """The named models are the issue's: FLOPs per iteration at batch 256 (0.64 TFLOP for DCGAN 64)."""
    import torch

    from distgan.config import load_config
    from distgan.models import build_models

    cfg = load_config("mnist_dcgan", [*throughput.MODELS["dcgan64"], "loss.name=hinge"])
    nets = build_models(cfg.model, channels=3, resolution=64)
    flops = throughput.flops_per_iteration(nets.generator, nets.discriminator, cfg, torch.zeros(2, 3, 64, 64))
    assert flops * 256 / 2 / 1e12 == pytest.approx(0.64, rel=0.01)
