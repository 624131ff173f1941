"""Class-conditional training end to end: labels from each labelled source, fake classes from the
global noise stream, per-class grids, the class count stored with the weights, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

import distgan
from distgan.errors import DistganError
from distgan.utils.images import image_grid
from tests.training.helpers import outcome, run_module, train_cli, train_in_process

CLASSES = ["cat", "dog", "owl"]


def write_class_folder(root: Path, per_class: int = 6, flat: bool = False) -> Path:
    """16x16 RGB PNGs, one subfolder per class (a different colour each), or all in `root` (flat)."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        folder = root if flat else root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)
            pixels[..., k] += 190
            Image.fromarray(pixels).save(folder / f"{name}_{i}.png")
    return root


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("conditional")
    data = write_class_folder(root / "images")
    return train_in_process(
        root / "run",
        data,
        "data.source=imagefolder",
        "data.conditional=true",
        "train.steps=3",
        "train.checkpoint_every=3",
        "data.in_memory=false",  # a module fixture runs before the per-test cache directory is set
    )


def test_the_class_count_and_names_are_stored_with_the_weights(folder_run: Path):
    for path in (
        folder_run / "final" / "generator_ema.safetensors",
        folder_run / "checkpoints/step_3/generator_ema.safetensors",
    ):
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata()
        assert meta["num_classes"] == "3" and json.loads(meta["class_names"]) == CLASSES, path
    for source in (folder_run, folder_run / "checkpoints" / "step_3"):
        G = distgan.load_generator(source)
        assert (G.num_classes, G.class_names) == (3, CLASSES)


def test_sample_takes_a_class_by_id_name_or_per_image(folder_run: Path):
    G = distgan.load_generator(folder_run)
    by_name, by_id = G.sample(4, seed=1, labels="dog"), G.sample(4, seed=1, labels=1)
    assert torch.equal(by_name, by_id)
    z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(by_id, G.net(z, torch.ones(4, dtype=torch.int64)))
    mixed = G.sample(4, seed=1, labels=torch.tensor([1, 0, 1, 2]))
    assert torch.equal(mixed[[0, 2]], by_id[[0, 2]]) and not torch.equal(mixed[1], by_id[1])
    # No labels: classes drawn from the seed, so the same seed gives the same images.
    assert torch.equal(G.sample(6, seed=3), G.sample(6, seed=3))
    for bad in (7, "fox", [0, 1]):
        with pytest.raises(DistganError) as err:
            G.sample(4, labels=bad)
        assert "\n" not in str(err.value)


def test_the_sample_grid_has_one_row_per_class(folder_run: Path):
    grid = Image.open(folder_run / "samples" / "step_3.png")
    expected = image_grid(torch.zeros(len(CLASSES) * 8, 3, 16, 16), 8)
    assert (grid.height, grid.width) == expected.shape[:2]


