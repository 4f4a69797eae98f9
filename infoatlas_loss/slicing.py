"""Random Stiefel projections for k-sliced MI (paper Sec. 4, Eq. 9/10)."""
from __future__ import annotations

import torch
from einops import rearrange


def _randn(shape, generator, like: torch.Tensor) -> torch.Tensor:
    # draw on the generator's device, then move: results do not depend on the input's device
    dev = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(shape, generator=generator, device=dev, dtype=torch.float64).to(like)


def stiefel(num: int, d: int, k: int, *, generator: torch.Generator | None = None,
            like: torch.Tensor | None = None) -> torch.Tensor:
    """``num`` random d x k matrices with orthonormal columns (Haar on the Stiefel manifold).

    QR of a Gaussian matrix with the sign of R's diagonal folded into Q.  Returns (num, d, k).
    """
    if k > d:
        raise ValueError(f"slice_dim ({k}) cannot exceed the variable's dimension ({d})")
    like = torch.empty(0) if like is None else like
    g = _randn((num, d, k), generator, torch.empty(0, dtype=torch.float64))
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    return q.to(like)


def project(x: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
    """Apply every slice to every batch item. x (B, n, d), proj (S, d, k) -> (B, S, n, k)."""
    return torch.einsum("bnd,sdk->bsnk", x, proj)


def flatten_slices(x: torch.Tensor) -> torch.Tensor:
    return rearrange(x, "b s n k -> (b s) n k")
