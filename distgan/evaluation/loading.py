"""Trained networks for the analysis CLIs: from final/ safetensors files or a checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from distgan.config import Config
from distgan.errors import DistganError, ModelError
from distgan.models import build_models

EMA_CHECKPOINT_FILE = "custom_checkpoint_0.pkl"  # the EMA is the first object registered for checkpointing


def load_network(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Config, int]:
    """A final/*.safetensors file (G, EMA G or D; the config is in its metadata) -> (network
    in eval mode, its run config, z_dim)."""
    if not path.is_file():
        raise DistganError(f"no weights at {path}: give a run directory with final/ or a .safetensors file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path), device="cpu")
    except Exception as err:
        raise DistganError(f"{path} is not a readable safetensors file ({err})") from None
    if not {"distgan_config", "channels", "resolution", "network"} <= metadata.keys():
        raise DistganError(f"{path} has no distgan config in its metadata: was it written by distgan?")
    cfg = Config.model_validate(yaml.safe_load(metadata["distgan_config"]))
    nets = build_models(cfg.model, channels=int(metadata["channels"]), resolution=int(metadata["resolution"]))
    net = nets.discriminator if metadata["network"] == "discriminator" else nets.generator
    _load(net, state, path, cfg)
    return net.to(device).eval(), cfg, nets.z_dim


def load_generator(source: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Config, int]:
    """The EMA generator of a run directory, a directory holding generator_ema.safetensors
    (final/, final/best/), a generator .safetensors file, or a `checkpoints/step_<N>` directory."""
    if source.is_dir() and (source / EMA_CHECKPOINT_FILE).is_file():
        return _generator_from_checkpoint(source, device)
    for candidate in (source / "final" / "generator_ema.safetensors", source / "generator_ema.safetensors"):
        if candidate.is_file():
            return load_network(candidate, device)
    return load_network(source, device)


def load_discriminator(source: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Config]:
    for candidate in (source / "final" / "discriminator.safetensors", source / "discriminator.safetensors"):
        if candidate.is_file():
            source = candidate
            break
    net, cfg, _ = load_network(source, device)
    return net, cfg


def _generator_from_checkpoint(step_dir: Path, device: torch.device | str) -> tuple[nn.Module, Config, int]:
    config_file = step_dir.parent.parent / "config.yaml"
    if not config_file.is_file():
        raise DistganError(f"{step_dir}: no config.yaml two levels up; give a checkpoint inside its run directory")
    cfg = Config.model_validate(yaml.safe_load(config_file.read_text()))
    channels = cfg.data.channels or (1 if cfg.data.source == "mnist" else 3)
    nets = build_models(cfg.model, channels=channels, resolution=cfg.data.resolution)
    ema_state = torch.load(step_dir / EMA_CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    state = {k.removeprefix("generator."): v for k, v in ema_state.items() if k.startswith("generator.")}
    _load(nets.generator, state, step_dir, cfg)
    return nets.generator.to(device).eval(), cfg, nets.z_dim


def _load(net: nn.Module, state: dict[str, torch.Tensor], path: Path, cfg: Config) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"{path} does not match model {cfg.model.name}: {str(err).splitlines()[0]}") from None
