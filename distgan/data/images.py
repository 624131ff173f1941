"""One image in, one uint8 array [C, R, R] out, whatever its format, mode or size.

Every image, from any source, goes through the same three steps, which is why folders and
datasets of mixed sizes and modes just work:

1. mode -> L (channels=1) or RGB (channels=3). Alpha (RGBA, LA, PA, P with transparency) is
   composited over black (premultiplied), so hidden colour under transparent pixels never
   leaks in. 16-bit (I;16, I;16B, ...) and 32-bit I images are scaled by 1/257 (0..65535 ->
   0..255) rather than clipped as PIL's convert would; F (float) images are taken as [0, 1].
   CMYK, YCbCr, LAB, HSV, 1 and the rest go through PIL's convert. EXIF orientation is applied.
2. size -> BICUBIC resize so the SHORTER side equals R (skipped when it already does).
3. crop -> the centre R x R.

A file or row that cannot be decoded raises `ImageDecodeError` (a `DataError`) naming it.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from distgan.errors import DataError, one_line

EXIF_ORIENTATION = 0x0112


class ImageDecodeError(DataError):
    """An image that cannot be decoded; the message names the file or row."""

    def __init__(self, message: str) -> None:
        # torch's DataLoader re-raises a worker's exception as `type(msg)` where msg is
        # "Caught X in DataLoader worker ...\nOriginal Traceback ...\n<module.X>: <our line>".
        # Keep only our line so the user still gets one line naming the file.
        if message.startswith("Caught ") and "Original Traceback" in message:
            last = message.rstrip().splitlines()[-1]
            message = last.split(": ", 1)[1] if ": " in last else last
        super().__init__(message)


def _to_l_or_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> L or RGB (alpha premultiplied, high bit depths scaled, not clipped)."""
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(img).astype(np.float64)
        arr = np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 if mode == "F" else np.clip(arr, 0, 65535) / 257.0
        return Image.fromarray(np.rint(arr).astype(np.uint8), "L")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("PA", "RGBa"):
        img = img.convert("RGBA")
    elif mode == "La":
        img = img.convert("LA")
    elif mode == "1":
        return img.convert("L")
    elif mode not in ("LA", "RGBA"):
        return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...
    if img.mode in ("LA", "RGBA"):
        arr = np.asarray(img).astype(np.uint16)
        color, alpha = arr[..., :-1], arr[..., -1:]
        out = ((color * alpha + 127) // 255).astype(np.uint8)
        return Image.fromarray(out[..., 0], "L") if img.mode == "LA" else Image.fromarray(out, "RGB")
    return img


def shape_image(img: Image.Image, channels: int, resolution: int) -> np.ndarray:
    """PIL image (any mode/size) -> contiguous uint8 array [channels, resolution, resolution]."""
    img = _to_l_or_rgb(img)
    want = "L" if channels == 1 else "RGB"
    if img.mode != want:
        img = img.convert(want)
    w, h = img.size
    if min(w, h) != resolution:
        if w <= h:
            size = (resolution, max(resolution, round(h * resolution / w)))
        else:
            size = (max(resolution, round(w * resolution / h)), resolution)
        img = img.resize(size, Image.Resampling.BICUBIC)
        w, h = size
    top, left = (h - resolution) // 2, (w - resolution) // 2
    arr = np.asarray(img)[top : top + resolution, left : left + resolution]
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return np.array(arr, order="C")  # a writable copy: PIL's buffer is read-only, torch warns on those


def shape_array(arr: np.ndarray, channels: int, resolution: int, name: str) -> np.ndarray:
    """An array image ([H,W], [H,W,C] or [C,H,W], C in 1/3/4; uint8, other ints or floats in
    [0, 1]) -> uint8 [channels, resolution, resolution]."""
    try:
        arr = np.asarray(arr)
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = arr.transpose(1, 2, 0)  # CHW -> HWC
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
            raise ValueError(f"array of shape {arr.shape} is not an image ([H,W], [H,W,C] or [C,H,W], C in 1/3/4)")
        if arr.dtype != np.uint8:
            scale = 255.0 if arr.dtype.kind == "f" else 1.0
            arr = np.rint(np.clip(np.nan_to_num(arr.astype(np.float64) * scale), 0, 255)).astype(np.uint8)
        if arr.ndim == 2 and arr.shape == (resolution, resolution):
            # Already the target grid (MNIST at 28, ...): skip PIL entirely.
            out = arr[None]
            return np.array(out if channels == 1 else np.repeat(out, 3, axis=0), order="C")
        mode = "L" if arr.ndim == 2 else ("RGB" if arr.shape[-1] == 3 else "RGBA")
        return shape_image(Image.fromarray(np.ascontiguousarray(arr), mode), channels, resolution)
    except Exception as err:
        raise ImageDecodeError(f"{name}: cannot use this array as an image ({one_line(err)})") from None


def decode_image(source: bytes | str, name: str, channels: int, resolution: int) -> np.ndarray:
    """Encoded bytes or a file path -> uint8 [channels, resolution, resolution]."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            # Decode now, inside the try: a truncated or corrupt file fails here, named.
            img.load()
            if img.getexif().get(EXIF_ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
            return shape_image(img, channels, resolution)
    except Exception as err:
        raise ImageDecodeError(f"{name}: cannot decode image ({one_line(err)}): fix or remove it") from None
