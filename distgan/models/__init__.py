"""The model zoo: `build_models(cfg.model, channels, resolution)` returns a checked G/D pair.

Built-ins: mlp, dcgan, resnet. `model.name=package.module:Name` builds a user's own pair with
`Name(cfg=..., channels=..., resolution=...)`; new built-ins register with `@register_model`.
"""

from distgan.models.checks import has_batch_stats
from distgan.models.registry import GANModels, build_models, register_model, registered_models

# Imported for their @register_model side effect.
from distgan.models import dcgan, mlp, resnet  # noqa: E402,F401  isort: skip

__all__ = ["GANModels", "build_models", "has_batch_stats", "register_model", "registered_models"]
