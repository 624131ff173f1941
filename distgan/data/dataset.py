"""`ImageDataset`: a thin torch Dataset over a Hugging Face `datasets.Dataset`.

Item: `{"image": uint8 tensor [C, R, R], "label": int64 scalar tensor}` (-1 when unlabelled).

Why a wrapper instead of `hf.with_transform(...)`: the custom formatter first turns every batch
into Python lists (an Array2D MNIST batch of 64 costs ~14 ms that way, ~0.1 ms here), and
images decoded inside `datasets` fail without naming the file. Here `datasets` only reads
Arrow/NumPy rows (one query per batch through `__getitems__`, which torch's DataLoader calls
with a rank's whole index slice) and every image is decoded by distgan.data.images.
The source dataset stays available as `.hf`.
"""

from __future__ import annotations

import operator
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset

from distgan.data.images import ImageDecodeError, decode_image, shape_array
from distgan.errors import DataError

ENCODED, ARRAY = "encoded", "array"


def _kind_of(feature: Any, column: str, name: str) -> str:
    if isinstance(feature, datasets.Image):
        return ENCODED
    if isinstance(feature, dict) and ("bytes" in feature or "path" in feature):
        return ENCODED  # {"bytes", "path"} dicts, as Image(decode=False) stores them
    if isinstance(feature, datasets.Value) and feature.dtype in ("binary", "large_binary", "string", "large_string"):
        return ENCODED  # encoded file bytes, or file paths
    if isinstance(feature, (datasets.Array2D, datasets.Array3D, datasets.List, datasets.LargeList)):
        return ARRAY
    raise DataError(
        f"{name}: image column {column!r} has type {feature}: expected images (Image feature), "
        f"{{bytes, path}} dicts, encoded bytes, file paths or arrays: set data.image_column to the image column"
    )


def _labels(hf: datasets.Dataset, column: str | None, name: str) -> np.ndarray:
    if column is None or column not in hf.column_names:
        return np.full(len(hf), -1, dtype=np.int64)
    values = hf.select_columns([column]).with_format("arrow")[:][column]
    kind = values.type
    if not (pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind)):
        raise DataError(
            f"{name}: label column {column!r} holds {kind}, not integer class ids: "
            f"set data.label_column to an integer column, or data.label_column=null to train without labels"
        )
    return np.asarray(pc.fill_null(values.cast(pa.int64()), -1).to_numpy(), dtype=np.int64)


class ImageDataset(Dataset):
    """uint8 images of one size and channel count, with int64 labels, over `hf`.

    `classes` names the label ids (defaults to the names of a ClassLabel label column).
    `pixels`, when given, is an in-memory uint8 array [N, H, W(, C)] holding the same images
    as `hf`'s image column, row for row; it is read instead of `hf` (MNIST's fast path).
    """

    def __init__(
        self,
        hf: datasets.Dataset,
        *,
        image_column: str,
        label_column: str | None,
        channels: int,
        resolution: int,
        name: str,
        pixels: np.ndarray | None = None,
        classes: list[str] | None = None,
    ) -> None:
        if image_column not in hf.column_names:
            raise DataError(
                f"{name}: no image column {image_column!r}; columns present: {', '.join(hf.column_names)}: "
                f"set data.image_column to one of them"
            )
        if len(hf) == 0:
            raise DataError(f"{name}: the dataset has no rows: point data.path/data.split at data with images")
        self.hf = hf
        self.name = name
        self.channels = channels
        self.resolution = resolution
        self.labels = _labels(hf, label_column, name)
        label_feature = hf.features.get(label_column) if label_column else None
        # Class names for label ids, when known (folder names, a ClassLabel column); else [].
        self.classes = classes if classes is not None else list(getattr(label_feature, "names", None) or [])
        self._pixels = pixels
        self._kind = ARRAY if pixels is not None else _kind_of(hf.features[image_column], image_column, name)
        # Only the image column, read as Arrow (encoded) or NumPy (arrays): `datasets` never decodes.
        self._rows = hf.select_columns([image_column]).with_format("arrow" if self._kind == ENCODED else "numpy")
        self._column = image_column

    def __len__(self) -> int:
        return len(self.labels)

    def describe(self) -> str:
        """One line for the start of a run: where the images come from, how many, what shape."""
        r = self.resolution
        return f"{self.name}, {len(self)} images, {self.channels}x{r}x{r}"

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        return self.__getitems__([index % len(self)])[0]

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        images = self._decode(list(indices))
        return [
            {"image": torch.from_numpy(img), "label": torch.tensor(int(self.labels[i]), dtype=torch.int64)}
            for img, i in zip(images, indices)
        ]

    def _decode(self, indices: list[int]) -> list[np.ndarray]:
        c, r = self.channels, self.resolution
        if self._pixels is not None:
            batch = self._pixels[indices]
            return [shape_array(a, c, r, f"image {i} of {self.name}") for a, i in zip(batch, indices)]
        if self._kind == ARRAY:
            batch = self._rows[indices][self._column]
            return [shape_array(a, c, r, f"row {i} of {self.name}") for a, i in zip(batch, indices)]
        out = []
        for cell, i in zip(self._rows[indices].column(0).to_pylist(), indices):
            if isinstance(cell, dict):
                path, data = cell.get("path"), cell.get("bytes") or cell.get("path")
            else:
                path, data = (cell if isinstance(cell, str) else None), cell
            # Name the file when it is read from disk; a row number (and its original name) when in memory.
            where = path if data == path and path else f"row {i} of {self.name}" + (f" ({path})" if path else "")
            if not data:
                raise ImageDecodeError(f"{where}: the image is empty (no bytes, no path): fix or remove it")
            out.append(decode_image(data, where, c, r))
        return out
