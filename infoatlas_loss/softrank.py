"""Differentiable copula transform: soft ranks and normal scores of every marginal.

The soft rank of a value is a smooth empirical CDF: a mixture of logistic CDFs centred on
``m`` anchors (the sample's own order statistics at evenly spaced quantile levels), each
with a bandwidth set by the local anchor spacing.  Because the bandwidth adapts to the
local density, heavy tails (Cauchy, lognormal) do not collapse the transform to a linear
map, and for a fixed sample the map is strictly increasing, so MI is preserved exactly.
Cost is O(n log n + n * m) per column; memory is bounded by chunking over samples.
"""
from __future__ import annotations

import math

import torch
from einops import rearrange

# a column whose range is at most this fraction of its largest magnitude counts as constant
# (relative, so a column's units never decide it; exactly equal values always count)
_CONST_TOL = 1e-12


def _extremes(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    d = x.detach()
    return d.amax(dim=dim, keepdim=True), d.amin(dim=dim, keepdim=True)


def _constant(hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    return (hi - lo) <= _CONST_TOL * torch.maximum(hi.abs(), lo.abs())


def constant_columns(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Which columns are constant along ``dim`` (kept): range <= ``_CONST_TOL`` * max |x|.

    Scale-free: x and a * x give the same answer for any a > 0, so data in units of 1e-12
    is not mistaken for a constant; range and maximum are exact in any precision.
    """
    return _constant(*_extremes(x, dim))


def column_scale(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard deviation along ``dim`` (kept) that is safe to divide by and differentiate.

    Returns (scale, const): constant columns (:func:`constant_columns`) get scale 1, which
    keeps sqrt'(0) and 1/0 out of the graph (no NaN / Inf).  The variance is taken of the
    column divided by its range, so it neither overflows (values near 1e20 in float32) nor
    underflows; the range is a constant factor, so gradients are exact.
    """
    hi, lo = _extremes(x, dim)
    const = _constant(hi, lo)
    if x.shape[dim] < 2:
        return torch.ones_like(hi), const
    span = torch.where(const, torch.ones_like(hi), hi - lo)
    var = (x / span).var(dim=dim, keepdim=True)
    return torch.where(const, torch.ones_like(var), var).sqrt() * span, const


def _anchors(x: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """Order statistics at evenly spaced levels. x: (B, d, n) -> (B, d, m)."""
    n = x.shape[-1]
    s, _ = torch.sort(x, dim=-1)
    if n <= num_anchors:
        return s
    idx = torch.linspace(0, n - 1, num_anchors, device=x.device).round().long()
    return s[..., idx]


def _distinct_gaps(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance of every sorted anchor to the nearest *different* anchor below and above.

    a: (B, d, m) sorted, m >= 2 -> (left, right), each (B, d, m).  Anchors inside a run of
    equal values (ties) get the gaps of the run's distinct neighbours; without ties these
    are the plain neighbour spacings.  The first run borrows its right gap as its left one,
    the last run its left gap as its right one; a column of one value gets zeros.
    """
    m = a.shape[-1]
    idx = torch.arange(m, device=a.device).expand_as(a)
    new = torch.ones_like(a, dtype=torch.bool)
    new[..., 1:] = a[..., 1:] != a[..., :-1]  # first anchor of a run
    start = torch.where(new, idx, torch.zeros_like(idx)).cummax(dim=-1).values
    last = torch.ones_like(new)
    last[..., :-1] = new[..., 1:]  # last anchor of a run
    end = torch.where(last, idx, torch.full_like(idx, m - 1)).flip(-1).cummin(dim=-1).values.flip(-1)
    below = torch.gather(a, -1, (start - 1).clamp(min=0))
    above = torch.gather(a, -1, (end + 1).clamp(max=m - 1))
    left = torch.where(start > 0, a - below, torch.zeros_like(a))
    right = torch.where(end < m - 1, above - a, torch.zeros_like(a))
    return torch.where(start > 0, left, right), torch.where(end < m - 1, right, left)


def _bandwidths(a: torch.Tensor, scale: torch.Tensor, rel: float, ties: bool = True
                ) -> torch.Tensor:
    """Per-anchor logistic scale from the spacing of its neighbours. a: (B, d, m).

    With ``ties`` (default) the spacing is measured to the nearest distinct anchors, so a
    tied value (an atom of a discrete column, the zeros of a ReLU output) gets the width of
    its level rather than the floor: its soft rank keeps a slope of normal size.  Without
    ties both rules agree exactly.  ``ties=False`` uses plain neighbour gaps (zero inside a
    run of ties, where only the floor ``1e-3 * scale`` remains).
    """
    if a.shape[-1] == 1:
        return scale.expand_as(a)
    if ties:
        left, right = _distinct_gaps(a)
    else:
        gap = a[..., 1:] - a[..., :-1]  # (B, d, m-1)
        left = torch.cat([gap[..., :1], gap], dim=-1)
        right = torch.cat([gap, gap[..., -1:]], dim=-1)
    # floor relative to the column scale keeps ties and discrete data from giving huge slopes
    return rel * 0.5 * (left + right) + 1e-3 * scale


def soft_rank(x: torch.Tensor, *, num_anchors: int = 64, bandwidth: float = 0.5,
              chunk_size: int = 4096, ties: bool = True) -> torch.Tensor:
    """Soft normalised ranks in (0, 1) of every column.

    Args:
        x: samples, shape (n, d) or (B, n, d).
        num_anchors: quantile anchors of the smooth CDF (all samples when n is smaller).
        bandwidth: logistic scale as a multiple of the local anchor spacing.
        chunk_size: samples evaluated at once against the anchors (bounds memory).
        ties: bandwidths of tied anchors from their level's distinct neighbours (bounded
            gradients on discrete and ReLU-like columns; no effect on tie-free columns).

    Returns:
        Tensor of x's shape with values in (0, 1); a constant column maps to 0.5 everywhere
        with zero gradient.
    """
    squeeze = x.dim() == 2
    if squeeze:
        x = x.unsqueeze(0)
    xt = rearrange(x, "b n d -> b d n")
    scale, const = column_scale(xt, dim=-1)
    a = _anchors(xt, num_anchors)  # (B, d, m)
    h = _bandwidths(a, scale, bandwidth, ties)  # (B, d, m)
    out = []
    for start in range(0, xt.shape[-1], chunk_size):
        xc = xt[..., start:start + chunk_size]  # (B, d, c)
        z = (xc.unsqueeze(-1) - a.unsqueeze(-2)) / h.unsqueeze(-2)  # (B, d, c, m)
        out.append(torch.sigmoid(z).mean(dim=-1))
    r = torch.cat(out, dim=-1)
    n = xt.shape[-1]
    # keep ranks strictly inside (0, 1) so that normal scores stay finite
    r = (r * n + 0.5) / (n + 1)
    r = torch.where(const, torch.full_like(r, 0.5), r)
    r = rearrange(r, "b d n -> b n d")
    return r.squeeze(0) if squeeze else r


def normal_scores(x: torch.Tensor, **kwargs) -> torch.Tensor:
    """Gaussian copula transform: Phi^{-1}(soft_rank(x)), same shape as x.

    Each column becomes approximately standard normal; constant columns become 0.
    Keyword arguments go to :func:`soft_rank`.
    """
    r = soft_rank(x, **kwargs)
    return math.sqrt(2.0) * torch.special.erfinv(2.0 * r - 1.0)
