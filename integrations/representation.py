"""Mutual-information regularisers for representation learning: ``InfoMax`` and ``InfoMin``.

Both wrap :class:`infoatlas_loss.SlicedMILoss` (one forward pass of the frozen pretrained
estimator, MI in nats) and return a scalar that you **add** to your own loss::

    loss = task_loss + infomax(z_view1, z_view2)  # = task_loss - w * I(z1; z2): raises MI
    loss = task_loss + infomin(z, s)              # = task_loss + w * I(z; s):  lowers MI

Sign convention: ``InfoMax(a, b) = -weight * I(a; b)`` and ``InfoMin(z, s) = +weight *
I(z; s)``, so minimising the total loss always does what the name says.  Units: the MI is
in nats, so ``weight`` is "loss units per nat"; a cross-entropy task loss is itself in nats,
and ``weight = 1`` trades one nat of task loss for one nat of MI.  Larger weights push
harder on the dependence at the cost of the task.  The estimator is frozen: the
regularisers have no trainable parameters, and gradients flow into both arguments.

Shapes: ``(n, d)`` sample sets, or ``(B, n, d)`` batches of sample sets (reduced with
``reduction``); n >= 16 (``infoatlas_loss.MIN_SAMPLES``); any d >= 1.  A variable wider
than the model's ``max_dim`` (5) is sliced automatically (k-sliced MI, new random
projections at every call unless a ``generator`` is given), so 8-512 dims cost about the
same.  A 1-D tensor ``(n,)`` (or ``(B, n)`` next to a ``(B, n, d)`` partner) is read as one
column; integer and bool tensors (labels) are cast to float.  Minibatches of 64-1024
samples work well; fewer samples give a noisier estimate and gradient.

Degenerate inputs never give NaN or Inf gradients: a constant column is treated as carrying
no information (zero gradient), and so is a column whose range is below 1e-12 of its
largest magnitude (the library's own scale-free rule, ``softrank.constant_columns``), whose
gradient would otherwise scale like 1 / std because MI ignores a column's units.  Bad input (NaN/Inf,
mismatched sample counts, fewer than 16 samples, wrong rank) raises the library's
``ValueError``; a negative or non-finite ``weight`` raises here.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..loss import SlicedMILoss
from ..model import InfoAtlas
from ..softrank import constant_columns

__all__ = ["InfoMax", "InfoMin"]

def _columns(t: torch.Tensor, other: torch.Tensor, name: str) -> torch.Tensor:
    """(n,) -> (n, 1); (B, n) next to a (B, n, d) partner -> (B, n, 1); labels -> float."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() == 1 or (t.dim() == 2 and isinstance(other, torch.Tensor) and other.dim() == 3
                        and tuple(t.shape) == tuple(other.shape[:2])):
        t = t.unsqueeze(-1)
    if not t.is_floating_point() and not t.is_complex():
        like = other if isinstance(other, torch.Tensor) and other.is_floating_point() else None
        t = t.to(like.dtype if like is not None else torch.get_default_dtype())
    return t


def _drop_degenerate(v: torch.Tensor) -> torch.Tensor:
    """Set (near-)constant columns to exactly 0, which the estimator reads as no information.

    v (n, d) or (B, n, d).  Without this, a column with a tiny but nonzero spread would be
    z-scored before slicing and receive a gradient ~ 1 / std (Inf for std ~ 1e-30).
    """
    if v.dim() not in (2, 3) or v.shape[-2] < 2 or not v.is_floating_point():
        return v  # let the library's checks name the problem
    d = v.detach()
    if not bool(torch.isfinite(d).all()):
        return v  # the library raises a ValueError naming the NaN / Inf
    const = constant_columns(d, dim=-2)  # scale-free: data in units of 1e-12 is kept
    if not bool(const.any()):
        return v
    return torch.where(const, torch.zeros_like(v), v)


