"""Functional API: ``sliced_mi`` (differentiable), ``estimate_mi`` (result object), ``estimate``.

All estimates are mutual information in nats, >= 0 in expectation (DV is a lower-bound
form; on finite samples an estimate may dip slightly below zero for independent data).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .checks import as_pair, check_pair
from .counter_rng import normals, split_seeds
from .discrete import check_ties, discrete_mi
from .estimator import dataset_seeds, estimate_batch
from .model import InfoAtlas
from .pretrained import load_pretrained
from .projection import crossfit_projections
from .refine import RefineConfig, refined_mi
from .slicing import flatten_slices, project, stiefel
from .softrank import column_scale


def _resolve(model: InfoAtlas | str | None, device: str | torch.device = "cpu") -> InfoAtlas:
    """A model object, or the registered weights (default ``infoatlas-base``) on ``device``."""
    if model is None or isinstance(model, str):
        return load_pretrained(model or "infoatlas-base", device=device)
    return model


def _standardize(v: torch.Tensor) -> torch.Tensor:
    """z-score every column of v (B, n, d) over the samples, in v's own precision.

    MI is invariant to x -> a x + b; done before the cast to the model's dtype, centring
    keeps float64 data such as timestamps (1e9 + seconds) from being rounded away, and the
    range-relative scale keeps 1e-12 or 1e20 units from underflowing or overflowing.  Slices
    then mix columns on equal footing.  Constant columns become exactly 0 (zero gradient).
    """
    scale, const = column_scale(v, dim=1)
    z = (v - v.mean(dim=1, keepdim=True)) / scale
    return torch.where(const, torch.zeros_like(z), z)


def _slices(v: torch.Tensor, max_dim: int, num_slices: int, k: int, seed: torch.Tensor
            ) -> torch.Tensor:
    """Standardized (B, n, d) -> (B, S, n, d') with d' = d if it fits, else k-dim Stiefel
    projections drawn from ``seed`` (a 1-element int64 tensor)."""
    b, n, d = v.shape
    if d <= max_dim:
        return v.unsqueeze(1).expand(b, num_slices, n, d)
    proj = stiefel(num_slices, d, min(k, d), seed=seed, like=v)  # (S, d, k)
    return project(v, proj)


def _estimates(net: InfoAtlas, xs: torch.Tensor, ys: torch.Tensor, seeds: torch.Tensor, *,
               num_shifts: int | None, chunk_size: int, debias: bool, root: torch.Tensor,
               ties: str = "auto") -> torch.Tensor:
    """Estimates (D,) of datasets xs (D, n, kx), ys (D, n, ky) with their seeds (D,).

    With ``debias``, each dataset's estimate of a row-permuted pairing (y's rows shuffled
    by one permutation drawn from ``root``) is subtracted: same datasets, same seeds, so the
    same padding noise, one batched pass.  Under independence both terms share their
    distribution and the difference is centred on zero; for dependent data it removes the
    estimator's small-n offset.
    """
    if debias:
        perm = torch.argsort(normals(split_seeds(root, 1, stream=3), (xs.shape[1],))[0])
        xs, ys = torch.cat([xs, xs]), torch.cat([ys, ys[:, perm.to(ys.device)]])
        seeds = torch.cat([seeds, seeds])
    est = torch.cat([estimate_batch(net, xs[i:i + chunk_size], ys[i:i + chunk_size],
                                    seeds=seeds[i:i + chunk_size], num_shifts=num_shifts,
                                    ties=ties)
                     for i in range(0, xs.shape[0], chunk_size)])
    if debias:
        joint, null = est.chunk(2)
        return joint - null
    return est


def sliced_mi(x: torch.Tensor, y: torch.Tensor, *, model: InfoAtlas | str | None = None,
              num_slices: int = 16, slice_dim: int | None = None,
              generator: torch.Generator | None = None, reduction: str = "mean",
              chunk_size: int = 64, num_shifts: int | None = None, return_slices: bool = False,
              debias: bool = False, ties: str = "auto") -> torch.Tensor:
    r"""Mutual information I(X; Y) in nats from one forward pass of the frozen estimator.

    Variables with at most ``model.config.max_dim`` columns go in whole (noise-padded).
    A wider variable is sliced: ``num_slices`` random k-dim orthonormal projections
    (k = ``slice_dim``, default ``max_dim``) and the result is the k-sliced MI, the mean
    over slices (Goldfeld et al. 2022).  All slices of all batch items run through the
    hypernetwork together, ``chunk_size`` at a time.  Differentiable in x and y: use
    ``-sliced_mi(z1, z2)`` as a loss to maximise MI.

    Invariant to x -> a x + b per column (a > 0): columns are centred and scaled in the
    input's own precision before the cast to the model's dtype.  A column constant up to
    a relative 1e-12 of its magnitude carries no information and gets zero gradient.

    Args:
        x: samples of X, (n, dx) or (B, n, dx); a 1-D tensor (n,) is one variable with n
            samples, i.e. (n, 1).
        y: samples of Y, (n, dy) or (B, n, dy) or (n,); dx != dy is fine.
        model: an ``InfoAtlas``, a registered name, or None for ``"infoatlas-base"``.
        num_slices: projections per batch item when slicing is needed.  The default 16
            is sized for a loss evaluated at every training step, where the cost is paid
            per step and the slice noise averages out over steps; a one-off estimate
            (``estimate_mi``, 128) spends more slices for a lower-variance number.
        slice_dim: dimension k of each slice (<= max_dim).
        generator: source of the projections, noise padding and marginal pairing.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
        chunk_size: (batch item, slice) datasets per forward pass (bounds memory).
        num_shifts: product-of-marginals pairs per sample in the DV term (default: 16, fewer
            above n = 2048).
        return_slices: return per-slice estimates (B, S) (or (S,)) instead.
        debias: subtract the estimate of a row-permuted pairing computed in the same pass
            (same slices, same padding noise): removes the small-n offset (about +0.04
            nats on independent 5 x 5 data at n = 64) at twice the cost.
        ties: ``"auto"`` (default): a batch item whose x and y are both discrete (at most
            ``discrete.LEVELS_FRACTION * n`` distinct rows each, at most
            ``discrete.CELLS_FRACTION * n`` occupied joint cells) gets the plug-in MI of its
            joint counts (Miller-Madow corrected; MI itself, not sliced; zero gradient,
            ``debias`` not needed).  Other items get the estimator with tie-aware soft ranks
            (gradients of normal size on tied inputs such as ReLU zeros); a discrete
            variable paired with a continuous one is first relabelled as one column of
            level codes ordered along the other variable (MI unchanged; fitted on the
            sample, so it adds about (K - 1) / (2n) nats for K independent levels, which
            ``debias`` removes; zero gradient for the discrete side).  ``"jitter"``: ties broken at random within one level gap before the
            soft rank (exact in MI, but the estimator reads the resulting block copula low).
            ``"off"``: ties left as atoms with plain soft-rank bandwidths.  Under
            ``torch.compile`` the discrete check is skipped (estimator path only).

    Returns:
        MI in nats: 0-dim for (n, d) input or reduced batches, (B,) with ``"none"``.

    Example:
        >>> loss = -sliced_mi(z_key, z_prior)  # doctest: +SKIP
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    # a 1-D tensor is one variable: (n,) -> (n, 1), as in estimate_mi
    x, y = (t.unsqueeze(-1) if isinstance(t, torch.Tensor) and t.dim() == 1 else t for t in (x, y))
    check_pair(x, y)
    net = _resolve(model, x.device)
    md = net.config.max_dim
    k = md if slice_dim is None else int(slice_dim)
    if not 1 <= k <= md:
        raise ValueError(f"slice_dim must be in 1..{md} (the model's max_dim), got {k}")
    if num_slices < 1:
        raise ValueError(f"num_slices must be >= 1, got {num_slices}")
    check_ties(ties)
    single = x.dim() == 2
    if single:
        x, y = x.unsqueeze(0), y.unsqueeze(0)
    plug, found = _discrete_items(x, y, ties)
    dtype = next(net.parameters()).dtype
    # standardise in the input's precision (at least the model's), then cast
    x = _standardize(x.to(torch.promote_types(x.dtype, dtype))).to(dtype)
    y = _standardize(y.to(torch.promote_types(y.dtype, dtype))).to(dtype)
    b = x.shape[0]
    s = num_slices if max(x.shape[-1], y.shape[-1]) > md else 1
    if bool(found.all()):  # no estimator pass needed; zero gradient, attached to the inputs
        est = (plug.to(dtype) + 0.0 * (x.sum((1, 2)) + y.sum((1, 2)))).unsqueeze(1).expand(b, s)
        return _reduce(est, single, return_slices, reduction)
    # the call's one draw from the generator (one graph break under torch.compile); the
    # projections and every dataset's noise derive from it on the data's device
    root = dataset_seeds(1, generator, x.device)
    xs = flatten_slices(_slices(x, md, s, k, split_seeds(root, 1, stream=1)))  # (B*S, n, kx)
    ys = flatten_slices(_slices(y, md, s, k, split_seeds(root, 1, stream=2)))
    # slice j of every batch item shares seed j: (B*S,) int64
    seeds = split_seeds(root, s).repeat(b)
    est = _estimates(net, xs, ys, seeds, num_shifts=num_shifts, chunk_size=chunk_size,
                     debias=debias, root=root, ties=ties).view(b, s)
    if bool(found.any()):
        est = torch.where(found.unsqueeze(1), plug.to(est.dtype).unsqueeze(1) + 0.0 * est, est)
    return _reduce(est, single, return_slices, reduction)


