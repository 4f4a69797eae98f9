"""Test-time refinement: a few gradient steps on the generated critic, scored out of sample.

The hypernetwork's critic is a good start, not an optimum: on spirals, near-deterministic
and heavy-tailed data its DV bound sits well below MI.  Refinement splits the sample into
two halves (alternate rows of the canonical order, so the split is invariant to a
permutation of the input rows), generates a critic from each half, takes ``steps`` Adam
steps on its parameters to raise the DV bound on that half, keeps the best parameters seen
there, and scores the DV bound on the *other* half.  The estimate is the mean of the two
held-out scores: a critic tuned on rows it then scored would overfit upwards.

Measured on the held-out families (``python -m benchmarks.heldout --methods infoatlas
infoatlas-refine30``) it does not improve the default estimate and costs 10-20x the time:
the generated critic is already near what a smooth DV critic reaches on these inputs, and
larger learning rates overfit the held-out score downwards.  It stays a dial, off by default.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

from .critic import GaussianStats, dv_bound
from .estimator import critic_inputs, prepare
from .model import InfoAtlas
from .projection import other_half, take_halves


@dataclass(frozen=True)
class RefineConfig:
    """Test-time refinement recipe.

    Attributes:
        steps: Adam steps per half (0: no refinement).
        lr: Adam learning rate on the critic parameters.
        num_shifts: product-of-marginals pairs per sample during refinement.
        max_rows: rows per half used for the refinement steps (the held-out score always
            uses the whole other half); bounds the cost at large n.
    """

    steps: int = 0
    lr: float = 1e-3
    num_shifts: int = 8
    max_rows: int = 2048


def refine_critic(theta: torch.Tensor, model: InfoAtlas, zx: torch.Tensor, zy: torch.Tensor,
                  stats: GaussianStats | None, config: RefineConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam ascent of the DV bound on (zx, zy) (B, m, max_dim), starting from theta (B, P).

    Returns the parameters with the highest DV bound seen per item (the start included, so
    the bound on these rows never goes down) and that bound (B,).
    """
    order = torch.arange(zx.shape[1], device=zx.device).expand(zx.shape[0], -1)
    cfg = model.config
    with torch.enable_grad():
        t = theta.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([t], lr=config.lr)
        best, best_dv = theta.detach().clone(), None
        for step in range(config.steps + 1):
            dv = dv_bound(t, cfg, zx, zy, stats=stats, order=order, num_shifts=config.num_shifts)
            with torch.no_grad():
                if best_dv is None:
                    best_dv = dv.detach().clone()
                better = dv.detach() > best_dv
                best = torch.where(better.unsqueeze(-1), t.detach(), best)
                best_dv = torch.maximum(best_dv, dv.detach())
            if step == config.steps:
                break
            opt.zero_grad(set_to_none=True)
            (-dv.sum()).backward()
            opt.step()
    return best, best_dv


def refined_mi(model: InfoAtlas, x: torch.Tensor, y: torch.Tensor, *, seeds: torch.Tensor,
               config: RefineConfig) -> torch.Tensor:
    """MI in nats (B,) by cross-fitted test-time refinement, x (B, n, dx), y (B, n, dy)
    with dx, dy <= ``max_dim``.  Not differentiable in x and y (an estimate, not a loss)."""
    md = model.config.max_dim
    zx, zy, order, real = prepare(x, y, md, seeds=seeds)
    cx, cy = critic_inputs(model.config, zx, zy, real)
    b = zx.shape[0]
    hx, hy = take_halves(zx, order), take_halves(zy, order)  # hypernetwork input
    ex, ey = take_halves(cx, order), take_halves(cy, order)  # critic input
    h = hx.shape[1]
    with torch.no_grad():
        theta = model(hx, hy)
        stats = GaussianStats(hx, hy, real.repeat(2, 1)) if model.config.gaussian_critic else None
    m = min(h, config.max_rows)
    theta, _ = refine_critic(theta, model, ex[:, :m], ey[:, :m], stats, config)
    swap = other_half(b, x.device)
    other = torch.arange(h, device=x.device).expand(2 * b, -1)
    with torch.no_grad():
        # half 1's critic (and its Gaussian statistics) scored on half 2, and back
        held = dv_bound(theta, model.config, ex[swap], ey[swap], stats=stats, order=other)
    return rearrange(held, "(two b) -> two b", two=2).mean(0)

