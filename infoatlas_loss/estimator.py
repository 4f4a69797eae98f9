"""One forward pass of the estimator on batches whose variables fit in ``max_dim``.

copula transform (normal scores) -> Gaussian noise padding -> hypernetwork -> DV bound.
Shared by inference (``functional.py``) and pretraining (``train.py``) so both run the
same pipeline.
"""
from __future__ import annotations

import torch

from .critic import GaussianStats, canonical_order, dv_bound
from .model import InfoAtlas
from .slicing import noise_pad
from .softrank import normal_scores


def prepare(x: torch.Tensor, y: torch.Tensor, max_dim: int, *,
            generator: torch.Generator | None = None, num_anchors: int = 64
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normal scores of every marginal, noise-padded to ``max_dim``.

    A constant column carries no information; it is replaced by independent N(0, 1) noise,
    like padding (Prop. A.3), so it adds nothing to the estimate and gets zero gradient.
    x (B, n, dx), y (B, n, dy), dx, dy <= max_dim -> two tensors (B, n, max_dim).
    """
    out = []
    for v in (x, y):
        z = normal_scores(v, num_anchors=num_anchors)
        const = (v.detach() == v.detach()[:, :1]).all(dim=1, keepdim=True)  # (B, 1, d)
        if bool(const.any()):
            z = torch.where(const, noise_pad(z[..., :0], v.shape[-1], generator=generator), z)
        out.append(noise_pad(z, max_dim, generator=generator))
    return out[0], out[1]


def dv_from_scores(model: InfoAtlas, zx: torch.Tensor, zy: torch.Tensor, *,
                   eval_x: torch.Tensor | None = None, eval_y: torch.Tensor | None = None,
                   num_shifts: int = 16, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """DV estimate (B,) in nats from prepared scores.

    The critic is generated from (zx, zy); it is evaluated on (eval_x, eval_y) when given
    (pretraining scores a fresh sample), else on the context itself (inference).
    """
    config = getattr(model, "module", model).config  # unwrap DistributedDataParallel
    theta = model(zx, zy)
    stats = GaussianStats(zx, zy) if config.gaussian_critic else None
    ex = zx if eval_x is None else eval_x
    ey = zy if eval_y is None else eval_y
    order = canonical_order(ex, ey, generator)
    return dv_bound(theta, config, ex, ey, stats=stats, order=order, num_shifts=num_shifts)


def estimate_batch(model: InfoAtlas, x: torch.Tensor, y: torch.Tensor, *,
                   generator: torch.Generator | None = None, num_shifts: int = 16,
                   num_anchors: int = 64) -> torch.Tensor:
    """MI in nats, (B,), for x (B, n, dx), y (B, n, dy) with dx, dy <= ``max_dim``."""
    zx, zy = prepare(x, y, model.config.max_dim, generator=generator, num_anchors=num_anchors)
    return dv_from_scores(model, zx, zy, num_shifts=num_shifts, generator=generator)