def _discrete_items(x: torch.Tensor, y: torch.Tensor, ties: str
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Plug-in MI (B,) of the batch items whose x and y are both discrete, and which
    items those are (B,) bool; none with ``ties`` other than ``"auto"`` or under compile."""
    if ties != "auto" or torch.compiler.is_compiling():
        b = x.shape[0]
        return x.new_zeros(b, dtype=torch.float64), torch.zeros(b, dtype=torch.bool, device=x.device)
    return discrete_mi(x, y)


def _reduce(est: torch.Tensor, single: bool, return_slices: bool, reduction: str) -> torch.Tensor:
    """Per-slice estimates (B, S) -> what ``sliced_mi`` returns."""
    if return_slices:
        return est[0] if single else est
    per_item = est.mean(dim=1)
    if single:
        return per_item[0]
    return {"mean": per_item.mean, "sum": per_item.sum, "none": lambda: per_item}[reduction]()


@dataclass(frozen=True)
class MIResult:
    """An estimate in nats.

    ``method`` says how wide variables were handled: ``"whole"`` (both fit in the model's
    ``max_dim``), ``"projected"`` (cross-fitted canonical projections: an estimate of MI),
    ``"sliced"`` (k-sliced MI, the mean over random slices) or ``"discrete"`` (both
    variables discrete: plug-in MI of the joint counts, Miller-Madow corrected).  ``stderr`` is the spread
    of the parts that were averaged (slices or the two cross-fitted halves; 0.0 for
    ``"whole"``); ``seconds`` is the wall time of the estimate.
    """

    mi: float
    stderr: float
    num_slices: int
    slice_dim: int | None
    n: int
    seconds: float
    method: str = "whole"

    def __float__(self) -> float:
        return self.mi


WIDE_METHODS = ("projected", "sliced")
DEBIAS_BELOW = 1000
"""``estimate_mi`` subtracts a permutation-null estimate below this many rows by default."""


@torch.no_grad()
def estimate_mi(X, Y, *, model: InfoAtlas | str | None = None, wide: str = "projected",
                num_slices: int = 128, slice_dim: int | None = None, debias: bool | None = None,
                refine_steps: int = 0, seed: int = 0, device: str | torch.device | None = None,
                ties: str = "auto") -> MIResult:
    """Estimate I(X; Y) in nats from numpy arrays or tensors of shape (n, dx) and (n, dy).

    Variables with at most ``max_dim`` (5) columns go in whole.  For wider ones, ``wide``
    chooses: ``"projected"`` (default) estimates MI on the top canonical subspaces of the
    normal scores, fitted on one half of the rows and scored on the other (both ways);
    ``"sliced"`` returns k-sliced MI over ``num_slices`` random slices (a different
    quantity, usually far below MI).  ``debias`` subtracts a permutation-null estimate made
    in the same pass (default: only below ``DEBIAS_BELOW`` rows, where the offset is
    larger than the noise it adds).  ``refine_steps`` > 0 adds test-time refinement
    (``refine.py``: Adam steps on the generated critic, scored on held-out rows; slower,
    and small gains on held-out families); the refined estimate is already scored on rows
    the steps did not see, so ``debias`` is not applied to it.  1-D inputs are read as
    one column.  ``ties`` (see :func:`sliced_mi`): with ``"auto"`` (default), when X and
    Y are both discrete (binary, counts, category codes: at most
    ``discrete.LEVELS_FRACTION * n`` distinct rows each, a joint table dense enough) the
    estimate is the plug-in MI of the joint counts (method ``"discrete"``); mixed and
    continuous pairs go through the estimator, a discrete side relabelled as ordered
    level codes.
    Deterministic for a given ``seed``.
    """
    t0 = time.perf_counter()
    if wide not in WIDE_METHODS:
        raise ValueError(f"wide must be one of {WIDE_METHODS}, got {wide!r}")
    if refine_steps < 0:
        raise ValueError(f"refine_steps must be >= 0, got {refine_steps}")
    check_ties(ties)
    x, y = as_pair(X, Y, "estimate_mi", device)
    n = x.shape[0]
    plug, found = _discrete_items(x.unsqueeze(0), y.unsqueeze(0), ties)
    if bool(found[0]):
        return MIResult(mi=float(plug[0]), stderr=0.0, num_slices=1, slice_dim=None, n=n,
                        seconds=time.perf_counter() - t0, method="discrete")
    debias = n < DEBIAS_BELOW if debias is None else bool(debias)
    net = _resolve(model, x.device)
    g = torch.Generator().manual_seed(seed)
    md = net.config.max_dim
    dtype = next(net.parameters()).dtype
    wide_input = max(x.shape[1], y.shape[1]) > md
    if wide_input and wide == "sliced":
        per = sliced_mi(x, y, model=net, num_slices=num_slices, slice_dim=slice_dim, generator=g,
                        return_slices=True, debias=debias, ties=ties).double()
        s = per.numel()
        return MIResult(mi=float(per.mean()), stderr=float(per.std() / math.sqrt(s)),
                        num_slices=s, slice_dim=slice_dim or md, n=n,
                        seconds=time.perf_counter() - t0, method="sliced")
    # centre and scale in the input's own precision (at least the model's), then cast
    xs = _standardize(x.unsqueeze(0).to(torch.promote_types(x.dtype, dtype)))
    ys = _standardize(y.unsqueeze(0).to(torch.promote_types(y.dtype, dtype)))
    if wide_input:
        k = md if slice_dim is None else int(slice_dim)
        if not 1 <= k <= md:
            raise ValueError(f"slice_dim must be in 1..{md} (the model's max_dim), got {k}")
        xs, ys = crossfit_projections(xs, ys, k, generator=g)  # (2, n // 2, <= k) each
    xs, ys = xs.to(dtype), ys.to(dtype)
    root = dataset_seeds(1, g, x.device)
    seeds = split_seeds(root, xs.shape[0])
    if refine_steps:
        per = refined_mi(net, xs, ys, seeds=seeds, config=RefineConfig(steps=refine_steps))
    else:
        per = _estimates(net, xs, ys, seeds, num_shifts=None, chunk_size=64, debias=debias,
                         root=root, ties=ties)
    per = per.double()
    return MIResult(mi=float(per.mean()),
                    stderr=float(per.std() / math.sqrt(2)) if per.numel() > 1 else 0.0,
                    num_slices=1, slice_dim=xs.shape[-1] if wide_input else None, n=n,
                    seconds=time.perf_counter() - t0,
                    method="projected" if wide_input else "whole")


def estimate(X, Y) -> float:
    """``benchmark-mi`` estimator interface: arrays (n, dx), (n, dy) -> MI in nats."""
    return estimate_mi(X, Y).mi
