"""MINE (Belghazi et al. 2018): the per-dataset trained MI estimator that key-state discovery
is compared against."""
from __future__ import annotations

import torch
from torch import nn


class MINECritic(nn.Module):
    """Per-dataset DV critic T(x, y) with the moving-average gradient correction of MINE."""

    def __init__(self, dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ELU(), nn.Linear(hidden, hidden),
                                 nn.ELU(), nn.Linear(hidden, 1))
        self.ma = None

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """DV bound (nats) per concept for x, y (K, N, D); the returned value carries MINE's
        bias-corrected gradient."""
        perm = torch.randperm(x.shape[1], generator=generator)
        joint = self.net(torch.cat([x, y], -1)).squeeze(-1)  # (K, N)
        marg = self.net(torch.cat([x, y[:, perm]], -1)).squeeze(-1)
        mean_exp = marg.exp().mean(1)
        with torch.no_grad():
            self.ma = mean_exp if self.ma is None else 0.99 * self.ma + 0.01 * mean_exp
        dv = joint.mean(1) - torch.log(mean_exp)
        # grad of log E[e^T] replaced by grad E[e^T] / moving average (Belghazi et al. 2018)
        corrected = joint.mean(1) - mean_exp / self.ma.detach()
        return corrected + (dv - corrected).detach()
