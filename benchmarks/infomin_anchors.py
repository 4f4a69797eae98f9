"""Dependence penalties that ``benchmarks.fairness`` compares InfoMin with.

Every regulariser is an ``nn.Module`` called as ``penalty = reg(z, s)`` with a representation
``z`` (n, dz) and the sensitive variable ``s`` one-hot encoded, (n, k) float (k = 2 for a
binary s); the training loop adds ``weight * penalty`` to its task loss, so minimising the
sum lowers the dependence of z on s.  Gradients flow into z only.  Methods with their own
networks keep them, and their own Adam optimiser, inside: the training loop calls
``reg.fit(z.detach(), s)`` before the penalty (the inner loop; a no-op for most) and
``reg.after_backward()`` after ``loss.backward()``.

* ``Adversary`` (Ganin et al. 2016): an MLP classifier of s from z behind a gradient
  reversal layer; penalty = its cross-entropy (nats).  The adversary descends it, the
  encoder ascends it, in one backward pass; the adversary's Adam steps in
  ``after_backward`` (second optimiser, no inner loop).
* ``HSIC`` (Gretton et al. 2005): biased HSIC, tr(K H L H) / (n - 1)^2, Gaussian kernels
  with the median heuristic (median of the nonzero squared distances, no gradient).
* ``DistanceCorrelation`` (Szekely et al. 2007): sample distance correlation in [0, 1].
* ``PearsonDecorrelation``: mean squared cross-covariance of the z-scored columns of z and
  s (= squared Pearson correlations), in [0, 1]; sees linear dependence only.
* ``VCLUB`` (Cheng et al. 2020): a classifier q(s | z) fitted by ``inner_steps`` Adam steps
  on the detached batch before each penalty; penalty = mean log q(s_i | z_i) - mean over i
  and the batch's class frequencies p_c of log q(c | z_i), an MI upper bound in nats when q
  is good.
* ``MINEInner`` (Belghazi et al. 2018): a critic T(z, s) raised by ``inner_steps`` Adam steps
  on the Donsker-Varadhan bound (detached z), then the bound itself is the penalty (nats).
* ``SliceInfoMin`` (Chen et al. 2022): ``num_slices`` random unit directions theta per call;
  per slice, the largest correlation between a polynomial of tanh(theta^T z) (degree
  ``order``) and a linear function of s (any function of s, for one-hot s), solved in
  closed form (ridge CCA on the detached batch: the inner solve); penalty = the largest
  squared correlation over slices, in [0, 1].
"""
from __future__ import annotations

import math

import torch
from torch import nn

from infoatlas_loss.integrations.mine import mine_bound

__all__ = ["Adversary", "HSIC", "DistanceCorrelation", "PearsonDecorrelation", "VCLUB",
           "MINEInner", "SliceInfoMin", "Regulariser", "seeded_mlp"]


