"""The generated critic T_theta(x, y) and the Donsker-Varadhan (DV) bound.

theta is a flat vector per batch item: the weights and biases of a small MLP on the
concatenated pair [x, y], followed (when ``config.gaussian_critic``) by one gate g.
The critic is

    T(x, y) = MLP_theta([x, y]) + g * log( N([x, y]; S) / (N(x; S_xx) N(y; S_yy)) )

where S is the covariance of the normal scores of the context sample: the analytic
Gaussian-copula log density ratio, which the generated MLP corrects.  The estimate is the
DV bound  mean_joint T - log mean_marginal exp(T)  in nats.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

from .config import InfoAtlasConfig

# shrinkage of the covariance towards its diagonal: caps the Gaussian term at ~2.8 nats
# per canonical pair for duplicated columns instead of dividing by zero
_SHRINK = 2e-3
# soft bound |T| < _T_MAX: on a fresh sample, a misspecified Gaussian term can reach 1e4
# nats where the context covariance is nearly singular; the bound keeps the DV finite
_T_MAX = 20.0


def _layer_shapes(config: InfoAtlasConfig) -> list[tuple[int, int]]:
    w = config.critic_layers
    return list(zip(w[1:], w[:-1]))  # (out, in) per layer


def num_critic_params(config: InfoAtlasConfig) -> int:
    n = sum(o * i + o for o, i in _layer_shapes(config))
    return n + int(config.gaussian_critic)


def critic_init(config: InfoAtlasConfig) -> torch.Tensor:
    """A flat parameter vector initialised like ``nn.Linear`` (gate = 1)."""
    parts = []
    for o, i in _layer_shapes(config):
        bound = 1.0 / math.sqrt(i)
        parts += [torch.empty(o * i).uniform_(-bound, bound), torch.empty(o).uniform_(-bound, bound)]
    if config.gaussian_critic:
        parts.append(torch.ones(1))
    return torch.cat(parts)


def critic_mlp(theta: torch.Tensor, config: InfoAtlasConfig, v: torch.Tensor) -> torch.Tensor:
    """Apply the generated MLP. theta (B, P), v (B, M, 2 * max_dim) -> (B, M)."""
    offset = 0
    shapes = _layer_shapes(config)
    h = v
    for li, (o, i) in enumerate(shapes):
        w = rearrange(theta[:, offset:offset + o * i], "b (o i) -> b o i", o=o)
        offset += o * i
        bias = theta[:, offset:offset + o]
        offset += o
        h = torch.einsum("bmi,boi->bmo", h, w) + bias.unsqueeze(1)
        if li < len(shapes) - 1:
            h = F.gelu(h)
    return h.squeeze(-1)


def _shrink_cross(cov: torch.Tensor, k: int, real: torch.Tensor, n: int) -> torch.Tensor:
    """Positive-part James-Stein shrinkage of the cross-covariance block.

    Under independence the squared whitened cross-correlations sum to about dx * dy / n,
    which the in-sample Gaussian term turns into a spurious dx * dy / (2n) nats (0.25 nats
    for 5 + 5 dims at n = 50).  Scaling the block by max(0, 1 - dx dy / (n ||R||^2)) removes
    most of that and leaves strong dependence untouched (factor 1 - O(1/n)).
    """
    lx = torch.linalg.cholesky(cov[:, :k, :k])
    ly = torch.linalg.cholesky(cov[:, k:, k:])
    r = torch.linalg.solve_triangular(lx, cov[:, :k, k:], upper=False)
    r = torch.linalg.solve_triangular(ly, r.transpose(-1, -2), upper=False)  # (B, k, k)
    dof = real[:, :k].sum(-1) * real[:, k:].sum(-1)  # real column pairs (B,)
    factor = torch.relu(1 - dof / (n * r.pow(2).sum((-1, -2)) + 1e-12))
    cross = cov[:, :k, k:] * factor[:, None, None]
    top = torch.cat([cov[:, :k, :k], cross], dim=-1)
    bottom = torch.cat([cross.transpose(-1, -2), cov[:, k:, k:]], dim=-1)
    return torch.cat([top, bottom], dim=-2)


class GaussianStats:
    """Mean and precision difference of the Gaussian-copula log ratio, from a context sample.

    x (B, n, k), y (B, n, k) normal scores; ``real`` (B, 2k) marks the columns that carry
    data (False for noise padding and constant columns, whose covariances with everything
    are known to be zero and are set so).  ``quad(v)`` gives the log ratio (up to a constant
    that cancels in the DV bound) for pairs v (B, M, 2k).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, real: torch.Tensor | None = None):
        v = torch.cat([x, y], dim=-1)
        n, k = v.shape[1], x.shape[-1]
        if real is None:
            real = torch.ones(v.shape[0], 2 * k, dtype=torch.bool, device=v.device)
        self.mean = v.mean(dim=1, keepdim=True)  # (B, 1, 2k)
        c = v - self.mean
        cov = torch.einsum("bni,bnj->bij", c, c) / max(n - 1, 1)
        eye = torch.eye(2 * k, dtype=torch.bool, device=v.device)
        cov = cov * ((real.unsqueeze(-1) & real.unsqueeze(-2)) | eye)
        diag = torch.diagonal(cov, dim1=-2, dim2=-1)
        # constant (all-zero) columns get a unit variance so the inverse exists
        cov = (1 - _SHRINK) * cov + (_SHRINK * diag + (diag <= 0).to(v.dtype)).unsqueeze(-1) * eye
        cov = _shrink_cross(cov, k, real, n)
        blocks = torch.zeros_like(cov)
        blocks[:, :k, :k] = torch.linalg.inv(cov[:, :k, :k])
        blocks[:, k:, k:] = torch.linalg.inv(cov[:, k:, k:])
        self.a = torch.linalg.inv(cov) - blocks  # (B, 2k, 2k)

    def quad(self, v: torch.Tensor) -> torch.Tensor:
        c = v - self.mean
        return -0.5 * torch.einsum("bmi,bij,bmj->bm", c, self.a, c)


