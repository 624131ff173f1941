"""FID, KID and IS against independent reference computations on random features."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg

from distgan.evaluation.fid import feature_statistics, frechet_distance
from distgan.evaluation.inception_score import inception_score
from distgan.evaluation.kid import kernel_inception_distance, mmd2_unbiased


def _two_samples(n: int = 400, dim: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) * 0.5
    b = rng.normal(loc=0.3, size=(n, dim)) @ rng.normal(size=(dim, dim)) * 0.7
    return a.astype(np.float32), b.astype(np.float32)


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def test_statistics_are_float64_mean_and_unbiased_covariance():
    a, _ = _two_samples()
    mu, sigma = feature_statistics(a)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, a.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(a.astype(np.float64), rowvar=False), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_scipy_sqrtm(seed: int):
    a, b = _two_samples(seed=seed)
    ours = frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert ours == pytest.approx(_scipy_fid(a, b), rel=1e-7)
    assert ours > 1.0  # the two samples really differ


def test_frechet_distance_of_a_sample_with_itself_is_zero():
    a, _ = _two_samples()
    stats = feature_statistics(a)
    assert abs(frechet_distance(*stats, *stats)) < 1e-8


def _plain_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written as the definition's sums."""
    m, d = x.shape

    def k(u: np.ndarray, v: np.ndarray) -> float:
        return (float(np.dot(u, v)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_mmd2_matches_the_plain_sums():
    a, b = _two_samples(n=40, dim=8)
    a, b = a.astype(np.float64), b.astype(np.float64)
    assert mmd2_unbiased(*map(__import__("torch").from_numpy, (a, b))).item() == pytest.approx(
        _plain_mmd2(a, b), rel=1e-10
    )


def test_kid_with_whole_sets_as_the_one_subset_is_the_plain_mmd():
    a, b = _two_samples(n=40, dim=8)
    mean, std = kernel_inception_distance(a, b, subsets=1, subset_size=40)
    assert mean == pytest.approx(_plain_mmd2(a.astype(np.float64), b.astype(np.float64)), rel=1e-6)
    assert std is None  # one subset has no spread to report (not a rounding-error 1e-16)
    # 100 subsets as large as both samples are 100 copies of the same pair: no spread either.
    assert kernel_inception_distance(a, b, subsets=100, subset_size=1000) == (mean, None)


def test_kid_subsets_average_the_plain_mmd_of_each_subset():
    a, b = _two_samples(n=60, dim=8)
    mean, std = kernel_inception_distance(a, b, subsets=3, subset_size=20, seed=5)
    import torch

    gen = torch.Generator().manual_seed(5)
    values = []
    for _ in range(3):
        i = torch.randperm(60, generator=gen)[:20].numpy()
        j = torch.randperm(60, generator=gen)[:20].numpy()
        values.append(_plain_mmd2(a[i].astype(np.float64), b[j].astype(np.float64)))
    assert mean == pytest.approx(np.mean(values), rel=1e-6)
    # torch-fidelity's convention: the population std (ddof=0), not the sample std.
    assert std == pytest.approx(np.std(values, ddof=0), rel=1e-5)
    assert std != pytest.approx(np.std(values, ddof=1), rel=1e-3)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(0)
    same = kernel_inception_distance(
        rng.normal(size=(500, 16)), rng.normal(size=(500, 16)), subsets=20, subset_size=200
    )[0]
    a, b = _two_samples(n=500, dim=16)
    different = kernel_inception_distance(a, b, subsets=20, subset_size=200)[0]
    assert abs(same) < 0.01 < different


def test_inception_score_bounds():
    # Uniform predictions: IS 1. Confident, evenly spread over K classes: IS K.
    assert inception_score(np.zeros((100, 10)), splits=2)[0] == pytest.approx(1.0)
    confident = np.full((100, 10), -50.0)
    confident[np.arange(100), np.arange(100) % 10] = 50.0
    assert inception_score(confident, splits=2)[0] == pytest.approx(10.0, rel=1e-6)


def test_inception_score_std_is_the_population_std_of_the_splits():
    logits = np.random.default_rng(3).normal(scale=3.0, size=(80, 10))
    scores = []
    for part in np.array_split(logits, 4):  # the splits by hand: IS_k = exp(mean KL(p(y|x) || p(y)))
        p = np.exp(part - part.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        marginal = p.mean(0)
        scores.append(np.exp((p * (np.log(p) - np.log(marginal))).sum(1).mean()))
    mean, std = inception_score(logits, splits=4)
    assert mean == pytest.approx(np.mean(scores), rel=1e-9)
    assert std == pytest.approx(np.std(scores, ddof=0), rel=1e-9)
    assert std != pytest.approx(np.std(scores, ddof=1), rel=1e-3)