def seeded_mlp(sizes: list[int], generator: torch.Generator) -> nn.Sequential:
    """ReLU MLP with layer widths ``sizes``, nn.Linear's default init drawn from ``generator``."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        bound = 1 / math.sqrt(a)
        with torch.no_grad():
            lin.weight.copy_(torch.rand(lin.weight.shape, generator=generator) * 2 * bound - bound)
            lin.bias.copy_(torch.rand(lin.bias.shape, generator=generator) * 2 * bound - bound)
        layers += [lin] if i == len(sizes) - 2 else [lin, nn.ReLU()]
    return nn.Sequential(*layers)


def _check(z: torch.Tensor, s: torch.Tensor) -> None:
    if z.dim() != 2 or s.dim() != 2 or z.shape[0] != s.shape[0]:
        raise ValueError(f"z and s must be (n, dz) and (n, k) with the same n, got "
                         f"{tuple(z.shape)} and {tuple(s.shape)}")
    if z.shape[0] < 4:
        raise ValueError(f"need at least 4 samples per batch, got {z.shape[0]}")


def _zscore(v: torch.Tensor) -> torch.Tensor:
    """Columns of v (n, d) centred and scaled to unit sd (constant columns only centred)."""
    c = v - v.mean(0)
    return c / c.std(0).clamp_min(1e-8)


class Regulariser(nn.Module):
    """Base class: ``reg(z, s)`` is the penalty; ``fit`` and ``after_backward`` default to no-ops."""

    inner_loop = "none"  # how the method's own parameters are fitted, for the tables

    def fit(self, z: torch.Tensor, s: torch.Tensor) -> None:
        """Inner loop on the detached batch (no-op unless the method has one)."""

    def after_backward(self) -> None:
        """Step the method's own optimiser after the encoder's backward pass, if any."""


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -g


class Adversary(Regulariser):
    """Gradient-reversal adversary; penalty = cross-entropy of s given z (nats)."""

    inner_loop = "adversary MLP, second Adam, same backward pass"

    def __init__(self, z_dim: int, k: int, *, hidden: int = 64, lr: float = 1e-3,
                 generator: torch.Generator):
        super().__init__()
        self.net = seeded_mlp([z_dim, hidden, hidden, k], generator)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)

    def forward(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        _check(z, s)
        self.opt.zero_grad()
        return nn.functional.cross_entropy(self.net(_GradReverse.apply(z)), s.argmax(1))

    def after_backward(self) -> None:
        self.opt.step()


def _median_gram(v: torch.Tensor) -> torch.Tensor:
    """Gaussian Gram matrix (n, n) of v (n, d), bandwidth^2 = median nonzero squared distance."""
    d2 = torch.cdist(v, v).pow(2)  # (n, n)
    nz = d2.detach()[d2.detach() > 0]
    h = nz.median() if nz.numel() else d2.new_tensor(1.0)
    return torch.exp(-d2 / (2 * h))


def _double_centre(m: torch.Tensor) -> torch.Tensor:
    return m - m.mean(0, keepdim=True) - m.mean(1, keepdim=True) + m.mean()


class HSIC(Regulariser):
    """Biased HSIC with Gaussian kernels (median heuristic); >= 0, dimensionless."""

    def forward(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        _check(z, s)
        n = z.shape[0]
        return (_double_centre(_median_gram(z)) * _median_gram(s)).sum() / (n - 1) ** 2


class DistanceCorrelation(Regulariser):
    """Sample distance correlation dCor(z, s) in [0, 1] (0 iff independent, in population)."""

    def forward(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        _check(z, s)
        dist = lambda v: torch.sqrt(torch.cdist(v, v).pow(2) + 1e-10)  # noqa: E731  smooth at 0
        a, b = _double_centre(dist(z)), _double_centre(dist(s))
        dcov2, vz, vs = (a * b).mean(), (a * a).mean(), (b * b).mean()
        return torch.sqrt(dcov2.clamp_min(0) / torch.sqrt(vz * vs).clamp_min(1e-12) + 1e-12)


class PearsonDecorrelation(Regulariser):
    """Mean squared cross-covariance of the z-scored columns (squared correlations), [0, 1]."""

    def forward(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        _check(z, s)
        c = _zscore(z).T @ _zscore(s) / (z.shape[0] - 1)  # (dz, k) correlations
        return c.pow(2).mean()


class VCLUB(Regulariser):
    """Variational CLUB upper bound with a classifier q(s | z); nats."""

    def __init__(self, z_dim: int, k: int, *, hidden: int = 64, lr: float = 1e-3,
                 inner_steps: int = 5, generator: torch.Generator):
        super().__init__()
        self.q = seeded_mlp([z_dim, hidden, hidden, k], generator)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=lr)
        self.inner_steps = int(inner_steps)
        self.inner_loop = f"{self.inner_steps} Adam steps on q(s|z) per step"

    def fit(self, z: torch.Tensor, s: torch.Tensor) -> None:
        labels = s.argmax(1)
        for _ in range(self.inner_steps):
            self.opt.zero_grad()
            nn.functional.cross_entropy(self.q(z), labels).backward()
            self.opt.step()

    def forward(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        _check(z, s)
        logq = torch.log_softmax(self.q(z), dim=1)  # (n, k)
        positive = logq.gather(1, s.argmax(1, keepdim=True)).mean()
        negative = (logq @ s.mean(0)).mean()  # log q(c | z_i) averaged over c ~ p(s), i
        return positive - negative


class MINEInner(Regulariser):
    """Donsker-Varadhan bound of a critic trained in an inner loop; nats."""

    def __init__(self, z_dim: int, k: int, *, hidden: int = 64, lr: float = 1e-3,
                 inner_steps: int = 5, generator: torch.Generator):
        super().__init__()
        self.critic = seeded_mlp([z_dim + k, hidden, hidden, 1], generator)
        self.opt = torch.optim.Adam(self.critic.parameters(), lr=lr)
        self.inner_steps, self.generator = int(inner_steps), generator
        self.inner_loop = f"{self.inner_steps} Adam steps on the critic per step"
        self.log_ma: torch.Tensor | None = None

    def _bound(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        perm = torch.randperm(z.shape[0], generator=self.generator)
        t = lambda a, b: self.critic(torch.cat([a, b], 1)).squeeze(1)  # noqa: E731  (n,)
        bound, log_ma = mine_bound(t(z, s), t(z, s[perm]), self.log_ma)
        self.log_ma = log_ma.detach()
        return bound

    def fit(self, z: torch.Tensor, s: torch.Tensor) -> None:
        for _ in range(self.inner_steps):
            self.opt.zero_grad()
            (-self._bound(z, s)).backward()
            self.opt.step()

    def forward(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        _check(z, s)
        return self._bound(z, s)


class SliceInfoMin(Regulariser):
    """Largest squared slice correlation between tanh-polynomial features of theta^T z and s."""

    inner_loop = "closed-form CCA per slice (no optimiser)"

    def __init__(self, *, num_slices: int = 16, order: int = 3, ridge: float = 1e-3,
                 generator: torch.Generator):
        super().__init__()
        self.num_slices, self.order, self.ridge, self.generator = num_slices, order, ridge, generator

    def _whitener(self, cov: torch.Tensor) -> torch.Tensor:
        """Inverse Cholesky factor of cov (.., d, d) + ridge * mean variance * I."""
        d = cov.shape[-1]
        scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1)[..., None, None].clamp_min(1e-12)
        chol = torch.linalg.cholesky(cov + self.ridge * scale * torch.eye(d, dtype=cov.dtype))
        return torch.linalg.inv(chol)

    def forward(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        _check(z, s)
        n, dz = z.shape
        theta = torch.randn(dz, self.num_slices, generator=self.generator, dtype=z.dtype)
        t = torch.tanh(_zscore(z) @ (theta / theta.norm(dim=0)))  # (n, S)
        f = torch.stack([t ** (p + 1) for p in range(self.order)], -1)  # (n, S, order)
        f = f - f.mean(0)
        g = s - s.mean(0)  # (n, k)
        with torch.no_grad():  # inner solve: canonical directions a (S, order), b (S, k)
            wf = self._whitener(torch.einsum("nsi,nsj->sij", f, f) / (n - 1))  # (S, o, o)
            wg = self._whitener(g.T @ g / (n - 1))  # (k, k)
            cross = torch.einsum("nsi,nk->sik", f, g) / (n - 1)  # (S, o, k)
            u, _, vh = torch.linalg.svd(wf @ cross @ wg.T)
            a = (wf.transpose(-1, -2) @ u[..., :1]).squeeze(-1)  # (S, o)
            b = (wg.T @ vh[:, :1, :].transpose(-1, -2)).squeeze(-1)  # (S, k)
        fa, gb = torch.einsum("nsi,si->ns", f, a), g @ b.T  # (n, S) each
        rho = (_zscore(fa) * _zscore(gb)).sum(0) / (n - 1)  # (S,)
        return rho.pow(2).max()
