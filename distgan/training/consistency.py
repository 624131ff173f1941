"""A debug check that every rank holds the same weights (StyleGAN's check_ddp_consistency).

Each rank fingerprints every parameter and buffer of G, D and the EMA; one all-gather
brings the fingerprints together, and every rank reaches the same verdict, so all stop
together with the first tensor that differs. Costs a host sync: use it to debug, not to
train (`train.consistency_check_every`, 0 = off).
"""

from __future__ import annotations

import torch
from accelerate import Accelerator
from torch import nn

from distgan.errors import DistganError


class RankDivergenceError(DistganError):
    """Ranks hold different weights: something outside DDP changed one rank's copy."""


def _fingerprints(modules: dict[str, nn.Module]) -> tuple[list[str], torch.Tensor]:
    names, rows = [], []
    for module_name, module in modules.items():
        for kind, items in (("parameter", module.named_parameters()), ("buffer", module.named_buffers())):
            for name, tensor in items:
                values = tensor.detach().double().nan_to_num(nan=1e300)
                names.append(f"{module_name} {kind} {name!r}")
                rows.append(torch.stack([values.sum(), values.abs().sum(), values.square().sum()]))
    return names, torch.stack(rows)


def check_ranks_agree(accelerator: Accelerator, modules: dict[str, nn.Module], step: int) -> None:
    """Raises RankDivergenceError on every rank if any rank's weights differ from rank 0's."""
    if accelerator.num_processes == 1:
        return
    names, local = _fingerprints(modules)
    every = accelerator.gather(local.unsqueeze(0))  # [ranks, tensors, 3]
    differs = (every != every[:1]).any(dim=2)  # [ranks, tensors]
    if not differs.any():
        return
    rank, index = (int(i) for i in differs.nonzero()[0])
    raise RankDivergenceError(
        f"ranks disagree at step {step}: {names[index]} on rank {rank} differs from rank 0 "
        f"({int(differs.any(dim=0).sum())} of {len(names)} tensors differ); a change made outside "
        f"DDP (an in-place update of a frozen tensor, a rank-dependent buffer) is the usual cause"
    )
