"""Two-view self-supervised objectives that ``benchmarks.infomax_batch`` compares InfoMax with.

Every objective takes the representations of two augmented views of the same images,
``a`` and ``b`` of shape (n, d) (row i of ``a`` and row i of ``b`` come from one image), and
returns a scalar **loss to minimise**.  The MI-based ones also report the MI lower bound they
optimise, in nats, as ``last_bound``.

* InfoNCE (van den Oord et al. 2018, the two-view form of CLIP / SimCLR): cosine
  similarities over a temperature, the other n - 1 images of the batch as negatives, the
  cross-entropy of both directions averaged.  I(a; b) >= log n - loss, so the bound can
  never exceed log n.
* VICReg (Bardes et al. 2022): invariance (mean squared distance of the two views) +
  variance (hinge keeping every column's standard deviation at >= 1) + covariance (squared
  off-diagonal covariances, divided by d), weights 25 / 25 / 1 as in the paper.
* Barlow Twins (Zbontar et al. 2021): the cross-correlation matrix of the column-standardised
  views is pushed to the identity; off-diagonal weight ``lambd`` (paper: 0.0051).
* MINE (Belghazi et al. 2018): a critic T(a, b) (a second set of parameters, trained jointly
  with the encoder by the same optimiser) and the Donsker-Varadhan bound
  I >= E_P[T] - log E_{P_a P_b}[e^T], with the product pairs from a random permutation of
  ``b`` and the moving-average gradient correction of the paper
  (:func:`infoatlas_loss.integrations.mine.mine_bound`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from infoatlas_loss.integrations.mine import mine_bound

from .baselines_neural import ConcatCritic

__all__ = ["InfoNCE", "VICReg", "BarlowTwins", "MINE"]


def _check_views(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"views must both be (n, d) with the same shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if a.shape[0] < 2:
        raise ValueError(f"need at least 2 samples per batch, got {a.shape[0]}")


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square matrix (d, d) as a flat (d * d - d,) tensor."""
    return m[~torch.eye(m.shape[0], dtype=torch.bool, device=m.device)]


class InfoNCE(nn.Module):
    """Symmetric two-view InfoNCE on cosine similarities; loss in nats, bound = log n - loss."""

    def __init__(self, temperature: float = 0.2):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.last_bound: float | None = None

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        _check_views(a, b)
        a, b = nn.functional.normalize(a, dim=1), nn.functional.normalize(b, dim=1)
        logits = a @ b.T / self.temperature  # (n, n): [i, j] = cos(a_i, b_j) / t
        target = torch.arange(a.shape[0], device=a.device)
        loss = 0.5 * (nn.functional.cross_entropy(logits, target)
                      + nn.functional.cross_entropy(logits.T, target))
        self.last_bound = math.log(a.shape[0]) - float(loss.detach())
        return loss


class VICReg(nn.Module):
    """Variance-invariance-covariance loss (dimensionless; not an MI bound)."""

    def __init__(self, sim: float = 25.0, var: float = 25.0, cov: float = 1.0, eps: float = 1e-4):
        super().__init__()
        self.sim, self.var, self.cov, self.eps = sim, var, cov, eps
        self.last_bound = None

    def _var_cov(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = z - z.mean(0)
        std = torch.sqrt(z.var(0) + self.eps)  # (d,)
        c = z.T @ z / (z.shape[0] - 1)  # (d, d)
        return torch.relu(1 - std).mean(), _off_diagonal(c).pow(2).sum() / z.shape[1]

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        _check_views(a, b)
        (va, ca), (vb, cb) = self._var_cov(a), self._var_cov(b)
        inv = nn.functional.mse_loss(a, b)
        return self.sim * inv + self.var * (va + vb) + self.cov * (ca + cb)


class BarlowTwins(nn.Module):
    """Cross-correlation-to-identity loss (dimensionless; not an MI bound)."""

    def __init__(self, lambd: float = 0.0051):
        super().__init__()
        self.lambd = float(lambd)
        self.last_bound = None

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        _check_views(a, b)
        std = lambda z: (z - z.mean(0)) / z.std(0).clamp_min(1e-6)  # noqa: E731  (n, d)
        c = std(a).T @ std(b) / a.shape[0]  # (d, d) cross-correlation
        return (torch.diagonal(c) - 1).pow(2).sum() + self.lambd * _off_diagonal(c).pow(2).sum()


class MINE(nn.Module):
    """Negative Donsker-Varadhan bound of a jointly trained critic; loss = -bound (nats).

    The critic's parameters are ``self.parameters()``: give them to the encoder's optimiser,
    so one step raises the bound in both the critic and the encoder.  ``generator`` draws the
    permutations that make the product-of-marginals pairs.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...] = (64, 64), ema: float = 0.01,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.critic = ConcatCritic(dim, dim, hidden)
        self.ema, self.generator = float(ema), generator
        self.log_ma: torch.Tensor | None = None
        self.last_bound: float | None = None

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        _check_views(a, b)
        perm = torch.randperm(a.shape[0], generator=self.generator)
        bound, log_ma = mine_bound(self.critic(a, b), self.critic(a, b[perm]), self.log_ma,
                                   ema=self.ema)
        self.log_ma = log_ma.detach()
        self.last_bound = float(bound.detach())
        return -bound
