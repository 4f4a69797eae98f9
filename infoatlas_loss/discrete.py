"""Discrete and tied data: detection, exact plug-in MI of discrete pairs, dequantisation.

The estimator reads normal scores, a continuous representation.  A discrete column maps
to a few atoms there, which the pretrained hypernetwork never saw: three binarised
Gaussian pairs (0.81 nats) read about -0.08.  Breaking the ties at random (``ties=
"jitter"``: X + U with U uniform over one level gap keeps I(X; Y) exactly) turns the
atoms into a copula density that is constant on blocks; the estimator, whose critic is
close to the Gaussian-copula term there, reads that far below the truth, since random
order inside a level shrinks the normal-score correlation (by 2 / pi for a binary pair).

So when both variables are discrete (few distinct rows relative to n), ``ties="auto"``
computes MI from the table of joint counts (plug-in with the Miller-Madow correction):
exact up to O(1 / n) for the table sizes admitted.  Pairs with a continuous side keep the
estimator, with tie-aware soft-rank bandwidths (``softrank.py``); the discrete side is
first relabelled as one column of level codes ordered along the other variable, since
codes whose order does not follow the dependence (category codes, several binary
columns) read near zero otherwise.
"""
from __future__ import annotations

import math

import torch

from .counter_rng import normals
from .softrank import _distinct_gaps

TIES = ("auto", "jitter", "off")
"""``ties`` options: ``"auto"`` (plug-in MI for discrete pairs), ``"jitter"`` (random
tie-breaking within one level gap before the soft rank), ``"off"`` (ties left as atoms,
plain soft-rank bandwidths)."""

LEVELS_FRACTION = 0.1
"""A variable counts as discrete when it has at most this fraction of n distinct rows (at
least 10 samples per level on average)."""

CELLS_FRACTION = 0.2
"""The plug-in is used when the occupied cells of the joint table are at most this fraction
of n (at least 5 samples per occupied cell on average, the chi-square rule of thumb); in
sparser tables (many binary columns, say) its bias is too large and the estimator runs."""

# streams of a dataset's seed for the tie-breaking uniforms of x and y (estimator.py
# uses 0 and 1)
JITTER_STREAMS = (2, 3)


def check_ties(ties: str) -> str:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    return ties


def _distinct_counts(v: torch.Tensor) -> torch.Tensor:
    """Distinct values of every column: v (B, n, d) -> (B, d)."""
    s, _ = torch.sort(v.detach(), dim=1)
    return 1 + (s[:, 1:] != s[:, :-1]).sum(dim=1)


