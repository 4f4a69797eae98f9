"""Pairwise mutual information between many variables, every pair in batched passes.

Each column of a table (or each named group of columns) is a variable; the estimator
scores every unordered pair {i, j} as one dataset of a batch, so a p-variable table costs
p (p - 1) / 2 datasets through the frozen hypernetwork.  Optional permutation p-values add
``num_permutations`` row permutations of the second variable of every pair to the same
batches, scored with the same padding noise as the observed pairing (as in ``mi_test``).

The cost of one pair grows about linearly with the number of rows (timings and accuracy in
``benchmarks/results/mi_matrix``), so ``max_rows`` scores a random subset of the rows when
the full table would take too long.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange, repeat
from tqdm.auto import tqdm

from .checks import MIN_SAMPLES, as_tensor
from .counter_rng import split_seeds
from .estimator import dataset_seeds
from .functional import DEBIAS_BELOW, _estimates, _resolve, _standardize
from .model import InfoAtlas
from .projection import crossfit_projections


@dataclass(frozen=True)
class MIMatrix:
    """Outcome of :func:`mi_matrix`.

    Attributes:
        mi: (p, p) float64 array of pairwise MI estimates in nats, symmetric; the diagonal
            is NaN (a variable's MI with itself is its entropy, infinite for continuous
            data).  Estimates are >= 0 in expectation; independent pairs scatter around 0
            and can dip slightly below it.
        p_value: (p, p) permutation p-values of independence in (0, 1] (NaN diagonal),
            or None when not requested.
        names: the p variable names, in the order of the rows and columns of ``mi``.
        n: rows scored per pair (after ``max_rows`` subsampling).
        num_rows: rows in the input table.
        num_permutations: permutations per pair behind ``p_value`` (0 without p-values).
        seconds: wall time of the whole matrix.
    """

    mi: np.ndarray
    p_value: np.ndarray | None
    names: tuple[str, ...]
    n: int
    num_rows: int
    num_permutations: int
    seconds: float


def _table(data, device) -> tuple[torch.Tensor, list[str] | None]:
    """(n, p) numpy array, tensor or data frame -> validated tensor and its column names."""
    columns = getattr(data, "columns", None)
    t = as_tensor(data.to_numpy() if hasattr(data, "to_numpy") else data, "data")
    if t.dim() != 2:
        raise ValueError(f"data must be an (n, p) table with one variable per column, got shape "
                         f"{tuple(t.shape)}")
    if t.shape[0] < MIN_SAMPLES:
        raise ValueError(f"too few rows: got {t.shape[0]}, need at least {MIN_SAMPLES}")
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        row, col = (~finite).nonzero()[0].tolist()
        kind = "NaN" if bool(torch.isnan(t).any()) else "Inf"
        raise ValueError(f"data contains {kind} values (first at row {row}, column {col})")
    names = None if columns is None else [str(c) for c in columns]
    return (t if device is None else t.to(device)), names


def _variables(p: int, groups: dict | None, names, columns: list[str] | None
               ) -> tuple[tuple[str, ...], list[list[int]]]:
    """Variable names and the column indices of each variable, checked against p columns."""
    if groups is None:
        names = names if names is not None else columns or [str(i) for i in range(p)]
        if len(names) != p:
            raise ValueError(f"names has {len(names)} entries for {p} columns")
        cols = [[i] for i in range(p)]
    else:
        if names is not None:
            raise ValueError("pass names or groups, not both: groups are named by their keys")
        names, cols = [], []
        for name, idx in groups.items():
            idx = list(np.atleast_1d(np.asarray(idx)).tolist())
            if not idx:
                raise ValueError(f"group {name!r} has no columns")
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in idx):
                raise ValueError(f"group {name!r} must list integer column indices, got {idx}")
            bad = [i for i in idx if not -p <= i < p]
            if bad:
                raise ValueError(f"group {name!r} has column indices {bad} outside the table's "
                                 f"{p} columns")
            idx = [i % p for i in idx]
            if len(set(idx)) != len(idx):
                raise ValueError(f"group {name!r} lists a column twice: {idx}")
            names.append(str(name))
            cols.append(idx)
    if len(cols) < 2:
        raise ValueError(f"mi_matrix needs at least 2 variables, got {len(cols)}")
    return tuple(str(s) for s in names), cols


def _score(net: InfoAtlas, xs: torch.Tensor, ys: torch.Tensor, seeds: torch.Tensor, *,
           debias: bool, root: torch.Tensor, generator: torch.Generator, chunk_size: int
           ) -> torch.Tensor:
    """MI in nats (B,) of standardized pairings xs (B, n, dx), ys (B, n, dy), one seed each.

    Variables of at most ``max_dim`` columns go in whole; wider ones are projected on
    cross-fitted canonical subspaces and the two halves' estimates averaged, as in
    ``estimate_mi``.
    """
    md = net.config.max_dim
    dtype = next(net.parameters()).dtype
    kw = dict(num_shifts=None, chunk_size=chunk_size, debias=debias, root=root)
    if max(xs.shape[-1], ys.shape[-1]) <= md:
        return _estimates(net, xs.to(dtype), ys.to(dtype), seeds, **kw)
    hx, hy = crossfit_projections(xs, ys, md, generator=generator)  # (2B, n // 2, <= md)
    est = _estimates(net, hx.to(dtype), hy.to(dtype), seeds.repeat(2), **kw)
    return rearrange(est, "(two b) -> two b", two=2).mean(0)


def _pairs_by_width(cols: list[list[int]]) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """Unordered pairs (pair index, i, j), i < j, bucketed by the widths of i and j, so that
    every batch holds variables of one shape; pair indices follow row-major order."""
    buckets: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    q = 0
    for i in range(len(cols)):
        for j in range(i + 1, len(cols)):
            buckets.setdefault((len(cols[i]), len(cols[j])), []).append((q, i, j))
            q += 1
    return buckets


@torch.no_grad()
def mi_matrix(data, *, groups: dict[str, list[int]] | None = None, names=None,
              p_values: bool = False, num_permutations: int = 99, seed: int = 0,
              model: InfoAtlas | str | None = None, max_rows: int | None = None,
              debias: bool | None = None, chunk_size: int = 64,
              device: str | torch.device | None = None, progress: bool = False) -> MIMatrix:
    """Mutual information in nats between every pair of variables of a table.

    Args:
        data: (n, p) numpy array, tensor or data frame; each column is a variable unless
            ``groups`` is given.
        groups: ``{"name": [column indices], ...}``: each group is one multivariate
            variable (groups wider than the model's ``max_dim`` are projected on
            cross-fitted canonical subspaces, as ``estimate_mi`` does).  Groups may share
            columns; such pairs get large estimates.
        names: names of the p columns (default: a data frame's column names, else "0",
            "1", ...); only without ``groups``.
        p_values: also compute permutation p-values of independence for every pair:
            ``num_permutations`` row permutations (shared by all pairs) of the second
            variable are scored in the same batches, costing ``1 + num_permutations`` times
            as much.
        num_permutations: permutations per pair; the smallest p-value is 1 / (1 + this).
        seed: seeds the row subsample, the permutations and the padding noise.
        model: an ``InfoAtlas``, a registered name, or None for ``"infoatlas-base"``.
        max_rows: score a random subset of this many rows (all rows when None or when the
            table is shorter).  Time per pair is about linear in the rows scored; fewer rows
            give noisier estimates and a larger small-n offset.
        debias: subtract a permutation-null estimate made with the same padding noise
            (default: when fewer than ``DEBIAS_BELOW`` rows are scored, as ``estimate_mi``);
            with ``p_values`` the mean of the permutation estimates is subtracted instead.
            Without ``p_values`` this doubles the cost.
        chunk_size: datasets per forward pass (bounds memory; results do not depend on it
            for variables of at most ``max_dim`` columns).
        device: where to compute (default: the input's device).
        progress: show a progress bar over the pairs (tqdm).

    Returns:
        :class:`MIMatrix` with the symmetric (p, p) ``mi`` (NaN diagonal) and, with
        ``p_values``, the (p, p) ``p_value`` in (0, 1].  Each pair is estimated once, with
        the variable listed first as x.  Deterministic for a given ``seed``.
    """
    t0 = time.perf_counter()
    if p_values and int(num_permutations) < 1:
        raise ValueError(f"num_permutations must be >= 1, got {num_permutations}")
    if max_rows is not None and int(max_rows) < MIN_SAMPLES:
        raise ValueError(f"max_rows must be at least {MIN_SAMPLES}, got {max_rows}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    table, columns = _table(data, device)
    names, cols = _variables(table.shape[1], groups, names, columns)
    net = _resolve(model, table.device)
    g = torch.Generator().manual_seed(seed)
    num_rows = table.shape[0]
    if max_rows is not None and max_rows < num_rows:
        keep = torch.randperm(num_rows, generator=g)[:int(max_rows)].to(table.device)
        table = table[keep]
    n = table.shape[0]
    debias = n < DEBIAS_BELOW if debias is None else bool(debias)
    dtype = next(net.parameters()).dtype
    # z-score in the input's precision (at least the model's); cast per batch
    table = _standardize(table.unsqueeze(0).to(torch.promote_types(table.dtype, dtype)))[0]
    k = int(num_permutations) if p_values else 0
    perms = torch.argsort(torch.rand(k, n, generator=g), dim=1).to(table.device)  # (P, n)
    rows = torch.cat([torch.arange(n, device=table.device).unsqueeze(0), perms])  # (1 + P, n)
    root = dataset_seeds(1, g, table.device)
    p = len(cols)
    pair_seeds = split_seeds(root, p * (p - 1) // 2).cpu()  # one per unordered pair
    mi = np.full((p, p), np.nan)
    pv = np.full((p, p), np.nan) if p_values else None
    step = max(1, chunk_size // (1 + k))  # pairs per batch
    bar = tqdm(total=p * (p - 1) // 2, desc="MI matrix", unit="pair", disable=not progress)
    for pairs in _pairs_by_width(cols).values():
        for start in range(0, len(pairs), step):
            q, i, j = (np.array(c) for c in zip(*pairs[start:start + step]))
            xi = torch.tensor([cols[a] for a in i], device=table.device)  # (b, dx)
            yj = torch.tensor([cols[a] for a in j], device=table.device)  # (b, dy)
            xs = rearrange(table[:, xi], "n b d -> b n d")
            ys = rearrange(table[:, yj][rows], "r n b d -> b r n d")  # (b, 1 + P, n, dy)
            est = _score(net, repeat(xs, "b n d -> (b r) n d", r=1 + k),
                         rearrange(ys, "b r n d -> (b r) n d"),
                         repeat(pair_seeds[q], "b -> (b r)", r=1 + k).to(table.device),
                         debias=debias and not p_values, root=root, generator=g,
                         chunk_size=chunk_size)
            est = rearrange(est.double().cpu(), "(b r) -> b r", r=1 + k)
            obs = est[:, 0]
            if p_values:
                null = est[:, 1:]
                pv[i, j] = pv[j, i] = (1 + (null >= obs[:, None]).sum(1).numpy()) / (1 + k)
                if debias:
                    obs = obs - null.mean(1)
            mi[i, j] = mi[j, i] = obs.numpy()
            bar.update(len(q))
    bar.close()
    return MIMatrix(mi=mi, p_value=pv, names=names, n=n, num_rows=num_rows,
                    num_permutations=k, seconds=time.perf_counter() - t0)
