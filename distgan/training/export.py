"""Trained networks as safetensors files that carry the run's config (final/, final/best/)."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file
from torch import Tensor, nn


def cpu_state(net: nn.Module) -> dict[str, Tensor]:
    """The state_dict as contiguous CPU tensors, floats in fp32 (DeepSpeed may train in bf16)."""
    return {
        k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().contiguous()
        for k, v in net.state_dict().items()
    }


def save_networks(directory: Path, networks: dict[str, nn.Module], metadata: dict[str, object]) -> None:
    """`<name>.safetensors` per network, each with `metadata` (as strings) plus its own name."""
    directory.mkdir(parents=True, exist_ok=True)
    text = {key: str(value) for key, value in metadata.items()}
    for name, net in networks.items():
        save_file(cpu_state(net), str(directory / f"{name}.safetensors"), metadata={**text, "network": name})
