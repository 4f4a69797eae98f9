"""One forward pass of the estimator on batches whose variables fit in ``max_dim``.

copula transform (normal scores) -> Gaussian noise padding -> hypernetwork -> DV bound.
Shared by inference (``functional.py``) and pretraining (``train.py``) so both run the
same pipeline.
"""
from __future__ import annotations

import torch

from .config import InfoAtlasConfig
from .counter_rng import draw_seeds, normals
from .critic import GaussianStats, canonical_order, dv_bound
from .discrete import JITTER_STREAMS, check_ties, dequantise, order_levels
from .model import InfoAtlas
from .softrank import normal_scores

# independent streams of a dataset's seed
_NOISE_STREAM, _HASH_STREAM = 0, 1


def dataset_seeds(num: int, generator: torch.Generator | None = None,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """One int64 seed per dataset, (num,) on ``device``; every random draw of a dataset
    comes from its own seed, so results do not depend on how datasets are batched or chunked."""
    return draw_seeds(num, generator, device)


def hash_weights(seeds: torch.Tensor, dim: int) -> torch.Tensor:
    """Per-dataset weights (B, dim) of the canonical-order hash (float64, on seeds' device)."""
    return normals(seeds, (dim,), stream=_HASH_STREAM)


def _fill(z: torch.Tensor, v: torch.Tensor, noise: torch.Tensor, rank: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace constant columns by N(0, 1) noise and pad to ``max_dim`` with more noise.

    ``noise`` (B, n, max_dim) rows are laid out in canonical order (``rank`` = position of
    each row), so a permutation of the input rows permutes the noise with them.
    Returns the filled scores (B, n, max_dim) and which columns carry data (B, max_dim).
    """
    b, n, d = z.shape
    noise = torch.gather(noise, 1, rank.unsqueeze(-1).expand_as(noise))
    const = (v.detach() == v.detach()[:, :1]).all(dim=1, keepdim=True)  # (B, 1, d)
    z = torch.where(const, noise[..., :d], z)
    real = torch.cat([~const[:, 0], const.new_zeros(b, noise.shape[-1] - d)], dim=-1)
    return torch.cat([z, noise[..., d:]], dim=-1), real


def prepare(x: torch.Tensor, y: torch.Tensor, max_dim: int, *, seeds: torch.Tensor,
            num_anchors: int = 64, ties: str = "auto"
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normal scores of every marginal, noise-padded to ``max_dim``, and the canonical order.

    A constant column carries no information; it is replaced by independent N(0, 1) noise,
    like padding (Prop. A.3), so it adds nothing to the estimate and gets zero gradient.
    x (B, n, dx), y (B, n, dy), dx, dy <= max_dim, one int64 seed per dataset (B,) ->
    (B, n, max_dim) twice, order (B, n) and the data-column mask (B, 2 * max_dim).
    ``ties`` (``discrete.TIES``): ``"auto"`` relabels a discrete variable paired with a
    continuous one as one column of ordered level codes (``discrete.order_levels``) and
    uses tie-aware soft-rank bandwidths (identical on tie-free data); ``"jitter"`` breaks
    ties at random within one level gap (``discrete.dequantise``) before the soft rank;
    ``"off"`` uses plain soft-rank bandwidths.
    """
    if max(x.shape[-1], y.shape[-1]) > max_dim:
        raise ValueError(f"dimensions {x.shape[-1]}, {y.shape[-1]} exceed max_dim={max_dim}; slice")
    n = x.shape[1]
    if check_ties(ties) == "auto":
        x, y = order_levels(x, y)
    seeds = torch.as_tensor(seeds, dtype=torch.int64).to(x.device)
    order = canonical_order(x, y, hash_weights(seeds, x.shape[-1] + y.shape[-1]))
    rank = torch.argsort(order, dim=1)
    noise = normals(seeds, (n, 2 * max_dim), stream=_NOISE_STREAM).to(x)  # (B, n, 2 * max_dim)
    if ties == "jitter":
        x = dequantise(x, seeds, rank, JITTER_STREAMS[0])
        y = dequantise(y, seeds, rank, JITTER_STREAMS[1])
    opts = dict(num_anchors=num_anchors, ties=ties != "off")
    zx, rx = _fill(normal_scores(x, **opts), x, noise[..., :max_dim], rank)
    zy, ry = _fill(normal_scores(y, **opts), y, noise[..., max_dim:], rank)
    return zx, zy, order, torch.cat([rx, ry], dim=-1)


def critic_inputs(config: InfoAtlasConfig, x: torch.Tensor, y: torch.Tensor, real: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """What the generated critic reads: with ``config.mask_critic``, the scores (B, n,
    max_dim) with padding and constant columns zeroed (``real`` (B, 2 * max_dim) from
    :func:`prepare`); the Gaussian term already ignores those columns."""
    if not config.mask_critic or real is None:
        return x, y
    keep = real.to(x.dtype).unsqueeze(1)  # (B, 1, 2 * max_dim)
    k = x.shape[-1]
    return x * keep[..., :k], y * keep[..., k:]


def dv_from_scores(model: InfoAtlas, zx: torch.Tensor, zy: torch.Tensor, *, order: torch.Tensor,
                   real: torch.Tensor | None = None, eval_x: torch.Tensor | None = None,
                   eval_y: torch.Tensor | None = None, num_shifts: int | None = None
                   ) -> torch.Tensor:
    """DV estimate (B,) in nats from prepared scores.

    The critic is generated from (zx, zy); it is evaluated on (eval_x, eval_y) when given
    (pretraining scores a fresh sample), else on the context itself (inference).
    ``order`` is the canonical order of the evaluated sample; ``real`` the data-column mask
    from :func:`prepare` (None: all columns are data).
    """
    config = getattr(model, "module", model).config  # unwrap DistributedDataParallel
    theta = model(zx, zy)
    stats = GaussianStats(zx, zy, real) if config.gaussian_critic else None
    ex, ey = critic_inputs(config, zx if eval_x is None else eval_x,
                           zy if eval_y is None else eval_y, real)
    return dv_bound(theta, config, ex, ey, stats=stats, order=order, num_shifts=num_shifts)


def estimate_batch(model: InfoAtlas, x: torch.Tensor, y: torch.Tensor, *, seeds: torch.Tensor,
                   num_shifts: int | None = None, num_anchors: int = 64, ties: str = "auto"
                   ) -> torch.Tensor:
    """MI in nats, (B,), for x (B, n, dx), y (B, n, dy) with dx, dy <= ``max_dim``
    (``ties`` as in :func:`prepare`)."""
    zx, zy, order, real = prepare(x, y, model.config.max_dim, seeds=seeds, num_anchors=num_anchors,
                                  ties=ties)
    return dv_from_scores(model, zx, zy, order=order, real=real, num_shifts=num_shifts)
