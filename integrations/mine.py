"""MINE (Belghazi et al. 2018): the per-dataset trained MI estimator that key-state discovery
is compared against."""
from __future__ import annotations

import math

import torch
from torch import nn


class _TermLinear(nn.Module):
    """``terms`` independent linear layers applied side by side: (M, N, i) -> (M, N, o)."""

    def __init__(self, terms: int, i: int, o: int):
        super().__init__()
        bound = 1 / math.sqrt(i)  # nn.Linear's default initialisation range
        self.weight = nn.Parameter(torch.empty(terms, i, o).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(terms, 1, o).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias


class MINECritic(nn.Module):
    """Per-dataset DV critic T(x, y) with the moving-average gradient correction of MINE.

    With ``terms=1`` one critic scores every MI term (concept, restart, gap) of a call; with
    ``terms=M`` each of the M terms has its own critic (trained side by side in one batched
    pass), as when MINE is run once per MI term."""

    def __init__(self, dim: int, hidden: int = 128, terms: int = 1):
        super().__init__()
        self.terms = terms
        # one shared critic keeps plain nn.Linear layers (and their initialisation), so runs
        # from before per-term critics existed reproduce
        linear = nn.Linear if terms == 1 else lambda i, o: _TermLinear(terms, i, o)
        self.net = nn.Sequential(linear(2 * dim, hidden), nn.ELU(), linear(hidden, hidden), nn.ELU(),
                                 linear(hidden, 1))
        self.ma = None

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """DV bound (nats) per term for x, y (K, N, D), K = ``terms`` unless the critic is
        shared; the returned value carries MINE's bias-corrected gradient."""
        if self.terms not in (1, x.shape[0]):
            raise ValueError(f"critic has {self.terms} terms, got {x.shape[0]} MI terms")
        perm = torch.randperm(x.shape[1], generator=generator)
        score = lambda a, b: self.net(torch.cat([a, b], -1)).squeeze(-1)  # noqa: E731  (K, N)
        joint, marg = score(x, y), score(x, y[:, perm])
        mean_exp = marg.exp().mean(1)
        with torch.no_grad():
            self.ma = mean_exp if self.ma is None else 0.99 * self.ma + 0.01 * mean_exp
        dv = joint.mean(1) - torch.log(mean_exp)
        # grad of log E[e^T] replaced by grad E[e^T] / moving average (Belghazi et al. 2018)
        corrected = joint.mean(1) - mean_exp / self.ma.detach()
        return corrected + (dv - corrected).detach()
