"""Cheap checks on built networks: batch-statistics detection and a shape check that changes no state."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from distgan.errors import ModelError
from distgan.models.gan_models import GANModels


def has_batch_stats(module: nn.Module) -> bool:
    """True if a layer normalizes with batch statistics in train mode (per-rank under DDP unless SyncBatchNorm)."""
    # The name test catches BatchNorm re-implementations that do not subclass torch's.
    return any(isinstance(m, _BatchNorm) or "BatchNorm" in type(m).__name__ for m in module.modules())


class FlattenLogits(nn.Module):
    """Wraps a user discriminator that returns [N, 1] so that every D returns [N]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, *classes: torch.Tensor) -> torch.Tensor:
        return self.net(x, *classes).squeeze(1)


def _first_param(net: nn.Module) -> torch.Tensor | None:
    return next((p for p in net.parameters() if p.is_floating_point()), None)


def check_shapes(models: GANModels, channels: int, resolution: int, name: str) -> GANModels:
    """Runs G and D on 2 samples; raises ModelError on a wrong shape; leaves modes, buffers and RNG as found."""
    gen, disc = models.generator, models.discriminator
    nets = (gen, disc)
    modes = [(m, m.training) for net in nets for m in net.modules()]
    # eval() alone keeps built-in BN stats and spectral-norm vectors fixed, but user layers may
    # update buffers in any mode, so they are restored explicitly.
    saved = [
        (m, key, b, b.detach().clone())
        for net in nets
        for m in net.modules()
        for key, b in m._buffers.items()
        if b is not None
    ]
    param = _first_param(gen)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    # The global RNG must not move: building a model must not shift later sampling or data order.
    rng_devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices), torch.no_grad():
            gen.eval()
            disc.eval()
            z = torch.randn(2, models.z_dim, generator=torch.Generator().manual_seed(0)).to(device, dtype)
            # Conditional networks get the first and the last class as their second argument.
            classes = [torch.tensor([0, models.num_classes - 1], device=device)] if models.num_classes else []
            given = f" and classes [{', '.join(str(int(c)) for c in classes[0])}]" if classes else ""
            images = _run(gen, (z, *classes), f"model {name}: generator on z of shape [2, {models.z_dim}]{given}")
            want = (2, channels, resolution, resolution)
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            if got != want:
                raise ModelError(
                    f"model {name}: generator output shape is {_fmt(got)}, expected {_fmt(want)} "
                    f"(N, channels, resolution, resolution): make G match data.channels/data.resolution"
                )
            logits = _run(
                disc, (images, *classes), f"model {name}: discriminator on images of shape {_fmt(want)}{given}"
            )
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            if got not in ((2,), (2, 1)):
                raise ModelError(
                    f"model {name}: discriminator output shape is {_fmt(got)} for 2 images, expected "
                    "[2] or [2, 1]: return one logit per image"
                )
    finally:
        with torch.no_grad():
            for module, key, buf, value in saved:
                module._buffers[key] = buf  # undo a reassignment as well as an in-place update
                buf.copy_(value)
        for module, training in modes:
            module.training = training
    if got == (2, 1):
        return dataclasses.replace(models, discriminator=FlattenLogits(disc))
    return models


def _run(net: nn.Module, inputs: tuple[torch.Tensor, ...], what: str) -> torch.Tensor:
    try:
        return net(*inputs)
    except Exception as err:  # noqa: BLE001 - report any forward failure as one line naming the input shape
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ModelError(f"{what} failed: {type(err).__name__}: {first}") from err


def _fmt(shape: tuple | str) -> str:
    return f"[{', '.join(map(str, shape))}]" if isinstance(shape, tuple) else shape
