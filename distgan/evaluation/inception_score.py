"""Inception Score from class logits: exp(E_x KL(p(y|x) || p(y))), mean and std over splits.

The std is the population one (ddof=0), as torch-fidelity reports it.
"""

from __future__ import annotations

import numpy as np
import torch


def inception_score(logits: np.ndarray | torch.Tensor, splits: int = 10) -> tuple[float, float]:
    log_p = torch.as_tensor(logits).double().log_softmax(dim=1)
    scores = []
    for part in torch.tensor_split(log_p, splits):
        if len(part) == 0:
            continue
        log_marginal = part.exp().mean(0).log()
        kl = (part.exp() * (part - log_marginal)).sum(1).mean()
        scores.append(kl.exp())
    values = torch.stack(scores)
    return values.mean().item(), values.std(correction=0).item()
