"""The model zoo: `build_models(cfg.model, channels, resolution)` returns a checked G/D pair.

Built-ins are listed in `distgan.models.catalog`. `model.name=package.module:Name` builds a
user's own pair with `Name(cfg=..., channels=..., resolution=...)`; other packages may add
names with `@register_model`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Names are resolved on first use (PEP 562), so that `distgan.models.catalog` can be imported
# by the config without importing torch.
_EXPORTS = {
    "GANModels": "distgan.models.gan_models",
    "build_models": "distgan.models.registry",
    "has_batch_stats": "distgan.models.checks",
    "register_model": "distgan.models.catalog",
    "registered_models": "distgan.models.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'distgan.models' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
