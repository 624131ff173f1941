"""The classes of a labelled dataset, checked once before a class-conditional run builds anything."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from distgan.config import DataConfig
from distgan.errors import DataError


def class_count(dataset: Dataset, cfg: DataConfig) -> int:
    """The number of classes a conditional run trains on: `data.num_classes`, else the class names
    the data carries (folder names, a ClassLabel column), else the largest label + 1. Raises a
    one-line DataError when an image has no label or a label is out of range."""
    name = getattr(dataset, "name", "the dataset given to Trainer")
    labels = getattr(dataset, "labels", None)
    if labels is None:
        if cfg.num_classes:
            return cfg.num_classes
        raise DataError(
            f"data.conditional=true: {name} has no .labels array to count its classes: give the dataset a "
            f"labels attribute (int class ids), or set data.num_classes"
        )
    labels = np.asarray(labels)
    missing = int((labels < 0).sum())
    if missing:
        columns = getattr(getattr(dataset, "hf", None), "column_names", None)
        where = (
            f"label column {cfg.label_column!r} is not among its columns ({', '.join(columns)})"
            if columns is not None and cfg.label_column not in columns
            else f"{missing} of {len(labels)} images have no label"
        )
        raise DataError(
            f"data.conditional=true but {name} is unlabelled ({where}): set data.label_column to the class "
            f"column (an image folder needs one subfolder per class), or train unconditionally with "
            f"data.conditional=false"
        )
    largest = int(labels.max())
    if cfg.num_classes is not None:
        if largest >= cfg.num_classes:
            raise DataError(
                f"data.num_classes={cfg.num_classes} but {name} has label {largest}: "
                f"set data.num_classes to at least {largest + 1}, or null to count them from the data"
            )
        return cfg.num_classes
    return max(len(getattr(dataset, "classes", None) or []), largest + 1)
