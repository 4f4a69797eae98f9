"""MaxMI key-state discovery (Zhou & Yang, ECCV 2024) with a frozen MI loss or with MINE.

A key state is a state that its preceding state predicts well (more physical constraints
hold there), so a key-state localisation network is trained to maximise, across the demo
set, I(s_key; s_{key - dt}) for each of K concepts.  The network reads a whole trajectory
and outputs, per concept, a softmax over its time steps; the soft key state and the soft
preceding state are the probability-weighted states, so the MI loss is differentiable in
the network.  Concepts are kept in temporal order greedily within each demo (concept k only
after concept k - 1's key state) and made decisive by an entropy penalty; an overlap penalty
stops a soft key state and its soft prior from sharing samples.  Several locators train side
by side and vote (:mod:`.vote`).

Every setting lives in :class:`KeyStateConfig`; its defaults are what
``examples/maniskill_maxmi.py`` runs.  :class:`MaxMIObjective` is the loss,
:func:`discover_key_states` the trainer.  The MI term is ``SlicedMILoss`` (frozen pretrained
estimator, one batched forward pass for all concepts and slices) or, as the per-dataset
baseline, MINE critics trained alongside, one per MI term.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange
from torch import nn
from tqdm import tqdm

from ...loss import SlicedMILoss
from ..mine import MINE
from .common import Normalizer, init_parameters
from .vote import agreeing_consensus, consensus, phase_guard

ESTIMATORS = ("infoatlas", "mine")
VOTES = {"median": consensus, "agree": agreeing_consensus}


@dataclass(frozen=True)
class KeyStateConfig:
    """Settings of MaxMI key-state discovery.  The defaults are the example's.

    Attributes:
        estimator: ``"infoatlas"`` (frozen ``SlicedMILoss``) or ``"mine"`` (per-term MINE
            critics trained alongside, ``inner_steps`` critic updates per locator update).
        steps: locator updates.  dt: gap (steps) from a key state to its preceding state.
        contrast_gap: if > 0, maximise the MI *gain* I(s_key; s_key-dt) - I(s_key;
            s_key-contrast_gap) (0: the plain MaxMI objective).  The MI across demos rewards a
            concept at event A in some demos and at a look-alike event B in others: with L
            (which event) readable from both states, I(s_key; s_prior) = H(L) + I(s_key;
            s_prior | L).  L is also readable ``contrast_gap`` steps earlier, so H(L) cancels
            in the gain, and so does a static stretch's dependence on itself.
        lr, batch_size: Adam learning rate; demos per step (the MI is estimated across a
            random mini-batch of demos, so a step costs the same for any number of demos).
        num_slices: random projections per MI term (``SlicedMILoss``).
        entropy_weight, overlap_weight: sharpness penalty; penalty on mass ``dt`` steps apart.
        order_gap: concept k may only sit this fraction of the demo after concept k - 1's
            key state (None: 0.5 / K).
        mi_from: the MI reads state columns from this index on (the locator reads all).
        restarts: independently initialised locators trained side by side.
        vote: how the restarts' key states combine: ``"agree"`` (the median over the
            restarts that agree most, :func:`~.vote.agreeing_consensus`) or ``"median"``.
        guard: key states more than ``guard`` median absolute deviations off their
            concept's phase move back inside it (:func:`~.vote.phase_guard`; 0: off).
        inner_steps: MINE critic updates per locator update.
        trace_every: keep the hard indices every this many steps (error-vs-time curves).
    """
    estimator: str = "infoatlas"
    steps: int = 200
    dt: int = 4
    contrast_gap: int = 12
    lr: float = 3e-3
    batch_size: int = 128
    num_slices: int = 16
    entropy_weight: float = 0.05
    overlap_weight: float = 2.0
    order_gap: float | None = None
    mi_from: int = 0
    restarts: int = 5
    vote: str = "agree"
    guard: float = 4.0
    inner_steps: int = 5
    trace_every: int = 10

    def __post_init__(self):
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.vote not in VOTES:
            raise ValueError(f"vote must be one of {tuple(VOTES)}, got {self.vote!r}")
        if self.order_gap is not None and not 0 <= self.order_gap < 1:
            raise ValueError(f"order_gap is a fraction of the demo, in [0, 1); got {self.order_gap}")
        if self.restarts < 1:
            raise ValueError(f"restarts must be >= 1, got {self.restarts}")
        if self.guard < 0:
            raise ValueError(f"guard is a number of median absolute deviations >= 0, got {self.guard}")
        if self.contrast_gap and self.contrast_gap <= self.dt:
            raise ValueError(f"contrast_gap must exceed dt={self.dt}, got {self.contrast_gap}")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()):
        """One ``--field-name`` option per field, defaulting to the field's default."""
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            kind = float if f.default is None else type(f.default)
            choices = {"estimator": ESTIMATORS, "vote": tuple(VOTES)}.get(f.name)
            parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default,
                                choices=choices, help=f"key-state discovery (default {f.default})")

    @classmethod
    def from_args(cls, args: argparse.Namespace, **overrides) -> "KeyStateConfig":
        """The config of the options :meth:`add_arguments` added (others keep their default)."""
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        return cls(**given | overrides)

