"""Standard error and confidence interval of ``estimate_mi`` by half-sampling, in one pass.

The spread of an estimate over fresh samples is estimated from the data at hand by
scoring many subsamples of m rows drawn *without replacement* (a bootstrap with
replacement would duplicate rows, and tied rows are not data the estimator was trained
on).  For a statistic with variance sigma^2 / n, a subsample of m of the n rows varies
around the full-sample value with variance sigma^2 (1/m - 1/n) (the finite-population
correction), so

    Var(estimate at n) ~ m / (n - m) * Var(subsample estimates),

the delete-d jackknife (Shao & Wu 1989) with d = n - m; unlike the delete-1 jackknife it
stays consistent for non-smooth statistics (ranks, a DV bound) when d / n stays fixed.
The default m = n / 2 makes the factor 1 (half-sampling), and the two halves of one random
split are both used (complementary halves).  Every subsample is an independent dataset of
one batch, scored in a single batched forward pass, each with its own padding noise, so
the estimator's own randomness is part of the spread.

What varies, by kind of estimate (``estimate_mi``'s ``method``):

* ``"whole"``: the rows and the estimator's padding noise.
* ``"projected"`` (a variable wider than ``max_dim``): every subsample is split into its
  own halves and fits its own canonical projections, so the split and the projection fit
  vary with the rows.  The fit uses half as many rows as the full estimate's, so the spread
  tends to be somewhat wider (conservative) and the subsample mean lower.
* ``"sliced"``: all subsamples share one set of ``resample_slices`` random slices (the
  spread is over rows), and the slice Monte-Carlo error of the point estimate (the
  spread over its ``num_slices`` slices / sqrt(num_slices)) is added in quadrature.
  Fewer slices per subsample than in the estimate make the row spread conservative.

The interval is mi +- z * stderr with the normal quantile z of ``level``.  It covers the
estimator's *expectation* at n rows: the estimator's bias (a DV lower bound that misses
part of strong or unusual dependence) is not in it; ``benchmarks/coverage.py`` measures
both coverages.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from statistics import NormalDist

import torch
from einops import rearrange

from .checks import MIN_SAMPLES, as_pair
from .counter_rng import split_seeds
from .estimator import dataset_seeds
from .functional import (DEBIAS_BELOW, WIDE_METHODS, _estimates, _resolve, _standardize,
                         estimate_mi, sliced_mi)
from .model import InfoAtlas
from .projection import crossfit_projections


@dataclass(frozen=True)
class MIInterval:
    """An MI estimate with its standard error and a confidence interval, all in nats.

    Attributes:
        mi: the point estimate, ``estimate_mi(X, Y, ...).mi`` with the same settings.
        stderr: estimated standard deviation of ``mi`` over fresh samples of n rows (and
            over the estimator's own randomness), >= 0.
        low, high: ``mi -+ z * stderr`` with z the two-sided normal quantile of ``level``
            (not clipped at 0: the estimator's expectation can be slightly negative).
        level: nominal coverage, in (0, 1).
        method: ``"half-sampling"`` (m = n / 2), ``"subsampling"`` (other m), with
            ``"+slices"`` when the slice Monte-Carlo error is added.
        estimate: how ``estimate_mi`` handled the variables (``"whole"``, ``"projected"``,
            ``"sliced"``).
        n: rows.
        subsample_size: rows m per subsample.
        num_resamples: subsamples scored.
        resample_mean: mean of the subsample estimates (nats; the estimate at m rows, for
            a look at how the estimate moves with the sample size).
        seconds: wall time, point estimate included.
    """

    mi: float
    stderr: float
    low: float
    high: float
    level: float
    method: str
    estimate: str
    n: int
    subsample_size: int
    num_resamples: int
    resample_mean: float
    seconds: float

    def __float__(self) -> float:
        return self.mi


def subsample_indices(n: int, m: int, num: int, generator: torch.Generator) -> torch.Tensor:
    """Row indices (num, m) of ``num`` subsamples of m of n rows, without replacement.

    When 2 m <= n, each random permutation gives two disjoint subsamples (its first m rows
    and the next m), so with m = n / 2 the subsamples come in complementary halves.
    """
    if not 1 <= m < n:
        raise ValueError(f"subsample size must be in 1..{n - 1}, got {m}")
    pairs = 2 * m <= n
    perms = torch.argsort(torch.rand(math.ceil(num / 2) if pairs else num, n,
                                     generator=generator), dim=1)  # (P, n)
    if pairs:
        perms = rearrange(perms[:, :2 * m], "p (two m) -> (p two) m", two=2)
    return perms[:num, :m]


def scaled_stderr(estimates: torch.Tensor, n: int, m: int) -> float:
    """Standard error at n rows from estimates (R,) on subsamples of m rows:
    sqrt(m / (n - m) * sample variance) (delete-d jackknife scaling, d = n - m)."""
    if estimates.numel() < 2:
        raise ValueError(f"need at least 2 subsample estimates, got {estimates.numel()}")
    return math.sqrt(m / (n - m) * float(estimates.double().var()))


def _subsample_estimates(net: InfoAtlas, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, *,
                         estimate: str, num_slices: int, slice_dim: int | None, debias: bool,
                         chunk_size: int, generator: torch.Generator) -> torch.Tensor:
    """Estimates (R,) in nats of the subsamples x[idx], y[idx] (idx (R, m)), made the way
    ``estimate_mi`` made the point estimate (``estimate``), in one batched pass."""
    xs, ys = x[idx.to(x.device)], y[idx.to(y.device)]  # (R, m, dx), (R, m, dy)
    md = net.config.max_dim
    if estimate == "sliced":
        # one generator draw: every subsample shares the slices; the spread is over rows
        return sliced_mi(xs, ys, model=net, num_slices=num_slices, slice_dim=slice_dim,
                         generator=generator, reduction="none", chunk_size=chunk_size,
                         debias=debias).double()
    dtype = next(net.parameters()).dtype
    xs = _standardize(xs.to(torch.promote_types(xs.dtype, dtype)))
    ys = _standardize(ys.to(torch.promote_types(ys.dtype, dtype)))
    if estimate == "projected":
        k = md if slice_dim is None else int(slice_dim)
        xs, ys = crossfit_projections(xs, ys, k, generator=generator)  # (2R, m // 2, <= k)
    xs, ys = xs.to(dtype), ys.to(dtype)
    root = dataset_seeds(1, generator, x.device)
    seeds = split_seeds(root, xs.shape[0])  # own padding noise per dataset
    est = _estimates(net, xs, ys, seeds, num_shifts=None, chunk_size=chunk_size, debias=debias,
                     root=root).double()
    if estimate == "projected":  # the two cross-fitted halves of each subsample
        est = rearrange(est, "(two r) -> two r", two=2).mean(0)
    return est


@torch.no_grad()
def mi_interval(X, Y, *, level: float = 0.95, num_resamples: int = 32, fraction: float = 0.5,
                model: InfoAtlas | str | None = None, wide: str = "projected",
                num_slices: int = 128, resample_slices: int = 16, slice_dim: int | None = None,
                debias: bool | None = None, seed: int = 0, chunk_size: int = 64,
                device: str | torch.device | None = None) -> MIInterval:
    """MI estimate in nats with a standard error and a ``level`` confidence interval.

    Args:
        X: (n, dx) samples (numpy or torch; a 1-D array is one column).
        Y: (n, dy) samples, paired row by row with X.
        level: nominal two-sided coverage in (0, 1).
        num_resamples: subsamples scored (>= 2); the relative error of ``stderr`` is about
            1 / sqrt(2 num_resamples).
        fraction: subsample size m = round(fraction * n) rows, in (0, 1); the spread is
            rescaled by m / (n - m) (0.5: half-sampling, factor 1).
        model, wide, num_slices, slice_dim, debias, seed, device: as in ``estimate_mi``
            (``debias`` is resolved from the full n and used for the subsamples too).
        resample_slices: slices per subsample when ``wide="sliced"`` slices the variables.
        chunk_size: datasets per forward pass (bounds memory).

    Returns:
        :class:`MIInterval`.  Deterministic for a given ``seed``.

    Raises:
        ValueError: ``level`` outside (0, 1), ``fraction`` outside (0, 1), fewer than 2
            resamples, or subsamples too small for the estimator.
    """
    t0 = time.perf_counter()
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if int(num_resamples) < 2:
        raise ValueError(f"num_resamples must be >= 2, got {num_resamples}")
    if wide not in WIDE_METHODS:
        raise ValueError(f"wide must be one of {WIDE_METHODS}, got {wide!r}")
    if resample_slices < 1:
        raise ValueError(f"resample_slices must be >= 1, got {resample_slices}")
    x, y = as_pair(X, Y, "mi_interval", device)
    n = x.shape[0]
    debias = n < DEBIAS_BELOW if debias is None else bool(debias)
    net = _resolve(model, x.device)
    point = estimate_mi(x, y, model=net, wide=wide, num_slices=num_slices, slice_dim=slice_dim,
                        debias=debias, seed=seed)
    m = round(fraction * n)
    need = 2 * MIN_SAMPLES if point.method == "projected" else MIN_SAMPLES
    if m < need or m >= n:
        per = f"two halves of {MIN_SAMPLES}" if need > MIN_SAMPLES else "per dataset"
        raise ValueError(f"subsamples of {m} rows (fraction {fraction} of n = {n}) are outside "
                         f"{need}..{n - 1}; the estimator needs at least {need} rows ({per})")
    # a generator of its own, so the subsamples are not tied to the point estimate's draws
    g = torch.Generator().manual_seed(int(seed) + 0x5EED)
    idx = subsample_indices(n, m, int(num_resamples), g)
    est = _subsample_estimates(net, x, y, idx, estimate=point.method,
                               num_slices=min(resample_slices, num_slices), slice_dim=slice_dim,
                               debias=debias, chunk_size=chunk_size, generator=g)
    var = scaled_stderr(est, n, m) ** 2
    method = "half-sampling" if 2 * m == n else "subsampling"
    if point.method == "sliced":  # slice Monte-Carlo error of the point estimate
        var += point.stderr ** 2
        method += "+slices"
    se = math.sqrt(var)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return MIInterval(mi=point.mi, stderr=se, low=point.mi - z * se, high=point.mi + z * se,
                      level=float(level), method=method, estimate=point.method, n=n,
                      subsample_size=m, num_resamples=int(num_resamples),
                      resample_mean=float(est.mean()), seconds=time.perf_counter() - t0)
