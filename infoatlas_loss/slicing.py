"""Random Stiefel projections for k-sliced MI (paper Sec. 4, Eq. 9/10)."""
from __future__ import annotations

import torch
from einops import rearrange

from .counter_rng import draw_seeds, normals


def stiefel(num: int, d: int, k: int, *, generator: torch.Generator | None = None,
            seed: torch.Tensor | None = None, like: torch.Tensor | None = None) -> torch.Tensor:
    """``num`` random d x k matrices with orthonormal columns (Haar on the Stiefel manifold).

    QR of a Gaussian matrix with the sign of R's diagonal folded into Q, in float64 on
    ``like``'s device.  The Gaussian entries are counter-based draws from ``seed`` (a
    1-element int64 tensor), else from one seed drawn from ``generator``, so the
    projections do not depend on the device they are computed on.
    Returns (num, d, k) with ``like``'s dtype and device.
    """
    if k > d:
        raise ValueError(f"slice_dim ({k}) cannot exceed the variable's dimension ({d})")
    like = torch.empty(0) if like is None else like
    seed = draw_seeds(1, generator, like.device) if seed is None else seed.reshape(1).to(like.device)
    g = normals(seed, (num, d, k))[0]  # (num, d, k), float64
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    return q.to(like)


def project(x: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
    """Apply every slice to every batch item. x (B, n, d), proj (S, d, k) -> (B, S, n, k)."""
    return torch.einsum("bnd,sdk->bsnk", x, proj)


def flatten_slices(x: torch.Tensor) -> torch.Tensor:
    return rearrange(x, "b s n k -> (b s) n k")