def pad_trajectories(demos) -> tuple[torch.Tensor, torch.Tensor]:
    """Demo state arrays -> z-scored states (N, T, D), edge-padded to the longest, and a
    validity mask (N, T)."""
    lengths = [len(d.states) for d in demos]
    t_max = max(lengths)
    norm = Normalizer.fit(np.concatenate([d.states for d in demos]), floor=1e-8)
    out = np.stack([np.pad(norm(d.states), ((0, t_max - len(d.states)), (0, 0)), mode="edge")
                    for d in demos])
    mask = torch.arange(t_max)[None] < torch.tensor(lengths)[:, None]
    return torch.as_tensor(out, dtype=torch.float32), mask


def shifted(states: torch.Tensor, dt: int) -> torch.Tensor:
    """s_{t - dt} for every t (the first state repeats before the start). (N, T, D)."""
    return torch.cat([states[:, :1].expand(-1, dt, -1), states[:, :-dt]], dim=1) if dt else states


def dynamic_columns(demos, mi_from: int = 0) -> torch.Tensor:
    """Boolean mask (D,) of the state columns the MaxMI objective reads: those that vary
    within some demo, from index ``mi_from`` on.  Features constant within every demo (goal
    position, object sizes) equal their own prior at every step: that dependence says
    nothing about *when* a key state is, and in random slices it would drown the signal."""
    dynamic = torch.as_tensor(np.stack([demo.states.std(0) for demo in demos]).max(0) > 1e-6)
    dynamic[:mi_from] = False
    if not dynamic.any():
        raise ValueError(f"no state column from index mi_from={mi_from} on varies within the demos")
    return dynamic


class KeyStateLocator(nn.Module):
    """Temporal conv net: trajectory (N, T, D) + mask -> per-concept log-probabilities over
    time (N, K, T).  Input features per step: the state, its change over the last ``dt``
    steps (what the MaxMI objective compares) and the normalised time t / T.  With ``gap``
    (fraction of the demo) concept k is restricted, demo by demo, to steps at least
    ``gap * length`` after the argmax of concept k - 1 (the last valid step if none is)."""

    def __init__(self, state_dim: int, num_concepts: int, hidden: int = 64, kernel: int = 5,
                 dt: int = 4, gap: float | None = None):
        super().__init__()
        pad = kernel // 2
        self.dt, self.gap = dt, gap
        self.net = nn.Sequential(
            nn.Conv1d(2 * state_dim + 1, hidden, kernel, padding=pad), nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel, padding=pad, dilation=1), nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel, padding=2 * pad, dilation=2), nn.GELU(),
            nn.Conv1d(hidden, num_concepts, 1))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1, keepdim=True).clamp(min=2)  # (N, 1); valid steps are a prefix
        steps = torch.arange(mask.shape[1], device=mask.device)
        t = steps[None] / (lengths - 1)  # (N, T)
        h = torch.cat([states, states - shifted(states, self.dt), t.unsqueeze(-1)], dim=-1)
        logits = self.net(rearrange(h, "n t d -> n d t"))  # (N, K, T)
        # a key state needs a real preceding state: before step dt the "prior" would be the
        # repeated first state, a copy that fakes maximal MI
        mask = mask & (steps >= self.dt)
        # unit-scale logits over the valid steps: the entropy penalty, not the network's
        # output scale, sets how sharp the distribution is
        m = mask.unsqueeze(1).to(logits)
        mean = (logits * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True)
        var = ((logits - mean) ** 2 * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True)
        logits = (logits - mean) / (var + 1e-6).sqrt()
        logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
        if self.gap is None:
            return logits.log_softmax(dim=-1)
        # greedy order within each demo: concept k may only sit at least gap * length steps
        # after concept k - 1's current argmax (a hard, gradient-free mask), so concept 1
        # takes the strongest MI peak and each later one the strongest that follows it
        out = [logits[:, 0].log_softmax(-1)]
        for k in range(1, logits.shape[1]):
            start = out[-1].detach().argmax(-1, keepdim=True) + (self.gap * lengths).ceil().long()
            allowed = (steps[None] >= start.clamp(max=lengths - 1)) & mask  # never empty
            out.append(logits[:, k].masked_fill(~allowed, float("-inf")).log_softmax(-1))
        return torch.stack(out, dim=1)


