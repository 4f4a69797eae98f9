"""MaxMI key-state discovery (Zhou & Yang, ECCV 2024) with a frozen MI loss or with MINE.

A key state is a state that its preceding state predicts well (more physical constraints
hold there), so a key-state localisation network is trained to maximise, across the demo
set, I(s_key; s_{key - dt}) for each of K concepts.  The network reads a whole trajectory
and outputs, per concept, a softmax over its time steps; the soft key state and the soft
preceding state are the probability-weighted states, so the MI loss is differentiable in
the network.  Concepts are kept in temporal order greedily within each demo (concept k only
after concept k - 1's key state) and made decisive by an entropy penalty; an overlap penalty
stops a soft key state and its soft prior from sharing samples.  Several locators train side
by side and vote: a demo's key state is the median of their choices, or of the restarts
that agree most (``vote="agree"``), optionally with outlying phases re-placed (``guard``;
both in :mod:`.vote`).

The MI term is ``SlicedMILoss`` (frozen pretrained estimator, one batched forward pass for
all concepts and slices) or, as the per-dataset baseline, MINE critics trained alongside,
one per MI term (``inner_steps`` critic updates per localiser update).
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

from .demos import Normalizer
from .mine import MINECritic
from .vote import agreeing_consensus, consensus, phase_guard  # noqa: F401  (public here too)

ESTIMATORS = ("infoatlas", "mine")  # discover_key_states(estimator=...)
MINE_CRITICS = ("per-term", "shared")  # discover_key_states(mine_critics=...)


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
    steps (what the MaxMI objective compares; left out with ``change=False``) and the
    normalised time t / T.  With ``gap``
    (fraction of the demo) concept k is restricted, demo by demo, to steps at least
    ``gap * length`` after the argmax of concept k - 1 (the last valid step if none is)."""

    def __init__(self, state_dim: int, num_concepts: int, hidden: int = 64, kernel: int = 5,
                 dt: int = 4, gap: float | None = None, change: bool = True):
        super().__init__()
        pad = kernel // 2
        self.dt, self.gap, self.change = dt, gap, change
        self.net = nn.Sequential(
            nn.Conv1d((2 if change else 1) * state_dim + 1, hidden, kernel, padding=pad), nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel, padding=pad, dilation=1), nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel, padding=2 * pad, dilation=2), nn.GELU(),
            nn.Conv1d(hidden, num_concepts, 1))

    def forward(self, states: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0
                ) -> torch.Tensor:
        lengths = mask.sum(1, keepdim=True).clamp(min=2)  # (N, 1); valid steps are a prefix
        steps = torch.arange(mask.shape[1], device=mask.device)
        t = steps[None] / (lengths - 1)  # (N, T)
        change = [states - shifted(states, self.dt)] if self.change else []
        h = torch.cat([states, *change, t.unsqueeze(-1)], dim=-1)
        logits = self.net(rearrange(h, "n t d -> n d t"))  # (N, K, T)
        # a key state needs a real preceding state: before step dt the "prior" would be the
        # repeated first state, a copy that fakes maximal MI
        mask = mask & (steps >= self.dt)
        # unit-scale logits over the valid steps: the temperature alone sets how sharp the
        # distribution is (the network cannot undo the annealing by shrinking its output)
        m = mask.unsqueeze(1).to(logits)
        mean = (logits * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True)
        var = ((logits - mean) ** 2 * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True)
        logits = (logits - mean) / (var + 1e-6).sqrt() / temperature
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


@dataclass
class KeyStateResult:
    indices: np.ndarray       # (N, K) hard key-state step per demo and concept (restarts' vote)
    probs: np.ndarray         # (R, N, K, T) final soft assignment of each restart
    history: list[float]      # MI objective (nats, summed over concepts, mean over restarts) per step
    seconds: float            # wall time of the discovery
    estimator: str
    trace: list[tuple[float, np.ndarray]]  # (seconds so far, hard indices) every trace_every steps


