"""Evaluating a class-conditional generator: FID over uniform classes, and the intra-class FID."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from distgan.config import load_config
from distgan.evaluation.evaluator import uniform_classes
from distgan.evaluation.extract import generated_features
from distgan.evaluation.features import build_extractor
from distgan.evaluation.fid import feature_statistics, frechet_distance
from distgan.evaluation.real_stats import reference_indices
from distgan.generator import load_generator
from tests.conftest import write_mnist
from tests.evaluation.tiny_extractor import write_tiny_extractor
from tests.training.helpers import train_in_process


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("conditional_eval")
    data = write_mnist(root / "mnist", n=200)  # 100 test digits, about 10 of each class
    run = train_in_process(root / "run", data, "data.conditional=true", "train.steps=2", "data.in_memory=false")
    return {"data": data, "run": run, "extractor": write_tiny_extractor(root / "tiny.pt")}


def _args(assets: dict[str, Path], cache: Path) -> list[str]:
    return [
        f"eval.inception={assets['extractor']}",
        f"eval.stats_cache={cache}",
        "eval.real_split=test",
        "eval.batch_size=16",
        "eval.kid_subsets=2",
        "eval.kid_subset_size=10",
    ]


def test_intra_fid_is_each_class_against_its_own_reference(conditional_run, tmp_path: Path, capsys):
    from distgan.evaluate import main

    assert main([str(conditional_run["run"]), "--num", "40", "--intra-fid", *_args(conditional_run, tmp_path)]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    per_class = row["intra_fid_per_class"]
    assert len(per_class) == 10 and row["intra_fid_images_per_class"] == 4
    assert row["intra_fid"] == pytest.approx(np.mean(per_class)) and all(f > 0 for f in per_class)
    assert row["fid"] > 0 and row["eval_images"] == 40

    # Class 3 by hand: its 4 generated images against the test digits labelled 3.
    cfg = load_config(str(conditional_run["run"] / "config.yaml"), _args(conditional_run, tmp_path))
    acc = Accelerator(cpu=True)
    extractor = build_extractor(str(conditional_run["extractor"]), acc.device)
    generator = load_generator(conditional_run["run"])
    labels = torch.full((4,), 3)
    generated, _ = generated_features(acc, generator, generator.z_dim, 4, 16, cfg.seed, extractor, False, labels)
    from distgan.data import build_dataset

    test = build_dataset(cfg.data.model_copy(update={"split": "test"}))
    mine = [i for i in reference_indices(len(test), len(test), cfg.seed) if test.labels[i] == 3]
    from distgan.evaluation.extract import dataset_features

    real = dataset_features(acc, test, mine, 16, extractor, progress=False)
    expected = frechet_distance(*feature_statistics(generated), *feature_statistics(real))
    assert per_class[3] == pytest.approx(expected, rel=1e-6)


def test_fid_of_a_conditional_generator_draws_uniform_classes(conditional_run, tmp_path: Path, capsys):
    from distgan.evaluate import main

    assert main([str(conditional_run["run"]), "--num", "30", *_args(conditional_run, tmp_path)]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "intra_fid" not in row and row["fid"] > 0
    classes = uniform_classes(3000, 10, seed=0)
    assert torch.equal(classes, uniform_classes(3000, 10, seed=0))
    assert torch.bincount(classes, minlength=10).min() > 200


def test_intra_fid_of_an_unconditional_run_is_one_line(eval_assets: dict[str, Path], tmp_path: Path, capsys):
    from distgan.evaluate import main

    code = main([str(eval_assets["run"]), "--num", "10", "--intra-fid", *_args(eval_assets, tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "--intra-fid needs a class-conditional generator" in err


def test_intra_fid_without_two_reference_images_per_class_is_one_line(conditional_run, tmp_path: Path, capsys):
    from distgan.evaluate import main

    args = [*_args(conditional_run, tmp_path), "eval.num_real=6"]  # 6 reference digits cannot cover 10 classes
    code = main([str(conditional_run["run"]), "--num", "20", "--intra-fid", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "at least 2 labelled reference images of each" in err