class MaxMIObjective(nn.Module):
    """The MaxMI loss of K concepts x R restarts on a demo set, for a mini-batch.

    Holds the z-scored, padded trajectories (N, T, D), their priors ``dt`` (and
    ``contrast_gap``) steps back and the MI estimator; ``forward(logp, batch)`` takes the
    locators' log-probabilities (b, R*K, T) for the demos ``batch`` (b,) and returns
    ``(loss, mi)``: the scalar to minimise and the MI objective per restart and concept
    (R*K,), in nats."""

    def __init__(self, demos, num_concepts: int, config: KeyStateConfig, *,
                 generator: torch.Generator, model=None):
        super().__init__()
        self.config, self.num_concepts = config, num_concepts
        self.states, self.mask = pad_trajectories(demos)
        self.dynamic = dynamic_columns(demos, config.mi_from)
        self.gaps = [config.dt] + ([config.contrast_gap] if config.contrast_gap else [])
        terms = config.restarts * num_concepts * len(self.gaps)
        if config.estimator == "infoatlas":
            self.mi = SlicedMILoss(model, num_slices=config.num_slices, reduction="none",
                                   generator=generator)
        else:
            self.mi = MINE(int(self.dynamic.sum()), terms, inner_steps=config.inner_steps,
                           generator=generator)

    def forward(self, logp: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c, r = self.config, self.config.restarts
        p = logp.exp()  # (b, RK, T)
        states = self.states[batch][..., self.dynamic]  # (b, T, D')
        key = torch.einsum("nkt,ntd->knd", p, states)  # (RK, b, D')
        # every gap's MI terms in one batched call: (G*RK, b, D')
        pre = torch.cat([torch.einsum("nkt,ntd->knd", p, shifted(states, g)) for g in self.gaps])
        mi = self.mi(key.repeat(len(self.gaps), 1, 1), pre)
        if len(self.gaps) == 2:
            mi = mi[:len(key)] - mi[len(key):]
        per_restart = lambda v: rearrange(v, "b (r k) -> r (b k)", r=r).mean(-1)  # noqa: E731  (R,)
        entropy = per_restart(-(p * logp.clamp(min=-1e4)).sum(-1)) / math.log(p.shape[-1])
        # mass at both t and t + dt makes the soft key state and the soft prior share s_t,
        # a dependence of the averaging, not of the data: penalise that overlap
        dt = c.dt
        overlap = per_restart((p[..., dt:] * p[..., :-dt]).sum(-1)) / per_restart((p * p).sum(-1)).clamp(min=1e-6)
        # each restart's loss is that of a single run; the restarts share no parameters
        loss = (-mi.sum() + c.entropy_weight * entropy.sum()
                + c.overlap_weight * overlap.sum() * self.num_concepts)
        return loss, mi


@dataclass
class KeyStateResult:
    """What :func:`discover_key_states` found."""
    indices: np.ndarray       # (N, K) hard key-state step per demo and concept (the restarts' vote)
    probs: np.ndarray         # (R, N, K, T) final soft assignment of each restart
    history: list[float]      # MI objective (nats, summed over concepts, mean over restarts) per step
    seconds: float            # wall time of the discovery
    estimator: str
    trace: list[tuple[float, np.ndarray]]  # (seconds so far, hard indices) every trace_every steps


def discover_key_states(demos, num_concepts: int, config: KeyStateConfig = KeyStateConfig(), *,
                        generator: torch.Generator | None = None, model=None,
                        max_seconds: float | None = None, progress: bool = True) -> KeyStateResult:
    """Train ``config.restarts`` :class:`KeyStateLocator` s on ``demos`` with :class:`MaxMIObjective`.

    Args:
        demos: list of :class:`~.demos.Demo` (N >= 16 of them).
        num_concepts: K key states per demo, in temporal order.
        config: every setting of the discovery (:class:`KeyStateConfig`).
        generator: source of all randomness (locator initialisation, mini-batches, slices,
            MINE's critics); default ``torch.Generator().manual_seed(0)``.
        model: InfoAtlas weights for ``SlicedMILoss`` (default: the shipped ``infoatlas-base``).
        max_seconds: stop early when the wall time exceeds this.

    Returns:
        :class:`KeyStateResult`; its hard indices are the restarts' ``config.vote`` over the
        argmax of each concept's distribution, then ``config.guard``.

    Reproducibility: the result is deterministic for a generator state *and* torch's thread
    count; another thread count sums in another order, and the rounding can send a restart
    to another event.
    """
    if len(demos) < 16:
        raise ValueError(f"MaxMI needs an MI estimate across demos: got {len(demos)}, need >= 16")
    c = config
    g = torch.Generator().manual_seed(0) if generator is None else generator
    gap = 0.5 / num_concepts if c.order_gap is None else c.order_gap
    # locators first: both estimators start from the same locators for the same generator
    locators = nn.ModuleList(init_parameters(KeyStateLocator(demos[0].states.shape[1], num_concepts,
                                                             dt=c.dt, gap=gap), g) for _ in range(c.restarts))
    objective = MaxMIObjective(demos, num_concepts, c, generator=g, model=model)
    states, mask = objective.states, objective.mask

    def locate(s, m):  # (b, R*K, T): every restart's concepts side by side
        return torch.cat([loc(s, m) for loc in locators], dim=1)

    def hard(logp):  # (b, R*K, T) -> (b, K) voted indices
        return VOTES[c.vote](rearrange(logp.argmax(-1), "b (r k) -> r b k", r=c.restarts))

    opt = torch.optim.Adam(locators.parameters(), lr=c.lr)
    history, trace = [], []
    start = time.perf_counter()
    for step in tqdm(range(c.steps), desc=f"MaxMI key states ({c.estimator})", disable=not progress):
        if step % c.trace_every == 0:
            with torch.no_grad():  # indices of all demos, for error-vs-time curves
                trace.append((time.perf_counter() - start, hard(locate(states, mask)).numpy()))
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
        batch = torch.randperm(len(states), generator=g)[:c.batch_size]
        loss, mi = objective(locate(states[batch], mask[batch]), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(mi.sum().detach()) / c.restarts)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logp = locate(states, mask)
    indices = hard(logp).numpy()
    probs = rearrange(logp.exp(), "n (r k) t -> r n k t", r=c.restarts).numpy()
    if c.guard:
        last = (mask.sum(1) - 1).numpy()  # each demo's last state index
        indices = phase_guard(indices, probs.mean(0), last, c.guard)
    trace.append((seconds, indices))
    return KeyStateResult(indices, probs, history, seconds, c.estimator, trace)


def key_state_error(demos, indices: np.ndarray, events: tuple[str, ...]) -> dict[str, float]:
    """Mean |key-state step - event step| per event (concept k is scored against event k),
    in simulator steps, plus the mean over events."""
    errs = {e: float(np.mean([abs(int(ix[k]) - d.events[e]) for d, ix in zip(demos, indices)]))
            for k, e in enumerate(events)}
    errs["mean"] = float(np.mean(list(errs.values())))
    return errs


def first_reach(trace, demos, events: tuple[str, ...], target: float) -> float | None:
    """Seconds until a :class:`KeyStateResult` trace's mean key-state error first is
    <= ``target`` steps (None if never)."""
    for seconds, idx in trace:
        if key_state_error(demos, idx, events)["mean"] <= target:
            return seconds
    return None


def random_key_states(demos, num_concepts: int, *, seed: int = 0) -> np.ndarray:
    """Control: K sorted uniformly random steps per demo. (N, K)."""
    rng = np.random.default_rng(seed)
    return np.stack([np.sort(rng.choice(np.arange(1, d.length + 1), num_concepts, replace=False))
                     for d in demos])