def discover_key_states(demos, num_concepts: int, *, estimator: str = "infoatlas", steps: int = 300,
                        dt: int = 4, lr: float = 3e-3, num_slices: int = 16, inner_steps: int = 5,
                        order_weight: float = 5.0, entropy_weight: float = 0.05, overlap_weight: float = 2.0,
                        final_temperature: float = 1.0, order: str = "greedy",
                        order_gap: float | None = None,
                        batch_size: int = 128, max_seconds: float | None = None,
                        trace_every: int = 10, model=None, contrast_gap: int | None = None,
                        mi_from: int = 0, restarts: int = 5, vote: str = "median",
                        guard: float | None = None, change_feature: bool = True,
                        mine_critics: str = "per-term", seed: int = 0,
                        progress: bool = True) -> KeyStateResult:
    """Train a :class:`KeyStateLocator` with the MaxMI objective on ``demos``.

    Args:
        demos: list of :class:`~integrations.maniskill.demos.Demo` (N of them).
        num_concepts: K key states per demo, in temporal order.
        estimator: ``"infoatlas"`` (frozen ``SlicedMILoss``) or ``"mine"`` (trained critic).
        steps: localiser updates; dt: gap (steps) to the preceding state.
        inner_steps: MINE critic updates per localiser update (ignored for infoatlas).
        mine_critics: ``"per-term"`` (each MI term, i.e. concept, restart and gap, its own
            MINE critic, trained side by side in one batched pass: MINE as run per term) or
            ``"shared"`` (one critic scores every term; the only MINE before session 17, a
            weaker baseline: on StackCube its key states drift to worse than random).
        batch_size: demos per step (the MI is estimated across a random mini-batch of demos,
            so a step costs the same for any number of demos).
        order_weight, entropy_weight, overlap_weight: temporal-order hinge (``order="hinge"``), sharpness
            penalty and the penalty on mass dt steps apart (see below).
        order: how the concepts are kept in temporal order.  ``"greedy"``: within each
            demo, concept k may only sit ``order_gap`` (fraction of the demo) after concept
            k - 1's current key state (a hard mask, see :class:`KeyStateLocator`), so concept
            1 takes the strongest MI peak and each later concept the strongest one after it.
            ``"hinge"``: a penalty (weight ``order_weight``) when the concepts' mean expected
            times are less than ``order_gap`` apart (earlier default; concept 1 often settled
            at the demo's start while concept 2 took the strongest peak).
        order_gap: see ``order`` (default 0.5 / K).
        final_temperature: softmax temperature at the last step (annealed from 1; 1 = no
            annealing, the default: with the overlap penalty it found the events best).
        max_seconds: stop early when the wall time exceeds this.
        trace_every: keep the hard indices every this many steps (to plot error vs time).
        model: InfoAtlas weights for ``SlicedMILoss`` (default: the shipped ``infoatlas-base``).
        contrast_gap: if set (> dt), maximise the MI *gain*
            I(s_key; s_key-dt) - I(s_key; s_key-contrast_gap) instead.  Why: the MI across
            demos rewards a concept that sits at event A in some demos and at a look-alike
            event B in others.  If the label L (A or B) can be read from the key state and
            from its prior, I(s_key; s_prior) = H(L) + I(s_key; s_prior | L): the mix earns up
            to log 2 nats more than the two events' average.  L can also be read from the state
            ``contrast_gap`` steps earlier, so H(L) cancels in the gain, and so does the
            dependence of a static stretch on itself.  On StackCube (grasp vs the release
            pause) it stopped restarts from mixing (demos > 10 steps off the grasp: 12% -> 1%
            with seed 0) and lifted guided BC; on PickCube its key states are a little further off
            the events (see integrations/maniskill/RESULTS.md).
        mi_from: the MI reads state columns from this index on (e.g. 18 leaves out the
            Panda's joint positions and velocities); the locator still reads all of them.
        restarts: R independently initialised locators trained side by side (their MI terms
            in one batched ``SlicedMILoss`` call); the key state of a demo is the median of
            their argmaxes (see :func:`consensus`).  The objective cannot tell a locked
            restart from one whose concept scattered over the demo (both score high MI), but
            the restarts that lock agree with each other.
        vote: ``"median"`` (:func:`consensus`) or ``"agree"`` (:func:`agreeing_consensus`:
            the median over the restarts that agree most, for when most restarts miss).
        guard: if set, key states at an outlying phase of their demo (more than ``guard``
            median absolute deviations from their concept's) move to the most probable step
            inside the window (:func:`phase_guard`).
        change_feature: the locator reads each state's change over ``dt`` steps besides the
            state and the time (see :class:`KeyStateLocator`).  Events are where the state
            changes, so with it even untrained locators vote near them; ``False`` (an
            ablation) leaves more of the placing to the time input and the MI objective.

    Returns:
        :class:`KeyStateResult` with hard indices (the restarts' ``vote`` over the argmax of
        each concept's distribution, then ``guard`` if set).

    Reproducibility: the result is deterministic for a seed *and* torch's thread count;
    another thread count sums in another order, and the rounding differences can send a
    restart to another event (StackCube, 100 demos, seed 0: 7.2 steps with one thread,
    16.4 with two; ``benchmarks/results/maxmi_seeds/StackCube-100-threads.md``).
    """
    if mine_critics not in MINE_CRITICS:
        raise ValueError(f"mine_critics must be one of {MINE_CRITICS}, got {mine_critics!r}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if len(demos) < 16:
        raise ValueError(f"MaxMI needs an MI estimate across demos: got {len(demos)}, need >= 16")
    if order not in ("greedy", "hinge"):
        raise ValueError(f"order must be 'greedy' or 'hinge', got {order!r}")
    gap = 0.5 / num_concepts if order_gap is None else order_gap
    if not 0 <= gap < 1:
        raise ValueError(f"order_gap is a fraction of the demo, in [0, 1); got {order_gap}")
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    if vote not in ("median", "agree"):
        raise ValueError(f"vote must be 'median' or 'agree', got {vote!r}")
    combine = consensus if vote == "median" else agreeing_consensus
    if guard is not None and guard <= 0:
        raise ValueError(f"guard is a number of median absolute deviations > 0, got {guard}")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    states, mask = pad_trajectories(demos)
    prior = shifted(states, dt)
    if contrast_gap is not None and contrast_gap <= dt:
        raise ValueError(f"contrast_gap must exceed dt={dt}, got {contrast_gap}")
    far = shifted(states, contrast_gap) if contrast_gap else None
    n, t_len, d = states.shape
    dynamic = dynamic_columns(demos, mi_from)
    locators = nn.ModuleList(KeyStateLocator(d, num_concepts, dt=dt, gap=None if order == "hinge" else gap,
                                             change=change_feature) for _ in range(restarts))

    def locate(s, m, temperature):  # (b, R*K, T): every restart's concepts side by side
        return torch.cat([loc(s, m, temperature) for loc in locators], dim=1)

    def hard(logp):  # (b, R*K, T) -> (b, K) consensus indices
        return combine(rearrange(logp.argmax(-1), "b (r k) -> r b k", r=restarts))

    opt = torch.optim.Adam(locators.parameters(), lr=lr)
    if estimator == "infoatlas":
        mi_fn = SlicedMILoss(model, num_slices=num_slices, reduction="none", generator=g)
    else:
        terms = 1 if mine_critics == "shared" else restarts * num_concepts * (2 if contrast_gap else 1)
        critic = MINECritic(int(dynamic.sum()), terms=terms)
        copt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    lengths = mask.sum(1).float()
    times = torch.arange(t_len)[None] / (lengths[:, None] - 1)  # (N, T) in [0, 1]
    history, trace = [], []
    start = time.perf_counter()
    for step in tqdm(range(steps), desc=f"MaxMI key states ({estimator})", disable=not progress):
        # anneal from soft (explores, gradients everywhere) to nearly one state per concept
        temperature = final_temperature ** (step / max(steps - 1, 1))
        batch = torch.randperm(n, generator=g)[:batch_size]
        logp = locate(states[batch], mask[batch], temperature)  # (b, R*K, T)
        p = logp.exp()
        if step % trace_every == 0:
            with torch.no_grad():  # indices of all demos, for error-vs-time curves
                full = hard(locate(states, mask, temperature)).numpy()
            trace.append((time.perf_counter() - start, full))
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
        key = torch.einsum("nkt,ntd->knd", p, states[batch][..., dynamic])  # (R*K, b, D')
        pre = torch.einsum("nkt,ntd->knd", p, prior[batch][..., dynamic])
        if far is not None:  # both gaps in one batched call: (2RK, b, D')
            key = torch.cat([key, key])
            pre = torch.cat([pre, torch.einsum("nkt,ntd->knd", p, far[batch][..., dynamic])])
        if estimator == "infoatlas":
            mi = mi_fn(key, pre)  # (RK,) or (2RK,)
        else:
            for _ in range(inner_steps):
                closs = -critic(key.detach(), pre.detach(), g).sum()
                copt.zero_grad()
                closs.backward()
                copt.step()
            mi = critic(key, pre, g)
        if far is not None:
            mi = mi[:restarts * num_concepts] - mi[restarts * num_concepts:]
        hinge = 0.0
        if num_concepts > 1 and order == "hinge":  # within each restart, on mean expected times
            tau = rearrange((p * times[batch].unsqueeze(1)).sum(-1).mean(0), "(r k) -> r k", r=restarts)
            hinge = F.relu(tau[:, :-1] + gap - tau[:, 1:]).sum()
        per_restart = lambda v: rearrange(v, "b (r k) -> r (b k)", r=restarts).mean(-1)  # (R,)
        entropy = per_restart(-(p * logp.clamp(min=-1e4)).sum(-1)) / math.log(t_len)
        # mass at both t and t + dt makes the soft key state and the soft prior share s_t,
        # a dependence of the averaging, not of the data: penalise that overlap
        overlap = per_restart((p[..., dt:] * p[..., :-dt]).sum(-1)) / per_restart((p * p).sum(-1)).clamp(min=1e-6)
        # each restart's loss is that of a single run; the restarts share no parameters
        loss = (-mi.sum() + order_weight * hinge + entropy_weight * entropy.sum()
                + overlap_weight * overlap.sum() * num_concepts)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(mi.sum().detach()) / restarts)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logp = locate(states, mask, final_temperature)
    indices = hard(logp).numpy()
    probs = rearrange(logp.exp(), "n (r k) t -> r n k t", r=restarts).numpy()
    if guard is not None:
        indices = phase_guard(indices, probs.mean(0), (lengths - 1).numpy(), guard)  # last state index
    trace.append((seconds, indices))
    return KeyStateResult(indices, probs, history, seconds, estimator, trace)


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
