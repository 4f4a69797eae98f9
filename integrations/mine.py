"""MINE (Belghazi et al. 2018), the per-dataset trained MI estimator that the frozen loss is
compared against, in one place: the bound with MINE's bias-corrected gradient
(:func:`mine_bound`), the per-term critic of key-state discovery (:class:`MINECritic`) and
the critic trained alongside a model (:class:`MINE`).  ``benchmarks.baselines_neural``
trains its per-dataset critic with the same :func:`mine_bound`.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def mine_bound(joint: torch.Tensor, marginal: torch.Tensor, log_ma: torch.Tensor | None,
               ema: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Donsker-Varadhan bound mean T(joint) - log mean e^T(marginal), in nats.

    Args:
        joint: critic scores on paired samples (..., n).
        marginal: critic scores on shuffled pairs (..., m).
        log_ma: log of the moving average of mean e^T (None on the first call).
        ema: rate of that moving average.

    Returns:
        ``(bound (...), log_ma (...))``.  The bound's value is the DV bound; its gradient is
        MINE's: the gradient of log mean e^T is replaced by grad mean e^T / moving average,
        which removes the minibatch bias.  Pass ``log_ma`` back in on the next call.
    """
    lse = torch.logsumexp(marginal, -1) - math.log(marginal.shape[-1])  # log mean e^T
    cur = lse.detach()
    log_ma = cur if log_ma is None else torch.logaddexp(math.log(1 - ema) + log_ma, math.log(ema) + cur)
    j = joint.mean(-1)
    corrected = j - torch.exp(lse - log_ma)
    return corrected + ((j - lse) - corrected).detach(), log_ma


class _TermLinear(nn.Module):
    """``terms`` independent linear layers applied side by side: (M, N, i) -> (M, N, o),
    initialised as ``nn.Linear`` is, from ``generator``."""

    def __init__(self, terms: int, i: int, o: int, generator: torch.Generator):
        super().__init__()
        bound = 1 / math.sqrt(i)
        self.weight = nn.Parameter(torch.rand(terms, i, o, generator=generator) * 2 * bound - bound)
        self.bias = nn.Parameter(torch.rand(terms, 1, o, generator=generator) * 2 * bound - bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias


class MINECritic(nn.Module):
    """``terms`` DV critics T(x, y), one per MI term, evaluated side by side in one pass.

    Forward: x (M, N, D), y (M, N, D) -> the bound per term (M,), nats (see :func:`mine_bound`)."""

    def __init__(self, dim: int, terms: int, *, hidden: int = 128, generator: torch.Generator):
        super().__init__()
        self.terms = terms
        linear = lambda i, o: _TermLinear(terms, i, o, generator)  # noqa: E731
        self.net = nn.Sequential(linear(2 * dim, hidden), nn.ELU(), linear(hidden, hidden), nn.ELU(),
                                 linear(hidden, 1))
        self.log_ma = None

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.shape[0] != self.terms:
            raise ValueError(f"critic has {self.terms} terms, got {x.shape[0]} MI terms")
        perm = torch.randperm(x.shape[1], generator=generator)
        score = lambda a, b: self.net(torch.cat([a, b], -1)).squeeze(-1)  # noqa: E731  (M, N)
        bound, log_ma = mine_bound(score(x, y), score(x, y[:, perm]), self.log_ma)
        self.log_ma = log_ma.detach()
        return bound


class MINE(nn.Module):
    """MI terms estimated by per-term MINE critics trained alongside the model that makes
    the samples: every call first takes ``inner_steps`` Adam steps on the critics with the
    samples detached, then returns the bound with its gradient to the samples.

    Same contract as ``SlicedMILoss(reduction="none")`` on (M, N, D) inputs: (M,) nats."""

    def __init__(self, dim: int, terms: int, *, inner_steps: int = 5, lr: float = 1e-3,
                 generator: torch.Generator):
        super().__init__()
        self.critic = MINECritic(dim, terms, generator=generator)
        self.opt = torch.optim.Adam(self.critic.parameters(), lr=lr)
        self.inner_steps, self.generator = inner_steps, generator

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for _ in range(self.inner_steps):
            loss = -self.critic(x.detach(), y.detach(), self.generator).sum()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        return self.critic(x, y, self.generator)
