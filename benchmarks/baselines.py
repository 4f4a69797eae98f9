"""Classical mutual-information estimators used as baselines; all return nats.

* ``ksg``: Kraskov, Stögbauer & Grassberger (2004), algorithm 1 (k nearest neighbours,
  max-norm in the joint space).
* ``gaussian_mi``: MI of the Gaussian fitted to the sample covariance (equivalently the
  canonical-correlation formula -1/2 sum log(1 - rho_i^2)); exact for Gaussian data.
* ``gaussian_copula_mi``: ``gaussian_mi`` on the normal scores of the per-column ranks;
  invariant to strictly increasing marginal maps, exact for Gaussian-copula data.

Every function takes x of shape (n, dx) and y of shape (n, dy) (1-D arrays are read as
one column) and is deterministic.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma, ndtri
from scipy.stats import rankdata


def _as2d(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    a = a[:, None] if a.ndim == 1 else a
    if a.ndim != 2:
        raise ValueError(f"expected an (n, d) array, got shape {a.shape}")
    return a


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as2d(x), _as2d(y)
    if len(x) != len(y):
        raise ValueError(f"x and y need the same number of rows, got {len(x)} and {len(y)}")
    return x, y


def _zscore(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def ksg(x, y, k: int = 10, standardize: bool = True) -> float:
    """KSG estimator (algorithm 1) of I(X; Y) in nats.

    For each point i, eps_i is the max-norm distance to its k-th nearest neighbour in the
    joint space (max over the X and Y max-norms); n_x(i), n_y(i) count the other points
    strictly within eps_i in the X and Y spaces.  Then
    I = psi(k) + psi(n) - mean(psi(n_x + 1) + psi(n_y + 1)).

    Args:
        x: (n, dx) samples.  y: (n, dy) samples.
        k: neighbours (Kraskov et al. suggest 2-10; bmi uses 10).
        standardize: z-score every column first (the max-norm mixes units otherwise).

    Returns:
        MI estimate in nats (can be slightly negative for independent data).
    """
    x, y = _pair(x, y)
    n = len(x)
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1..n-1, got k={k}, n={n}")
    if standardize:
        x, y = _zscore(x), _zscore(y)
    joint = np.hstack([x, y])
    # k + 1 because the query point itself is returned at distance 0
    dist, _ = cKDTree(joint).query(joint, k=k + 1, p=np.inf)
    eps = dist[:, -1]
    # "strictly within": shrink the radius by one ulp (query_ball_point counts <= r)
    r = np.nextafter(eps, 0.0)
    nx = cKDTree(x).query_ball_point(x, r, p=np.inf, return_length=True) - 1
    ny = cKDTree(y).query_ball_point(y, r, p=np.inf, return_length=True) - 1
    return float(digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1)))


def gaussian_mi(x, y) -> float:
    """MI (nats) of the Gaussian with the sample covariance of (x, y):
    1/2 [log det C_xx + log det C_yy - log det C].
    """
    x, y = _pair(x, y)
    dx = x.shape[1]
    c = np.atleast_2d(np.cov(np.hstack([x, y]), rowvar=False))
    ld = lambda m: np.linalg.slogdet(m)[1]  # noqa: E731
    return float(0.5 * (ld(c[:dx, :dx]) + ld(c[dx:, dx:]) - ld(c)))


def normal_scores(a: np.ndarray) -> np.ndarray:
    """Per-column Phi^{-1}(rank / (n + 1)) of an (n, d) array (average ranks for ties)."""
    a = _as2d(a)
    return ndtri(rankdata(a, axis=0) / (len(a) + 1))


def gaussian_copula_mi(x, y) -> float:
    """``gaussian_mi`` of the normal scores of the ranks (nats)."""
    x, y = _pair(x, y)
    return gaussian_mi(normal_scores(x), normal_scores(y))