def critic(theta: torch.Tensor, config: InfoAtlasConfig, v: torch.Tensor,
           stats: GaussianStats | None) -> torch.Tensor:
    """T_theta on pairs v (B, M, 2 * max_dim) -> (B, M)."""
    t = critic_mlp(theta, config, v)
    if config.gaussian_critic:
        t = t + theta[:, -1:] * stats.quad(v)
    return _T_MAX * torch.tanh(t / _T_MAX)


def canonical_order(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A pseudo-random order of the samples that depends only on their per-column ranks.

    Sorting by a hash of each pair's ranks makes the noise padding and the marginal pairing,
    and so the estimate, exactly invariant to a permutation of the input rows and to
    strictly monotone transforms of the marginals.  x (B, n, dx), y (B, n, dy), hash
    weights w (B, dx + dy) -> indices (B, n).
    """
    v = torch.cat([x, y], dim=-1).detach()
    ranks = torch.argsort(torch.argsort(v, dim=1), dim=1).to(torch.float64) / v.shape[1]
    h = torch.einsum("bnd,bd->bn", ranks, w.to(ranks) * 7.3 + 1.1)
    h = torch.sin(h) * 43758.5453
    return torch.argsort(h - torch.floor(h), dim=1)


def default_shifts(n: int) -> int:
    """Shifts per sample: 16 up to n = 2048, then fewer so that about 32k marginal pairs
    (never fewer than 4 per sample) bound the cost at large n."""
    return min(16, max(4, -(-32768 // n)))


def marginal_pairs(x: torch.Tensor, y: torch.Tensor, num_shifts: int,
                   order: torch.Tensor) -> torch.Tensor:
    """Pairs (x_i, y_j), i != j, from the product of marginals.

    In canonical order, sample k is paired with sample k + s for ``num_shifts`` evenly spread
    shifts s (all n - 1 shifts, i.e. all pairs, when n is small).  Returns (B, n * S, 2k).
    """
    n = x.shape[1]
    s = min(num_shifts, n - 1)
    shifts = [1 + (j * (n - 1)) // s for j in range(s)]
    idx = order.unsqueeze(-1)  # (B, n, 1)
    xo = torch.gather(x, 1, idx.expand(-1, -1, x.shape[-1]))
    yo = torch.gather(y, 1, idx.expand(-1, -1, y.shape[-1]))
    ys = torch.cat([torch.roll(yo, -sh, dims=1) for sh in shifts], dim=1)  # (B, n*S, k)
    xs = xo.repeat(1, s, 1)
    return torch.cat([xs, ys], dim=-1)


def dv_bound(theta: torch.Tensor, config: InfoAtlasConfig, x: torch.Tensor, y: torch.Tensor, *,
             stats: GaussianStats | None, order: torch.Tensor, num_shifts: int | None = None
             ) -> torch.Tensor:
    """DV lower bound in nats with the generated critic.

    Args:
        theta: critic parameters (B, P).
        x, y: evaluation pairs (B, n, max_dim) (normal scores, noise-padded).
        stats: Gaussian-copula statistics of the context (needed if ``gaussian_critic``).
        order: canonical sample order (B, n) from :func:`canonical_order`.
        num_shifts: marginal pairs per sample (default :func:`default_shifts`).

    Returns:
        (B,) estimates, ``mean T(joint) - log mean exp T(marginal)``.
    """
    joint = critic(theta, config, torch.cat([x, y], dim=-1), stats)  # (B, n)
    num_shifts = num_shifts or default_shifts(x.shape[1])
    marg = critic(theta, config, marginal_pairs(x, y, num_shifts, order), stats)  # (B, n*S)
    return joint.mean(dim=1) - (torch.logsumexp(marg, dim=1) - math.log(marg.shape[1]))
