"""MaxMI key-state discovery (Zhou & Yang, ECCV 2024) with a frozen MI loss or with MINE.

A key state is a state that its preceding state predicts well (more physical constraints
hold there), so a key-state localisation network is trained to maximise, across the demo
set, I(s_key; s_{key - dt}) for each of K concepts.  The network reads a whole trajectory
and outputs, per concept, a softmax over its time steps; the soft key state and the soft
preceding state are the probability-weighted states, so the MI loss is differentiable in
the network.  Concepts are kept in temporal order by a hinge on their expected times and
made decisive by an entropy penalty.

The MI term is ``SlicedMILoss`` (frozen pretrained estimator, one batched forward pass for
all concepts and slices) or, as the per-dataset baseline, a MINE critic trained alongside
(``inner_steps`` critic updates per localiser update).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from tqdm import tqdm

from infoatlas_loss import SlicedMILoss


def pad_trajectories(demos) -> tuple[torch.Tensor, torch.Tensor]:
    """Demo state arrays -> z-scored states (N, T, D), edge-padded to the longest, and a
    validity mask (N, T)."""
    lengths = [len(d.states) for d in demos]
    t_max = max(lengths)
    flat = np.concatenate([d.states for d in demos])
    mean, std = flat.mean(0), flat.std(0)
    std[std < 1e-8] = 1.0
    out = np.stack([np.pad((d.states - mean) / std, ((0, t_max - len(d.states)), (0, 0)), mode="edge")
                    for d in demos])
    mask = torch.arange(t_max)[None] < torch.tensor(lengths)[:, None]
    return torch.as_tensor(out, dtype=torch.float32), mask


class KeyStateLocator(nn.Module):
    """Temporal conv net: trajectory (N, T, D) + mask -> per-concept log-probabilities over
    time (N, K, T).  Input features are the state and the normalised time t / T."""

    def __init__(self, state_dim: int, num_concepts: int, hidden: int = 64, kernel: int = 5):
        super().__init__()
        pad = kernel // 2
        self.net = nn.Sequential(
            nn.Conv1d(state_dim + 1, hidden, kernel, padding=pad), nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel, padding=pad, dilation=1), nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel, padding=2 * pad, dilation=2), nn.GELU(),
            nn.Conv1d(hidden, num_concepts, 1))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1, keepdim=True).clamp(min=2)
        t = torch.arange(states.shape[1], device=states.device)[None] / (lengths - 1)  # (N, T)
        h = torch.cat([states, t.unsqueeze(-1)], dim=-1)
        logits = self.net(rearrange(h, "n t d -> n d t"))  # (N, K, T)
        logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
        return logits.log_softmax(dim=-1)


def shifted(states: torch.Tensor, dt: int) -> torch.Tensor:
    """s_{t - dt} for every t (the first state repeats before the start). (N, T, D)."""
    return torch.cat([states[:, :1].expand(-1, dt, -1), states[:, :-dt]], dim=1) if dt else states


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


@dataclass
class KeyStateResult:
    indices: np.ndarray       # (N, K) hard key-state step per demo and concept
    probs: np.ndarray         # (N, K, T) final soft assignment
    history: list[float]      # MI objective (nats, summed over concepts) per step
    seconds: float            # wall time of the discovery
    estimator: str


def discover_key_states(demos, num_concepts: int, *, estimator: str = "infoatlas", steps: int = 300,
                        dt: int = 4, lr: float = 3e-3, num_slices: int = 16, inner_steps: int = 5,
                        order_weight: float = 5.0, entropy_weight: float = 0.05,
                        seed: int = 0, progress: bool = True) -> KeyStateResult:
    """Train a :class:`KeyStateLocator` with the MaxMI objective on ``demos``.

    Args:
        demos: list of :class:`~integrations.maniskill.demos.Demo` (N of them).
        num_concepts: K key states per demo, in temporal order.
        estimator: ``"infoatlas"`` (frozen ``SlicedMILoss``) or ``"mine"`` (trained critic).
        steps: localiser updates; dt: gap (steps) to the preceding state.
        inner_steps: MINE critic updates per localiser update (ignored for infoatlas).
        order_weight, entropy_weight: temporal-order hinge and sharpness penalty.

    Returns:
        :class:`KeyStateResult` with hard indices (argmax of each concept's distribution).
    """
    if estimator not in ("infoatlas", "mine"):
        raise ValueError(f"estimator must be 'infoatlas' or 'mine', got {estimator!r}")
    if len(demos) < 16:
        raise ValueError(f"MaxMI needs an MI estimate across demos: got {len(demos)}, need >= 16")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    states, mask = pad_trajectories(demos)
    prior = shifted(states, dt)
    n, t_len, d = states.shape
    locator = KeyStateLocator(d, num_concepts)
    opt = torch.optim.Adam(locator.parameters(), lr=lr)
    if estimator == "infoatlas":
        mi_fn = SlicedMILoss(num_slices=num_slices, reduction="none", generator=g)
    else:
        critic = MINECritic(d)
        copt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    lengths = mask.sum(1).float()
    times = torch.arange(t_len)[None] / (lengths[:, None] - 1)  # (N, T) in [0, 1]
    history = []
    start = time.perf_counter()
    for _ in tqdm(range(steps), desc=f"MaxMI key states ({estimator})", disable=not progress):
        logp = locator(states, mask)  # (N, K, T)
        p = logp.exp()
        key = torch.einsum("nkt,ntd->knd", p, states)  # (K, N, D)
        pre = torch.einsum("nkt,ntd->knd", p, prior)
        if estimator == "infoatlas":
            mi = mi_fn(key, pre)  # (K,)
        else:
            for _ in range(inner_steps):
                closs = -critic(key.detach(), pre.detach(), g).sum()
                copt.zero_grad()
                closs.backward()
                copt.step()
            mi = critic(key, pre, g)
        tau = (p * times.unsqueeze(1)).sum(-1).mean(0)  # (K,) mean expected time
        order = F.relu(tau[:-1] + 0.5 / num_concepts - tau[1:]).sum() if num_concepts > 1 else 0.0
        entropy = -(p * logp.clamp(min=-1e4)).sum(-1).mean() / math.log(t_len)
        loss = -mi.sum() + order_weight * order + entropy_weight * entropy
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(mi.sum()))
    seconds = time.perf_counter() - start
    with torch.no_grad():
        p = locator(states, mask).exp()
    return KeyStateResult(p.argmax(-1).numpy(), p.numpy(), history, seconds, estimator)


def key_state_error(demos, indices: np.ndarray, events: tuple[str, ...]) -> dict[str, float]:
    """Mean |key-state step - event step| per event (concept k is scored against event k),
    in simulator steps, plus the mean over events."""
    errs = {e: float(np.mean([abs(int(ix[k]) - d.events[e]) for d, ix in zip(demos, indices)]))
            for k, e in enumerate(events)}
    errs["mean"] = float(np.mean(list(errs.values())))
    return errs


def random_key_states(demos, num_concepts: int, *, seed: int = 0) -> np.ndarray:
    """Control: K sorted uniformly random steps per demo. (N, K)."""
    rng = np.random.default_rng(seed)
    return np.stack([np.sort(rng.choice(np.arange(1, d.length + 1), num_concepts, replace=False))
                     for d in demos])
