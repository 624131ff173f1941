"""Frechet distance between Gaussians fitted to features, in float64."""

from __future__ import annotations

import numpy as np
import torch


def feature_statistics(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, N-1) covariance of [N, D] features, in float64."""
    x = torch.as_tensor(features).double().cpu()
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need [N >= 2, D] features, got shape {tuple(x.shape)}")
    mu = x.mean(0)
    centred = x - mu
    sigma = centred.T @ centred / (x.shape[0] - 1)
    return mu.numpy(), sigma.numpy()


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

    tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2, which are
    real and non-negative for covariance matrices; their tiny negative or imaginary rounding
    parts are dropped. This avoids an iterative sqrtm (tested against scipy's).
    """
    m1, m2 = torch.as_tensor(mu1).double(), torch.as_tensor(mu2).double()
    s1, s2 = torch.as_tensor(sigma1).double(), torch.as_tensor(sigma2).double()
    eigenvalues = torch.linalg.eigvals(s1 @ s2).real.clamp(min=0)
    trace_sqrt = eigenvalues.sqrt().sum()
    distance = (m1 - m2).square().sum() + s1.trace() + s2.trace() - 2 * trace_sqrt
    return float(distance)
