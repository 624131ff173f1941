"""Model registry, user-model loading and `build_models`, the one entry point the trainer calls."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from torch import nn

from distgan.config import ModelConfig
from distgan.errors import ModelError
from distgan.models.catalog import CATALOG, REGISTERED, CatalogEntry, model_names
from distgan.models.checks import check_shapes
from distgan.models.gan_models import GANModels


def registered_models() -> list[str]:
    """The built-in names plus those other packages registered with `register_model`."""
    return model_names()


def build_models(cfg: ModelConfig, channels: int, resolution: int, num_classes: int = 0) -> GANModels:
    """Builds G and D for `channels` x `resolution`^2 images (class-conditional with `num_classes`
    > 0) and checks their shapes on a batch of 2."""
    if channels < 1 or resolution < 1:
        raise ModelError(f"cannot build models for channels={channels}, resolution={resolution}: both must be >= 1")
    if ":" in cfg.name:
        models = _build_user_models(cfg, channels, resolution, num_classes)
    elif cfg.name in CATALOG or cfg.name in REGISTERED:
        if cfg.kwargs:
            # Named models take no kwargs; silently ignoring them would hide typos.
            raise ModelError(f"model.kwargs {sorted(cfg.kwargs)} are not used by model {cfg.name}: remove them")
        if cfg.name in CATALOG:
            models = _builtin_builder(CATALOG[cfg.name], resolution)(cfg, channels, resolution, num_classes)
        else:
            built = _call_with_classes(REGISTERED[cfg.name], cfg.name, num_classes, cfg, channels, resolution)
            models = _as_gan_models(built, cfg.name, cfg.z_dim, num_classes)
    else:
        raise ModelError(
            f"unknown model.name={cfg.name!r}: use one of {', '.join(registered_models())} or 'package.module:Name'"
        )
    return check_shapes(models, channels, resolution, cfg.name)


def _call_with_classes(builder: Any, name: str, num_classes: int, *args: Any, **kwargs: Any) -> Any:
    """Calls a third-party builder; `num_classes` is passed only to a conditional run, and only
    to a builder that declares it."""
    if not num_classes:
        return builder(*args, **kwargs)
    try:
        accepts = "num_classes" in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        accepts = True  # no introspectable signature: the call itself says
    if not accepts:
        raise ModelError(
            f"model.name={name!r} builds no class-conditional networks (its builder takes no num_classes): "
            f"add a num_classes argument to it, or set data.conditional=false"
        )
    return builder(*args, **kwargs, num_classes=num_classes)


def _builtin_builder(entry: CatalogEntry, resolution: int) -> Any:
    # Checked here as well as in the config: build_models is also called with a bare ModelConfig.
    if not entry.accepts(resolution):
        raise ModelError(f"model {entry.name} cannot use resolution {resolution}: use {entry.allowed_resolutions()}")
    module_name, _, attr = entry.builder.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _build_user_models(cfg: ModelConfig, channels: int, resolution: int, num_classes: int = 0) -> GANModels:
    spec = cfg.name
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise ModelError(f"model.name={spec!r} is not 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - any import-time failure is reported the same way
        raise ModelError(
            f"model.name={spec!r}: cannot import module {module_name!r} ({type(err).__name__}: {err}); "
            "the module must be importable, e.g. installed or on PYTHONPATH"
        ) from err
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ModelError(
                f"model.name={spec!r}: module {module_name!r} has no attribute {attr_path!r}: define it "
                "there or fix the name after ':'"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(f"model.name={spec!r}: {attr_path} is a {type(obj).__name__}, not a class or function")
    call_args = dict(cfg=cfg, channels=channels, resolution=resolution)
    try:
        inspect.signature(obj).bind(**call_args)
    except TypeError:
        raise ModelError(
            f"model.name={spec!r}: {attr_path} must accept keyword arguments cfg, channels, resolution"
        ) from None
    except ValueError:
        pass  # no introspectable signature (some builtins/C types): just try the call
    built = _call_with_classes(obj, spec, num_classes, **call_args)
    return _as_gan_models(built, spec, cfg.z_dim, num_classes)


def _as_gan_models(built: Any, spec: str, default_z_dim: int, num_classes: int = 0) -> GANModels:
    if isinstance(built, GANModels):
        if built.num_classes not in (0, num_classes):
            raise ModelError(
                f"model.name={spec!r} built networks for {built.num_classes} classes, the data has {num_classes}"
            )
        gen, disc, z_dim = built.generator, built.discriminator, built.z_dim
    elif isinstance(built, tuple) and len(built) == 2:
        (gen, disc), z_dim = built, default_z_dim
    elif hasattr(built, "generator") and hasattr(built, "discriminator"):
        gen, disc = built.generator, built.discriminator
        z_dim = getattr(built, "z_dim", default_z_dim)
    else:
        raise ModelError(
            f"model.name={spec!r} returned {type(built).__name__}: return an object with .generator "
            "and .discriminator nn.Modules, or a (generator, discriminator) tuple"
        )
    for role, net in (("generator", gen), ("discriminator", disc)):
        if not isinstance(net, nn.Module):
            raise ModelError(f"model.name={spec!r}: the {role} is a {type(net).__name__}, not a torch.nn.Module")
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim < 1:
        raise ModelError(f"model.name={spec!r}: z_dim={z_dim!r} must be a positive int")
    return GANModels(generator=gen, discriminator=disc, z_dim=z_dim, num_classes=num_classes)
