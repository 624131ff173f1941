"""The built-in models, each listed once: its name, where its builder lives, the resolutions it takes.

Torch-free on purpose: the config validates `model.name` and `data.resolution` from this list
without importing any network code. Adding a built-in is one module plus one line in CATALOG.
Third-party builders registered with `register_model` are kept here too, so the config accepts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distgan.errors import ModelError


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    builder: str  # "package.module:function", imported only when the model is built
    min_resolution: int = 1
    power_of_two: bool = False

    def accepts(self, resolution: int) -> bool:
        if resolution < self.min_resolution:
            return False
        return not self.power_of_two or resolution & (resolution - 1) == 0

    def allowed_resolutions(self) -> str:
        """The rule in words, for error messages: 'a power of two >= 16 (16, 32, 64, 128, ...)'."""
        if self.power_of_two:
            first = 1 << max(self.min_resolution - 1, 0).bit_length()
            examples = ", ".join(str(first << i) for i in range(4))
            return f"a power of two >= {first} ({examples}, ...)"
        return f"a resolution >= {self.min_resolution}"


CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry("mlp", "distgan.models.mlp:build_mlp"),
        CatalogEntry("dcgan", "distgan.models.dcgan:build_dcgan", min_resolution=16, power_of_two=True),
        CatalogEntry("resnet", "distgan.models.resnet:build_resnet", min_resolution=8, power_of_two=True),
        CatalogEntry("r3gan", "distgan.models.r3gan:build_r3gan", min_resolution=8, power_of_two=True),
    )
}

# Builders `fn(cfg, channels, resolution) -> GANModels` registered by other packages at import time.
REGISTERED: dict[str, Callable[..., Any]] = {}


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers `fn(cfg, channels, resolution) -> GANModels` under `model.name=name`."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in CATALOG or (name in REGISTERED and REGISTERED[name] is not fn):
            raise ModelError(f"model name {name!r} is registered twice: pick a different name")
        REGISTERED[name] = fn
        return fn

    return decorator


def model_names() -> list[str]:
    """Every name `model.name` accepts without a 'package.module:Name' spec, sorted."""
    return sorted({*CATALOG, *REGISTERED})