def _whiten(v: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Decorrelate the columns of v (n, d) or (B, n, d) over the samples (Cholesky whitening).

    MI is unchanged by an invertible linear map of one variable, but the k-sliced MI is not:
    a wide representation can raise it by putting all its dependence into a few directions
    that every random slice sees (collapse).  After whitening every direction has unit
    variance, so directions without dependence count as noise in the slices and the sliced
    MI rewards spreading information over all columns (as W-MSE does, Ermolov et al. 2021).
    ``eps`` (relative to the mean variance) keeps the Cholesky factor well conditioned.
    """
    if v.dim() not in (2, 3) or v.shape[-1] < 2 or v.shape[-2] < 2 or not v.is_floating_point():
        return v  # nothing to decorrelate; the library's checks name bad shapes
    c = v - v.mean(dim=-2, keepdim=True)
    cov = c.transpose(-1, -2) @ c / (v.shape[-2] - 1)  # (.., d, d)
    d = v.shape[-1]
    scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)
    eye = torch.eye(d, dtype=v.dtype, device=v.device)
    chol = torch.linalg.cholesky(cov + eps * scale[..., None, None] * eye)
    return torch.linalg.solve_triangular(chol, c.transpose(-1, -2), upper=False).transpose(-1, -2)


class _MIRegulariser(nn.Module):
    _sign = 0.0  # -1: InfoMax, +1: InfoMin
    _names = ("a", "b")  # argument names for error messages

    def __init__(self, model: InfoAtlas | str | None = None, *, weight: float = 1.0,
                 num_slices: int = 64, slice_dim: int | None = None, reduction: str = "mean",
                 generator: torch.Generator | None = None, whiten: bool = False):
        super().__init__()
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise TypeError(f"weight must be a number, got {type(weight).__name__}")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight must be a finite number >= 0, got {weight}; the sign is "
                             "fixed by the class (InfoMax raises MI, InfoMin lowers it)")
        if int(num_slices) < 1:
            raise ValueError(f"num_slices must be >= 1, got {num_slices}")
        self.weight = float(weight)
        self.whiten = bool(whiten)
        self.mi = SlicedMILoss(model, num_slices=int(num_slices), slice_dim=slice_dim,
                               reduction=reduction, generator=generator)
        self.last_mi: torch.Tensor | None = None  # detached MI (nats) of the latest call

    def _signed(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a2, b2 = _columns(a, b, self._names[0]), _columns(b, a, self._names[1])
        a2, b2 = _drop_degenerate(a2), _drop_degenerate(b2)
        if self.whiten:
            a2, b2 = self._whitened(a2), self._whitened(b2)
        mi = self.mi(a2, b2)
        self.last_mi = mi.detach()
        return self._sign * self.weight * mi

    def _whitened(self, v: torch.Tensor) -> torch.Tensor:
        # only wide variables are sliced; a variable that goes in whole needs no whitening
        if v.shape[-1] <= self.mi.estimator.config.max_dim or not bool(torch.isfinite(v).all()):
            return v
        return _whiten(v)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, whiten={self.whiten}"


class InfoMax(_MIRegulariser):
    r"""Loss term that **maximises** I(a; b): returns ``-weight * I(a; b)`` (nats).

    Add it to your loss; minimising the sum raises the MI between ``a`` and ``b`` (it is
    negative, and more negative the more dependent they are).  Typical uses: two views of a
    representation (``a = enc(aug1(x)), b = enc(aug2(x))``; contrastive-free InfoMax) or a
    representation and its input / target (``a = z, b = y``).  Gradients flow into both.

    Args:
        model: the frozen estimator: an ``InfoAtlas``, a registered name, or None for the
            shipped ``"infoatlas-base"``.
        weight: >= 0, loss units per nat of MI.
        num_slices: random projections per call when a variable is wider than ``max_dim``
            (more: less gradient noise, linearly more time).  The default 64 sits between
            ``SlicedMILoss``'s 16 (cheapest step) and ``estimate_mi``'s 128: a regulariser
            steers a representation, and too few slices let it hide information in
            unprojected directions.
        slice_dim: dimension of each slice (default ``max_dim``).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over a batch of sample sets.
        generator: ``torch.Generator`` for the projections and the estimator's noise; None
            draws from the global RNG (new projections every call).
        whiten: decorrelate each variable wider than ``max_dim`` over the samples before
            slicing (Cholesky whitening; the true MI is unchanged).  Without it, maximising
            the sliced MI of a wide representation collapses it onto a few directions (on
            digits, 16-d features: effective rank 3.4, linear probe below a random encoder;
            ``examples/infomax_digits.py --no-whiten``).  Default True.

    Shape:
        a: (n, da), (n,) or (B, n, da); b: (n, db), (n,) or (B, n, db); n >= 16.
        Output: 0-dim (or (B,) with ``reduction="none"``).  ``self.last_mi`` keeps the
        detached MI estimate in nats (>= 0 in expectation) for logging.
    """

    _sign = -1.0

    def __init__(self, model: InfoAtlas | str | None = None, *, weight: float = 1.0,
                 num_slices: int = 64, slice_dim: int | None = None, reduction: str = "mean",
                 generator: torch.Generator | None = None, whiten: bool = True):
        super().__init__(model, weight=weight, num_slices=num_slices, slice_dim=slice_dim,
                         reduction=reduction, generator=generator, whiten=whiten)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._signed(a, b)


class InfoMin(_MIRegulariser):
    r"""Loss term that **minimises** I(z; s): returns ``+weight * I(z; s)`` (nats).

    Add it to your task loss to make a representation ``z`` independent of a nuisance or
    sensitive variable ``s`` (a group label, a recording condition, a style code).  ``s`` is
    data, usually without gradient; if it requires grad, gradients flow into it as well.

    ``s`` may be continuous or multi-dimensional, or labels ``(n,)``.  Categorical labels
    are used as their numeric code in one column by default: MI is invariant to relabelling,
    so the code carries the full label information, but the estimator's critic is smooth
    in ``s``, so codes that are numerically close look alike to it.  With
    ``num_classes=K`` the labels (integers in ``[0, K)``) are one-hot encoded into K columns
    instead (sliced when K > ``max_dim``), which treats all categories symmetrically.

    Args:
        model, weight, num_slices, slice_dim, reduction, generator: as for :class:`InfoMax`.
        num_classes: one-hot encode integer labels ``s`` into this many columns (None:
            use ``s`` as given).

    Shape:
        z: (n, dz) or (B, n, dz); s: (n,), (n, ds), (B, n) or (B, n, ds); n >= 16.
        Output: 0-dim (or (B,) with ``reduction="none"``); ``self.last_mi`` as for InfoMax.
    """

    _sign = 1.0
    _names = ("z", "s")

    def __init__(self, model: InfoAtlas | str | None = None, *, weight: float = 1.0,
                 num_slices: int = 64, slice_dim: int | None = None, reduction: str = "mean",
                 generator: torch.Generator | None = None, num_classes: int | None = None):
        super().__init__(model, weight=weight, num_slices=num_slices, slice_dim=slice_dim,
                         reduction=reduction, generator=generator)
        if num_classes is not None and int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2 (or None), got {num_classes}")
        self.num_classes = None if num_classes is None else int(num_classes)

    def _one_hot(self, s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if not isinstance(s, torch.Tensor):
            raise TypeError(f"s must be a torch.Tensor, got {type(s).__name__}")
        if s.dim() == like.dim() and s.shape[-1] == 1:
            s = s.squeeze(-1)
        if s.dim() != like.dim() - 1:
            raise ValueError(f"with num_classes, s must hold one label per sample, shape "
                             f"{tuple(like.shape[:-1])}, got {tuple(s.shape)}")
        if s.is_floating_point() and not bool((s == s.round()).all()):
            raise ValueError("with num_classes, s must hold integer class labels")
        k = self.num_classes
        if s.numel() and (bool((s < 0).any()) or bool((s >= k).any())):
            raise ValueError(f"labels must be in [0, {k}), got range "
                             f"[{s.min().item()}, {s.max().item()}]")
        dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
        return nn.functional.one_hot(s.long(), k).to(dtype)

    def forward(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if self.num_classes is not None:
            s = self._one_hot(s, z)
        return self._signed(z, s)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, num_classes={self.num_classes}"
