"""distgan: GAN training on one CPU, one GPU, many GPUs or many SLURM nodes with the same results.

import distgan
cfg = distgan.load_config("mnist_dcgan", ["train.steps=200", "output_dir=runs/api_demo"])
distgan.Trainer(cfg).run()
images = distgan.load_generator("runs/api_demo").sample(16, seed=0)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from distgan.version import __version__

# Resolved on first use (PEP 562): `import distgan` stays cheap and imports torch only when
# a name that needs it is used.
_EXPORTS = {
    "Config": "distgan.config",
    "load_config": "distgan.config",
    "Trainer": "distgan.training.loop",
    "Generator": "distgan.generator",
    "load_generator": "distgan.generator",
}

__all__ = ["Config", "Generator", "Trainer", "__version__", "load_config", "load_generator"]

if TYPE_CHECKING:
    from distgan.config import Config, load_config
    from distgan.generator import Generator, load_generator
    from distgan.training.loop import Trainer


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'distgan' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
