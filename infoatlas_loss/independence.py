"""Permutation test of independence with the MI estimate as its statistic, in one pass.

Per-dataset estimators cannot afford hundreds of permutations; here the observed pairing
and ``num_permutations`` row permutations of y are a batch of datasets for one forward pass.
Every dataset gets the same slices and the same padding noise, so under independence the
observed statistic and the permuted ones are exchangeable and the p-value
(1 + #{null >= observed}) / (1 + num_permutations) is valid at any sample size.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from einops import repeat

from .checks import as_pair
from .functional import _resolve, sliced_mi
from .model import InfoAtlas


@dataclass(frozen=True)
class MITestResult:
    """Outcome of :func:`mi_test`.

    Attributes:
        mi: the statistic on the observed pairing, in nats (the MI estimate for variables of
            at most ``max_dim`` columns, k-sliced MI for wider ones).
        p_value: permutation p-value with the +1 correction, in (0, 1].
        null_mean, null_std: mean and standard deviation of the statistic over the
            permutations (nats): what independence looks like at this n.
        num_permutations: permutations scored.
        n: samples.
        seconds: wall time of the test.
    """

    mi: float
    p_value: float
    null_mean: float
    null_std: float
    num_permutations: int
    n: int
    seconds: float


@torch.no_grad()
def mi_test(X, Y, *, num_permutations: int = 199, model: InfoAtlas | str | None = None,
            num_slices: int = 32, seed: int = 0, chunk_size: int = 64,
            device: str | torch.device | None = None) -> MITestResult:
    """Test H0: X and Y independent, with the MI estimate as the statistic.

    Args:
        X: (n, dx) samples (numpy or torch; a 1-D array is one column).
        Y: (n, dy) samples, paired row by row with X.
        num_permutations: row permutations of Y scored with the observed pairing in one
            batched pass; the smallest attainable p-value is 1 / (num_permutations + 1).
        model: an ``InfoAtlas``, a registered name, or None for ``"infoatlas-base"``.
        num_slices: slices when a variable is wider than ``max_dim`` (shared by all pairings).
        seed: seeds the permutations, slices and padding noise (deterministic).
        chunk_size: datasets per forward pass (bounds memory).
        device: where to compute (default: the input's device).

    Returns:
        :class:`MITestResult`; reject independence at level alpha when ``p_value <= alpha``.
    """
    t0 = time.perf_counter()
    if int(num_permutations) < 1:
        raise ValueError(f"num_permutations must be >= 1, got {num_permutations}")
    x, y = as_pair(X, Y, "mi_test", device)
    net = _resolve(model, x.device)
    g = torch.Generator().manual_seed(seed)
    n, p = x.shape[0], int(num_permutations)
    perms = torch.argsort(torch.rand(p, n, generator=g), dim=1).to(x.device)  # (P, n)
    ident = torch.arange(n, device=x.device).unsqueeze(0)
    idx = torch.cat([ident, perms])  # (1 + P, n): the observed pairing first
    ys = y[idx]  # (1 + P, n, dy)
    xs = repeat(x, "n d -> b n d", b=p + 1)
    # one generator draw for the whole batch: every pairing shares slices and padding noise
    stats = sliced_mi(xs, ys, model=net, num_slices=num_slices, generator=g,
                      reduction="none", chunk_size=chunk_size).double()
    observed, null = stats[0], stats[1:]
    p_value = (1 + int((null >= observed).sum())) / (p + 1)
    return MITestResult(mi=float(observed), p_value=p_value, null_mean=float(null.mean()),
                        null_std=float(null.std()) if p > 1 else 0.0, num_permutations=p,
                        n=n, seconds=time.perf_counter() - t0)
