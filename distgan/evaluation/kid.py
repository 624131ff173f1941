"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel, over subsets."""

from __future__ import annotations

import numpy as np
import torch


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 between two [m, D] samples with k(a, b) = (a.b / D + 1)^3, float64."""
    x, y = x.double(), y.double()
    m, dim = x.shape
    k_xx = (x @ x.T / dim + 1) ** 3
    k_yy = (y @ y.T / dim + 1) ** 3
    k_xy = (x @ y.T / dim + 1) ** 3
    off_diagonal = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return off_diagonal - 2 * k_xy.mean()


def kernel_inception_distance(
    real: np.ndarray | torch.Tensor,
    fake: np.ndarray | torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float | None]:
    """Mean and standard deviation of MMD^2 over `subsets` random pairs of subsets (drawn
    without replacement within a subset), as in the KID paper and StyleGAN's metrics.
    The std is the population one (ddof=0, torch-fidelity's), None for a single subset (or
    subsets as large as both samples, which are all the same sets).
    `subset_size` is capped at the smaller sample."""
    real_t, fake_t = torch.as_tensor(real), torch.as_tensor(fake)
    size = min(subset_size, len(real_t), len(fake_t))
    if size < 2:
        raise ValueError(
            f"KID needs at least 2 images on each side, got {len(real_t)} real and {len(fake_t)} generated"
        )
    # Subsets as large as both samples are all the same pair of sets: one is enough.
    draws = 1 if size == len(real_t) == len(fake_t) else subsets
    generator = torch.Generator().manual_seed(seed)
    values = torch.stack(
        [
            mmd2_unbiased(
                real_t[torch.randperm(len(real_t), generator=generator)[:size]],
                fake_t[torch.randperm(len(fake_t), generator=generator)[:size]],
            )
            for _ in range(draws)
        ]
    )
    # One subset has no spread: None rather than a std that is rounding noise.
    std = values.std(correction=0).item() if draws > 1 else None
    return values.mean().item(), std