def test_sample_and_interpolate_clis_take_a_class(folder_run: Path, tmp_path: Path):
    one = run_module("sample", str(folder_run), "--class", "owl", "--num", "5", "--out", str(tmp_path / "owl.png"))
    assert one.returncode == 0, outcome(one)
    assert Image.open(tmp_path / "owl.png").size == Image.fromarray(image_grid(torch.zeros(5, 3, 16, 16))).size
    rows = run_module("sample", str(folder_run), "--num", "6", "--out", str(tmp_path / "rows.png"))
    assert rows.returncode == 0, outcome(rows)
    assert Image.open(tmp_path / "rows.png").size == Image.fromarray(image_grid(torch.zeros(6, 3, 16, 16), 2)).size
    bad = run_module("sample", str(folder_run), "--class", "9", "--out", str(tmp_path / "bad.png"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0, outcome(bad)
    assert "classes 0..2" in bad.stderr and "cat, dog, owl" in bad.stderr
    walk = run_module("interpolate", str(folder_run), "--class", "dog", "--rows", "2", "--out", str(tmp_path / "i.png"))
    assert walk.returncode == 0, outcome(walk)


def test_score_needs_the_class_of_a_conditional_discriminator(folder_run: Path, tmp_path: Path):
    images = folder_run.parent / "images" / "dog"
    sheet = ("--sheet", str(tmp_path / "s.png"))  # not the default, scores.png in the working directory
    scored = run_module("score", str(folder_run), str(images), "--class", "1", "--csv", str(tmp_path / "s.csv"), *sheet)
    assert scored.returncode == 0, outcome(scored)
    missing = run_module("score", str(folder_run), str(images), "--csv", str(tmp_path / "m.csv"), *sheet)
    assert missing.returncode == 2 and "--class" in missing.stderr and missing.stderr.strip().count("\n") == 0


def test_fake_classes_are_uniform_draws_of_the_global_stream(tmp_path: Path, mnist_dir: Path):
    from distgan.training.loop import Trainer
    from tests.training.helpers import reset_accelerate, tiny_config

    reset_accelerate()
    trainer = Trainer(tiny_config(tmp_path / "run", mnist_dir, "data.conditional=true", "train.batch_size=64"))
    assert trainer.num_classes == 10
    images, labels = next(trainer.real)
    draws = {}
    for phase in trainer.phases:
        draws[phase.name] = torch.cat(
            [trainer._batch(phase, step, 0, images, labels).fake_labels for step in range(20)]
        )
    for phase, classes in draws.items():
        counts = torch.bincount(classes, minlength=10)
        assert len(counts) == 10 and counts.min() > 64 * 20 / 10 / 2, (phase, counts)
    assert not torch.equal(draws["d"], draws["g"]), "the phases must draw apart"
    again = trainer._batch(trainer.phases[0], 3, 0, images, labels)
    assert torch.equal(again.fake_labels, draws["d"][3 * 64 : 4 * 64])
    assert torch.equal(again.real_labels, labels)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["data.num_classes=5"], "data.num_classes=5 but"),
        (["data.label_column=null"], "data.conditional=true needs labels"),
    ],
)
def test_bad_labels_are_one_line_before_any_work(tmp_path: Path, mnist_dir: Path, overrides, expected):
    out = tmp_path / "run"
    result = train_cli(out, mnist_dir, "data.conditional=true", "train.steps=2", *overrides)
    assert result.returncode == 2, outcome(result)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and expected in errors[0], outcome(result)
    assert not out.exists()


def test_a_missing_label_column_is_one_line(tmp_path: Path):
    import datasets

    rows = {"image": [Image.new("L", (16, 16), 30 * i) for i in range(4)], "digit": [0, 1, 2, 3]}
    datasets.Dataset.from_dict(
        rows, features=datasets.Features({"image": datasets.Image(), "digit": datasets.Value("int64")})
    ).save_to_disk(tmp_path / "saved")
    out = tmp_path / "run"
    result = train_cli(out, tmp_path / "saved", "data.source=hf", "data.conditional=true", "train.steps=2")
    assert result.returncode == 2, outcome(result)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "label column 'label' is not among its columns (image, digit)" in errors[0]
    assert "set data.label_column" in errors[0] and not out.exists()
    fixed = train_cli(
        out,
        tmp_path / "saved",
        "data.source=hf",
        "data.conditional=true",
        "data.label_column=digit",
        "train.steps=2",
        "train.batch_size=4",
    )
    assert fixed.returncode == 0, outcome(fixed)
    assert "4 classes (conditional)" in fixed.stdout


def test_an_unlabelled_folder_is_refused_in_one_line(tmp_path: Path):
    data = write_class_folder(tmp_path / "flat", per_class=2, flat=True)
    out = tmp_path / "run"
    result = train_cli(out, data, "data.source=imagefolder", "data.conditional=true", "train.steps=2")
    assert result.returncode == 2, outcome(result)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "is unlabelled (6 of 6 images have no label)" in errors[0], outcome(result)
    assert "one subfolder per class" in errors[0] and not out.exists()


def test_save_pretrained_keeps_the_classes(folder_run: Path, tmp_path: Path):
    G = distgan.load_generator(folder_run)
    G.save_pretrained(tmp_path / "shared")
    again = distgan.Generator.from_pretrained(tmp_path / "shared")
    assert (again.num_classes, again.class_names) == (3, CLASSES)
    assert torch.equal(again.sample(3, labels="owl"), G.sample(3, labels="owl"))
    assert "3 classes (cat, dog, owl)" in (tmp_path / "shared" / "README.md").read_text()