def _codes(v: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Level index of every row of v (n, d) -> (n,) int64 codes and the number of levels."""
    _, inv = torch.unique(v.detach(), dim=0, return_inverse=True)
    return inv, int(inv.max()) + 1


def _entropy(counts: torch.Tensor, n: int) -> torch.Tensor:
    p = counts[counts > 0].double() / n
    return -(p * p.log()).sum()


def plugin_mi(cx: torch.Tensor, cy: torch.Tensor, kx: int, ky: int) -> float:
    """Plug-in MI in nats of paired codes cx, cy (n,) with the Miller-Madow correction.

    I = H(X) + H(Y) - H(X, Y) from the empirical joint pmf, minus (Kxy - Kx - Ky + 1) / (2n)
    with K the number of occupied cells: the first-order bias of the plug-in (about
    (Kx - 1)(Ky - 1) / (2n) under independence).  May dip slightly below zero.
    """
    n = cx.numel()
    joint = torch.bincount(cx * ky + cy, minlength=kx * ky)
    hx = _entropy(torch.bincount(cx, minlength=kx), n)
    hy = _entropy(torch.bincount(cy, minlength=ky), n)
    k_xy, k_x, k_y = int((joint > 0).sum()), int(cx.unique().numel()), int(cy.unique().numel())
    return float(hx + hy - _entropy(joint, n)) - (k_xy - k_x - k_y + 1) / (2 * n)


def discrete_mi(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Plug-in MI of the datasets of a batch whose two variables are both discrete.

    x (B, n, dx), y (B, n, dy) -> (mi (B,) float64 in nats, 0 where not discrete;
    discrete (B,) bool).  A variable is discrete when it has at most ``LEVELS_FRACTION * n``
    distinct rows; the count of distinct values per column screens continuous data cheaply.
    The pair also needs a dense enough joint table (``CELLS_FRACTION``).
    """
    b, n, _ = x.shape
    limit = level_limit(n)
    mi = torch.zeros(b, dtype=torch.float64)
    found = torch.zeros(b, dtype=torch.bool)
    few = _is_discrete(x) & _is_discrete(y)  # (B,)
    for i in few.nonzero().flatten().tolist():
        (cx, kx), (cy, ky) = _codes(x[i]), _codes(y[i])
        dense = int((cx * ky + cy).unique().numel()) <= CELLS_FRACTION * n
        if kx <= limit and ky <= limit and dense:
            mi[i], found[i] = plugin_mi(cx, cy, kx, ky), True
    return mi.to(x.device), found.to(x.device)


def _is_discrete(v: torch.Tensor) -> torch.Tensor:
    """Which datasets of v (B, n, d) pass the per-column screen for discreteness (B,)."""
    return (_distinct_counts(v) <= level_limit(v.shape[1])).all(-1)


def level_limit(n: int) -> int:
    """Most distinct rows a discrete variable of n samples may have."""
    return max(2, math.floor(LEVELS_FRACTION * n))


def _ordered_codes(v: torch.Tensor, other: torch.Tensor) -> torch.Tensor | None:
    """One column of level codes 0..K-1 for a discrete v (n, d), levels ordered by their
    mean position along the other variable's (n, do) main between-level direction; None
    when v has too many levels.  A relabelling of v's levels: MI unchanged."""
    codes, k = _codes(v)
    if k > level_limit(v.shape[0]):
        return None
    o = other.detach().double()
    o = torch.argsort(torch.argsort(o, dim=0), dim=0).double() / o.shape[0] - 0.5  # rank scores
    count = torch.bincount(codes, minlength=k).double()  # (K,)
    means = torch.zeros(k, o.shape[1], dtype=o.dtype).index_add_(0, codes, o) / count[:, None]
    c = means - (count[:, None] * means).sum(0) / count.sum()
    between = torch.einsum("k,ki,kj->ij", count, c, c)  # (do, do)
    w = torch.linalg.eigh(between).eigenvectors[:, -1]
    w = w * torch.sign(w[w.abs().argmax()])  # a fixed sign: deterministic order
    order = torch.argsort(c @ w, stable=True)
    position = torch.empty_like(order).scatter_(0, order, torch.arange(k))
    return position[codes].to(v.dtype)


def order_levels(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixed pairs: a discrete variable becomes one column of ordered level codes.

    x (B, n, dx), y (B, n, dy).  In a dataset where exactly one variable is discrete, its
    rows are relabelled 0..K-1 in the order of their mean along the other variable's main
    between-level direction (column 0; further columns set to 0, i.e. constant, so they
    become noise padding).  A bijection of the levels, so MI is unchanged, but several
    binary columns or category codes with a non-monotone relation become one monotone
    ordinal column, which the estimator reads well.  The relabelled variable has zero
    gradient (it was piecewise constant).  Shapes are kept.
    """
    dx, dy = _is_discrete(x), _is_discrete(y)
    if not bool((dx ^ dy).any()):
        return x, y
    x, y = x.clone(), y.clone()
    for v, other, flag in ((x, y, dx & ~dy), (y, x, dy & ~dx)):
        for i in flag.nonzero().flatten().tolist():
            col = _ordered_codes(v[i], other[i])
            if col is not None:
                v[i] = 0.0
                v[i, :, 0] = col
    return x, y


def dequantise(v: torch.Tensor, seeds: torch.Tensor, rank: torch.Tensor, stream: int
               ) -> torch.Tensor:
    """Random tie-breaking: every tied value moves up by U * (gap to the next level).

    v (B, n, d); one int64 seed per dataset (B,); ``rank`` (B, n) lays the uniforms out in
    the canonical row order (as the noise padding), so they follow the rows.  U ~ U(0, 1)
    from ``stream`` of each seed (scaled to [0, 0.99)); the top level moves by its gap below.  The
    levels' intervals stay disjoint, so X + U determines X and I(X + U; Y + V) = I(X; Y).
    Untied values are returned unchanged (bit for bit); gradients pass through as identity.
    """
    b, n, d = v.shape
    s, order = torch.sort(v.detach(), dim=1)  # (B, n, d)
    st = s.transpose(1, 2)  # (B, d, n)
    _, up = _distinct_gaps(st)
    tied = torch.zeros_like(st, dtype=torch.bool)
    same = st[..., 1:] == st[..., :-1]
    tied[..., 1:] |= same
    tied[..., :-1] |= same
    step = torch.where(tied, up, torch.zeros_like(up)).transpose(1, 2)  # sorted rows (B, n, d)
    step = torch.empty_like(step).scatter_(1, order, step)  # back to input rows
    g = normals(seeds.to(torch.int64).to(v.device), (n, d), stream=stream)
    # uniforms (B, n, d), float64, kept below 0.99 so no value reaches the next level
    u = 0.99 * 0.5 * (1 + torch.erf(g / math.sqrt(2)))
    u = torch.gather(u, 1, rank.unsqueeze(-1).expand(-1, -1, d)).to(v.dtype)
    return v + u * step
