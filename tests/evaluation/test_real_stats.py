"""Reference statistics: computed once, cached under a key of everything that changes them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from accelerate import Accelerator

from distgan.config import load_config
from distgan.evaluation import real_stats
from distgan.evaluation.extract import dataset_features
from distgan.evaluation.features import build_extractor
from tests.data._helpers import save_image, solid
from tests.evaluation.tiny_extractor import write_tiny_extractor
from tests.training.helpers import TINY


def _cfg(assets: dict[str, Path], cache: Path, *overrides: str):
    return load_config(
        "mnist_dcgan",
        [*TINY, f"data.path={assets['data']}", f"eval.stats_cache={cache}", "eval.batch_size=7", *overrides],
    )


def test_cache_written_once_then_reused(eval_assets: dict[str, Path], tmp_path: Path):
    acc = Accelerator(cpu=True)
    extractor = build_extractor(str(eval_assets["extractor"]), acc.device)
    cfg = _cfg(eval_assets, tmp_path, "eval.real_split=test")
    first = real_stats.load_or_compute(acc, cfg, extractor)
    entries = sorted(tmp_path.glob("*.npz"))
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    second = real_stats.load_or_compute(acc, cfg, extractor)
    assert entries[0].stat().st_mtime_ns == stamp  # read, not recomputed and rewritten
    assert torch.equal(first.features, second.features) and np.array_equal(first.sigma, second.sigma)
    assert first.features.shape == (32, 32)  # the 32 test images of the fixture's MNIST, 32 features each
    description = json.loads(entries[0].with_suffix(".json").read_text())
    assert description["split"] == "test" and description["resolution"] == 16 and description["num_images"] == 32
    assert description["resizer"] == "uint8-(x-128)/128-bilinear-299"
    assert description["extractor"] == extractor.name


def test_features_are_the_dataset_rows_in_order(eval_assets: dict[str, Path], tmp_path: Path):
    from distgan.data import build_dataset
    from distgan.evaluation.features import to_rgb_uint8

    acc = Accelerator(cpu=True)
    extractor = build_extractor(str(eval_assets["extractor"]), acc.device)
    cfg = _cfg(eval_assets, tmp_path)
    dataset = build_dataset(cfg.data)
    features = dataset_features(acc, dataset, list(range(10)), batch_size=4, extractor=extractor)
    one_by_one = torch.cat([extractor(to_rgb_uint8(dataset[i]["image"][None]))[0] for i in range(10)])
    assert torch.allclose(features, one_by_one, atol=1e-5)


def _describe(cfg, extractor) -> dict:
    from distgan.data import build_dataset

    dataset = build_dataset(cfg.data.model_copy(update={"split": real_stats.real_split(cfg)}))
    return real_stats.describe_reference(cfg, dataset, min(cfg.eval.num_real or 64, len(dataset)), extractor)


@pytest.mark.parametrize(
    "change",
    ["eval.real_split=test", "data.resolution=32", "eval.num_real=20", "data.image_column=pixels", "extractor"],
)
def test_key_changes_with_what_changes_the_statistics(eval_assets: dict[str, Path], tmp_path: Path, change: str):
    acc = Accelerator(cpu=True)
    base_extractor = build_extractor(str(eval_assets["extractor"]), acc.device)
    base = _describe(_cfg(eval_assets, tmp_path), base_extractor)
    if change == "extractor":
        other = _describe(
            _cfg(eval_assets, tmp_path), build_extractor(str(eval_assets["extractor_logits"]), acc.device)
        )
    else:
        other = _describe(_cfg(eval_assets, tmp_path, change), base_extractor)
    assert real_stats.cache_key(base) != real_stats.cache_key(other)


def test_seed_keys_a_subset_only(eval_assets: dict[str, Path], tmp_path: Path):
    extractor = build_extractor(str(eval_assets["extractor"]), Accelerator(cpu=True).device)

    def key(*overrides: str) -> str:
        return real_stats.cache_key(_describe(_cfg(eval_assets, tmp_path, *overrides), extractor))

    assert key("seed=1") == key("seed=2")  # every image: the seed picks nothing
    assert key("seed=1", "eval.num_real=20") != key("seed=2", "eval.num_real=20")


# ---- on real image folders and saved datasets written here --------------------------------
def _folder_cfg(folder: Path, cache: Path, *overrides: str):
    return load_config(
        "mnist_dcgan",
        [
            *TINY,
            "data.source=imagefolder",
            f"data.path={folder}",
            "data.channels=3",
            f"eval.stats_cache={cache}",
            "eval.batch_size=5",
            *overrides,
        ],
    )


def _class_sorted_folder(root: Path, classes: int = 4, per_class: int = 6) -> Path:
    """class c, image i: a solid colour no other image has, so a feature row names its image."""
    for c in range(classes):
        for i in range(per_class):
            save_image(root / f"class{c}" / f"{i:02d}.png", solid("RGB", (12, 12), (60 * c, 40 * i, 90)))
    return root


@pytest.fixture
def tiny_extractor(tmp_path: Path):
    acc = Accelerator(cpu=True)
    return acc, build_extractor(str(write_tiny_extractor(tmp_path / "tiny.pt")), acc.device)


def _row_features(dataset, extractor) -> torch.Tensor:
    from distgan.evaluation.features import to_rgb_uint8

    return torch.cat([extractor(to_rgb_uint8(dataset[i]["image"][None]))[0] for i in range(len(dataset))])


def test_changed_images_are_not_served_from_the_cache(tiny_extractor, tmp_path: Path):
    acc, extractor = tiny_extractor
    folder = _class_sorted_folder(tmp_path / "images", classes=2, per_class=3)
    first = real_stats.load_or_compute(acc, _folder_cfg(folder, tmp_path / "cache"), extractor)
    changed = save_image(folder / "class0" / "01.png", solid("RGB", (12, 12), (250, 250, 250)))
    info = changed.stat()  # a later mtime even where the file system's clock is coarse
    os.utime(changed, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    second = real_stats.load_or_compute(acc, _folder_cfg(folder, tmp_path / "cache"), extractor)
    fresh = real_stats.load_or_compute(acc, _folder_cfg(folder, tmp_path / "fresh"), extractor)
    assert not torch.equal(first.features, second.features)
    assert torch.equal(second.features, fresh.features)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    assert second.description["version"] == real_stats.STATS_VERSION
    assert second.description["source_stamp"] != first.description["source_stamp"]


def test_image_column_is_part_of_the_key(tiny_extractor, tmp_path: Path):
    acc, extractor = tiny_extractor
    reds = [solid("RGB", (12, 12), (200 + i, 0, 0)) for i in range(4)]
    blues = [solid("RGB", (12, 12), (0, 0, 200 + i)) for i in range(4)]
    features = datasets.Features({"red": datasets.Image(), "blue": datasets.Image(), "label": datasets.Value("int64")})
    datasets.Dataset.from_dict({"red": reds, "blue": blues, "label": [0] * 4}, features=features).save_to_disk(
        str(tmp_path / "saved")
    )

    def stats(column: str) -> real_stats.RealStats:
        cfg = _folder_cfg(tmp_path / "saved", tmp_path / "cache", "data.source=hf", f"data.image_column={column}")
        return real_stats.load_or_compute(acc, cfg, extractor)

    red, blue = stats("red"), stats("blue")
    assert not torch.equal(red.features, blue.features)
    assert red.description["image_column"] == "red" and blue.description["image_column"] == "blue"


def test_reference_split_is_the_split_subfolder(tiny_extractor, tmp_path: Path):
    from distgan.data import build_dataset

    acc, extractor = tiny_extractor
    _class_sorted_folder(tmp_path / "images" / "train", classes=2, per_class=3)
    _class_sorted_folder(tmp_path / "images" / "test", classes=2, per_class=2)
    cfg = _folder_cfg(tmp_path / "images", tmp_path / "cache", "eval.real_split=test")
    reference = real_stats.load_or_compute(acc, cfg, extractor)
    test_rows = _row_features(build_dataset(cfg.data.model_copy(update={"split": "test"})), extractor)
    assert reference.description["split"] == "test" and len(reference.features) == 4
    assert torch.allclose(reference.features, test_rows, atol=1e-5)


def test_folder_without_splits_refuses_a_test_reference_before_training(tiny_extractor, tmp_path: Path):
    from distgan.errors import DataError
    from distgan.evaluation.evaluator import Evaluator

    acc, _ = tiny_extractor
    folder = _class_sorted_folder(tmp_path / "images", classes=2, per_class=2)
    with pytest.raises(DataError) as err:
        Evaluator(
            acc,
            _folder_cfg(folder, tmp_path / "cache", "eval.real_split=test", f"eval.inception={tmp_path / 'tiny.pt'}"),
        )
    message = str(err.value)
    assert "\n" not in message and str(folder) in message and "eval.real_split" in message


def test_num_real_is_a_seeded_subset_across_classes(tiny_extractor, tmp_path: Path):
    from distgan.data import build_dataset

    acc, extractor = tiny_extractor
    folder = _class_sorted_folder(tmp_path / "images")  # 4 classes of 6: the first 6 are one class
    cfg = _folder_cfg(folder, tmp_path / "cache", "eval.num_real=6", "seed=3")
    dataset = build_dataset(cfg.data)
    every_row = _row_features(dataset, extractor)
    reference = real_stats.load_or_compute(acc, cfg, extractor)
    chosen = torch.cdist(reference.features, every_row).argmin(1)  # which image each row is
    assert torch.allclose(reference.features, every_row[chosen], atol=1e-5) and len(set(chosen.tolist())) == 6
    assert len({int(dataset.labels[i]) for i in chosen}) > 1
    again = real_stats.load_or_compute(
        acc, _folder_cfg(folder, tmp_path / "other", "eval.num_real=6", "seed=3"), extractor
    )
    assert torch.equal(reference.features, again.features)  # the same subset on a second computation
    other_seed = real_stats.load_or_compute(
        acc, _folder_cfg(folder, tmp_path / "cache", "eval.num_real=6", "seed=4"), extractor
    )
    assert not torch.equal(reference.features, other_seed.features)


def test_a_crash_while_writing_leaves_the_old_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    entry = tmp_path / "cache" / "key"
    features = np.arange(12, dtype=np.float32).reshape(4, 3)
    old = {"source": "old"}
    real_stats._write_entry(entry, features, features.mean(0), np.eye(3), old)

    def half_then_fail(path: Path, text: str, *args, **kwargs) -> int:
        with open(path, "w") as handle:
            handle.write(text[: len(text) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        real_stats._write_entry(entry, features + 1, features.mean(0), np.eye(3), {"source": "new"})
    monkeypatch.undo()
    assert json.loads(entry.with_suffix(".json").read_text()) == old
    with np.load(entry.with_suffix(".npz")) as saved:
        assert np.array_equal(saved["features"], features)
    assert sorted(p.name for p in entry.parent.iterdir()) == ["key.json", "key.npz"]  # no temporary left
