"""Input validation with messages that name the problem (kornia / SB3 ``check_env`` style)."""
from __future__ import annotations

import numpy as np
import torch

# fewer samples than this give a DV estimate dominated by noise; we refuse rather than guess
MIN_SAMPLES = 16


def as_tensor(a, name: str) -> torch.Tensor:
    """numpy arrays, lists and tensors -> a floating tensor (integers and bools are cast)."""
    if isinstance(a, torch.Tensor):
        t = a
    else:
        arr = np.asarray(a)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return t


def check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    """Validate a pair of sample sets of shape (n, d) or (B, n, d).

    Raises:
        TypeError: if x or y is not a tensor.
        ValueError: wrong rank, mismatched batch or sample counts, fewer than
            ``MIN_SAMPLES`` samples, zero columns, non-floating dtype, NaN or Inf.
    """
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() not in (2, 3):
            hint = " (for one variable use t.unsqueeze(-1))" if t.dim() == 1 else ""
            raise ValueError(f"Invalid shape of {name}: expected (n, d) or (B, n, d), "
                             f"got {tuple(t.shape)}{hint}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must have a floating dtype, got {t.dtype}")
        if t.shape[-1] == 0:
            raise ValueError(f"{name} has no columns: shape {tuple(t.shape)}")
    if x.dim() != y.dim():
        raise ValueError(f"x and y must both be (n, d) or both (B, n, d), got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    if x.dim() == 3 and x.shape[0] != y.shape[0]:
        raise ValueError(f"batch sizes differ: x has {x.shape[0]}, y has {y.shape[0]}")
    if x.shape[-2] != y.shape[-2]:
        raise ValueError(f"sample counts differ: x has {x.shape[-2]} samples, y has {y.shape[-2]}")
    if x.shape[-2] < MIN_SAMPLES:
        raise ValueError(f"too few samples: got {x.shape[-2]}, need at least {MIN_SAMPLES}")
    if torch.compiler.is_compiling():
        return  # the value checks below need the data on the host: eager mode only
    for name, t in (("x", x), ("y", y)):
        finite = torch.isfinite(t.detach())
        if not bool(finite.all()):
            bad = (~finite).nonzero()[0].tolist()
            kind = "NaN" if bool(torch.isnan(t.detach()).any()) else "Inf"
            raise ValueError(f"{name} contains {kind} values (first at index {tuple(bad)})")


def as_pair(X, Y, caller: str, device: str | torch.device | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two arrays of paired samples -> validated (n, dx), (n, dy) tensors on ``device``.

    numpy or torch in; a 1-D array is one variable (one column).  ``caller`` names the
    function in the error for anything that is not (n, d).
    """
    x, y = as_tensor(X, "X"), as_tensor(Y, "Y")
    x = x.unsqueeze(-1) if x.dim() == 1 else x
    y = y.unsqueeze(-1) if y.dim() == 1 else y
    if x.dim() != 2 or y.dim() != 2:
        raise ValueError(f"{caller} expects (n, d) arrays, got {tuple(x.shape)} and {tuple(y.shape)}")
    check_pair(x, y)
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y
