"""Image grids for samples."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torch import Tensor


def image_grid(images: Tensor, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """[N, C, H, W] floats in [-1, 1] -> one uint8 HWC (or HW for 1 channel) grid."""
    images = images.detach().float().cpu().clamp(-1, 1)
    n = images.shape[0]
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    blank = torch.full((rows * columns - n, *images.shape[1:]), -1.0)
    images = torch.cat([images, blank])
    images = torch.nn.functional.pad(images, (padding, 0, padding, 0), value=-1.0)
    grid = rearrange(images, "(r c) ch h w -> (r h) (c w) ch", r=rows, c=columns)
    grid = torch.nn.functional.pad(grid, (0, 0, 0, padding, 0, padding), value=-1.0)
    pixels = ((grid + 1) * 127.5).round().to(torch.uint8).numpy()
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def save_image_grid(images: Tensor, path: str | Path, columns: int | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(image_grid(images, columns)).save(tmp, format="PNG")
    tmp.replace(path)
    return path
