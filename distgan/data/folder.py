"""`data.source=imagefolder`: every image file under `data.path`, recursively.

Accepted: .png .jpg .jpeg .bmp .webp .gif .tif .tiff, any case. Names starting with "." are
skipped (macOS "._x.jpg" resource forks and .ipynb_checkpoints are not images). When every
image sits inside a subfolder, the top-level subfolder names, sorted, are the classes 0, 1, ...
(`DIR/cat/a.png`, `DIR/dog/x/b.png`); if any image sits directly in DIR, every label is -1.
Splits: when DIR has a subfolder named like a split (train, test, val, validation, valid), DIR
is a folder of splits and `data.split` (or `eval.real_split` for the reference images) picks
the subfolder `DIR/<split>`, whose subfolders are the classes. Otherwise DIR is one folder
of training images: `data.split=train` reads it, any other split is refused in one line,
since no test images can be told apart from the training ones.

The Dataset is built from the sorted file list (`{"image": paths, "label": ints}`) rather than
`load_dataset("imagefolder")`: no cache written, no metadata.csv rules, nothing decoded up front,
and each file is decoded by distgan.data.images, which names it when it fails. The sort makes
index -> file the same on every rank and every run.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from distgan.config import DataConfig
from distgan.data.dataset import ImageDataset
from distgan.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
SPLIT_NAMES = ("train", "test", "val", "validation", "valid")


def list_images(root: Path) -> list[str]:
    """Image paths under root relative to it, '/'-separated, sorted; symlinked folders followed once."""
    found: list[str] = []
    seen: set[str] = set()
    for folder, subdirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop, or the same folder linked twice
            subdirs[:] = []
            continue
        seen.add(real)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))  # sorted: same walk everywhere
        rel = Path(folder).relative_to(root)
        found += [(rel / f).as_posix() for f in files if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def class_labels(relative: list[str]) -> tuple[list[int], list[str]]:
    """Labels from the top-level folder of each path, or all -1 when some image is at the top."""
    tops = [p.split("/", 1)[0] if "/" in p else None for p in relative]
    if None in tops:
        return [-1] * len(relative), []
    classes = sorted(set(tops))
    index = {name: i for i, name in enumerate(classes)}
    return [index[t] for t in tops], classes


def split_root(root: Path, split: str) -> Path:
    """The folder holding `split`'s images: `root/<split>` in a folder of splits, else root itself
    (train only)."""
    splits = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.lower() in SPLIT_NAMES)
    if splits:
        if not (root / split).is_dir():
            raise DataError(
                f"{root} has no {split}/ subfolder (it has {', '.join(s + '/' for s in splits)}): "
                f"set data.split / eval.real_split to one of {', '.join(splits)}"
            )
        return root / split
    if split != "train":
        raise DataError(
            f"{root} has no split subfolders, so split {split!r} does not exist: put the images in "
            f"{root}/train/ and {root}/{split}/, or set eval.real_split=train (data.split=train)"
        )
    return root


def load_folder(cfg: DataConfig, channels: int) -> ImageDataset:
    assert cfg.path  # the config requires data.path for source=imagefolder
    top = Path(cfg.path).expanduser()
    if not top.is_dir():
        raise DataError(f"data.path={cfg.path} is not a directory: point it at a folder of images")
    root = split_root(top, cfg.split)
    relative = list_images(root)
    if not relative:
        raise DataError(
            f"no images under {root}: expected files ending in {' '.join(IMAGE_EXTENSIONS)} "
            f"(any case, in subfolders too)"
        )
    labels, classes = class_labels(relative)
    base = root.resolve()
    hf = datasets.Dataset.from_dict(
        {"image": [str(base / p) for p in relative], "label": labels},
        features=datasets.Features({"image": datasets.Value("string"), "label": datasets.Value("int64")}),
    )
    return ImageDataset(
        hf,
        image_column="image",
        label_column="label",
        channels=channels,
        resolution=cfg.resolution,
        name=f"image folder {root}",
        classes=classes,
    )
