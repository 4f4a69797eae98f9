"""A chain-of-thought transformer policy (CoTPC, Jia et al. 2023) at CPU scale.

A small causal transformer reads a window of past states (optionally with the previous
actions).  Beside every step's state token sit K learnable chain-of-thought query tokens;
they attend to the window up to their step and are trained to predict *all* K key states
of the demonstration (an auxiliary regression target), and the action head reads them
together with the step's state token.  Key states are supervision for the representation
only: at test time the policy needs none.  With K = 0 it is the same transformer without
key-state tokens.

Attention is causal in time: a token of step t sees the state tokens of steps <= t and
the tokens of its own step, so an action never depends on a later state.  Every window
position is supervised, so one window trains W actions.  As the BC policies do, it predicts
chunks of coming actions and executes the mean of every prediction made for a step.  Rollouts run in the simulator
through :func:`~.policy.actor_successes` with a :class:`WindowActor`.
"""
from __future__ import annotations

import functools
import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch
from einops import rearrange, repeat
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from .common import Normalizer, init_parameters
from .policy import ChunkedActor, action_chunks, actor_successes, to_relative


@dataclass(frozen=True)
class CoTConfig:
    """Settings of :class:`CoTPolicy` and :func:`train_cotpc`; the defaults are those of
    ``integrations/maniskill/experiments/cotpc_gate.py``.

    Attributes:
        window: steps of history the policy reads (W).
        width, layers, heads: transformer size (pre-norm blocks, no dropout).
        actions: also feed the previous (executed) action into each step's token.
        chunk: actions predicted per step (t .. t + chunk - 1), executed as the mean of every
            prediction made for the current step (ACT's temporal ensembling, as in BC).
        epochs: passes over every window start of every demo; batch: windows per update.
        lr, weight_decay: AdamW with a cosine schedule over all updates.
        key_weight: weight of the key-state regression beside the action regression.
        noise: std of Gaussian noise added to the normalised input states.
        log_every: updates between two points of the training curve.
    """
    window: int = 16
    width: int = 64
    layers: int = 2
    heads: int = 4
    actions: bool = False
    chunk: int = 8
    epochs: int = 20
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    key_weight: float = 1.0
    noise: float = 0.2
    log_every: int = 50

    def __post_init__(self):
        for name in ("window", "width", "layers", "heads", "chunk", "epochs", "batch", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be a multiple of heads ({self.heads})")
        for name in ("lr", "weight_decay", "key_weight", "noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def attention_mask(window: int, num_keys: int) -> torch.Tensor:
    """(L, L) bool, True where a query token may attend to a key token; tokens are ordered
    step by step, [state, cot_1, ..., cot_K] per step (L = window * (1 + K)).  A token sees
    the state tokens of its own and earlier steps and every token of its own step."""
    step = torch.arange(window).repeat_interleave(1 + num_keys)
    is_state = (torch.arange(window * (1 + num_keys)) % (1 + num_keys)) == 0
    earlier = step[None, :] <= step[:, None]
    return earlier & (is_state[None, :] | (step[None, :] == step[:, None]))


class _Block(nn.Module):
    """Pre-norm transformer block (masked self-attention and a GELU MLP)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(self.norm1(x)), "b l (three h d) -> three b h l d", three=3, h=self.heads)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(rearrange(y, "b h l d -> b l (h d)"))
        return x + self.mlp(self.norm2(x))


class CoTPolicy(nn.Module):
    """Causal transformer over a window of states with ``num_keys`` chain-of-thought query
    tokens per step.  ``forward(states (B, W, D), prev_actions (B, W, A) | None)`` ->
    (action chunks (B, W, chunk * A), key states (B, W, K, D) or None when K = 0), all normalised."""

    control_mode = "pd_joint_pos"  # what the actions mean (set by train_cotpc)

    def __init__(self, state_dim: int, action_dim: int, num_keys: int, config: CoTConfig = CoTConfig(), *,
                 generator: torch.Generator | None = None):
        super().__init__()
        g = torch.Generator().manual_seed(0) if generator is None else generator
        self.state_dim, self.action_dim, self.num_keys, self.config = state_dim, action_dim, num_keys, config
        self.chunk = config.chunk
        w = config.width
        self.state_in = nn.Linear(state_dim, w)
        self.action_in = nn.Linear(action_dim, w) if config.actions else None
        self.position = nn.Parameter(0.02 * torch.randn(config.window, w, generator=g))
        self.queries = nn.Parameter(0.02 * torch.randn(num_keys, w, generator=g))
        self.blocks = nn.ModuleList(_Block(w, config.heads) for _ in range(config.layers))
        self.norm = nn.LayerNorm(w)
        self.key_head = nn.Linear(w, state_dim) if num_keys else None
        self.action_head = nn.Sequential(nn.Linear(w * (1 + num_keys), 2 * w), nn.GELU(),
                                         nn.Linear(2 * w, config.chunk * action_dim))
        self.register_buffer("mask", attention_mask(config.window, num_keys), persistent=False)
        init_parameters(self, g)

    def forward(self, states: torch.Tensor, prev_actions: torch.Tensor | None = None):
        b, t, _ = states.shape
        if t > self.config.window:
            raise ValueError(f"at most window = {self.config.window} steps, got {t}")
        x = self.state_in(states) + self.position[:t]
        if self.action_in is not None:
            x = x + self.action_in(prev_actions)
        cot = repeat(self.queries, "k w -> b t k w", b=b, t=t) + self.position[:t, None]
        tokens = rearrange(torch.cat([x[:, :, None], cot], 2), "b t j w -> b (t j) w")
        n = t * (1 + self.num_keys)
        for block in self.blocks:
            tokens = block(tokens, self.mask[:n, :n])
        h = rearrange(self.norm(tokens), "b (t j) w -> b t j w", j=1 + self.num_keys)
        actions = self.action_head(rearrange(h, "b t j w -> b t (j w)"))
        return actions, (self.key_head(h[:, :, 1:]) if self.num_keys else None)


@dataclass
class CoTResult:
    """A trained :func:`train_cotpc` policy, its normalisers and its training curve (rows
    ``(update, action loss, key-state loss)``, the losses averaged since the previous row)."""
    policy: CoTPolicy
    state_norm: Normalizer
    action_norm: Normalizer
    curve: list[tuple[int, float, float]] = field(default_factory=list)
    seconds: float = 0.0


def _window_index(lengths: torch.Tensor, starts: torch.Tensor, demo: torch.Tensor, window: int):
    """Flat row indices (B, W) of windows ``start .. start + W - 1`` in each demo (clipped to its
    last step) and whether each position lies in the demo."""
    offsets = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), lengths[:-1]]), 0)
    pos = starts[:, None] + torch.arange(window)
    valid = pos < lengths[demo][:, None]
    return offsets[demo][:, None] + torch.minimum(pos, lengths[demo][:, None] - 1), valid


def train_cotpc(demos, key_indices: np.ndarray | None = None, config: CoTConfig = CoTConfig(), *,
                generator: torch.Generator | None = None, progress: bool = True) -> CoTResult:
    """Train a :class:`CoTPolicy` on the demos' windows; with ``key_indices`` (N, K) (state
    indices of each demo's key states) its K chain-of-thought tokens regress the K key states
    (normalised, MSE, weight ``config.key_weight``); without, K = 0.  Actions are the demos'
    own (joint targets as offsets from the current joints, as BC clones them).  ``generator``:
    source of the initialisation, batches and noise (default ``Generator().manual_seed(0)``)."""
    g = torch.Generator().manual_seed(0) if generator is None else generator
    modes = {d.control_mode for d in demos}
    if len(modes) != 1:
        raise ValueError(f"demos mix control modes {sorted(modes)}")
    mode = modes.pop()
    if key_indices is not None and len(key_indices) != len(demos):
        raise ValueError(f"{len(key_indices)} rows of key states for {len(demos)} demos")
    per_demo = [d.actions if mode != "pd_joint_pos" else to_relative(d.states[:-1], d.actions) for d in demos]
    sn = Normalizer.fit(np.concatenate([d.states[:-1] for d in demos]))
    an = Normalizer.fit(np.concatenate(per_demo))
    f32 = functools.partial(torch.as_tensor, dtype=torch.float32)
    s = f32(np.concatenate([sn(d.states[:-1]) for d in demos]))
    a = f32(np.concatenate([action_chunks(an(x), config.chunk) for x in per_demo]))
    # the action before each step (zero, the normalised mean, before a demo's first step)
    prev = f32(np.concatenate([np.concatenate([np.zeros_like(x[:1]), an(x)[:-1]]) for x in per_demo]))
    k = 0 if key_indices is None else int(np.shape(key_indices)[1])
    keys = None if k == 0 else f32(np.stack([sn(d.states[np.asarray(i)]) for d, i in zip(demos, key_indices)]))
    lengths = torch.tensor([d.length for d in demos])
    demo_of = torch.repeat_interleave(torch.arange(len(demos)), lengths)   # every window start
    start_of = torch.cat([torch.arange(n) for n in lengths.tolist()])
    policy = CoTPolicy(s.shape[1], len(an.mean), k, config, generator=g)
    policy.control_mode = mode
    per_epoch = math.ceil(len(demo_of) / config.batch)
    opt = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.epochs * per_epoch)
    curve, sums, t0, update = [], [0.0, 0.0, 0], time.time(), 0
    for _ in tqdm(range(config.epochs), desc="CoTPC", disable=not progress, leave=False):
        for batch in torch.randperm(len(demo_of), generator=g).split(config.batch):
            rows, valid = _window_index(lengths, start_of[batch], demo_of[batch], config.window)
            x = s[rows] + config.noise * torch.randn(rows.shape + (s.shape[1],), generator=g)
            pred, key_pred = policy(x, prev[rows] if config.actions else None)
            w = valid[..., None].float()
            action_loss = ((pred - a[rows]) ** 2 * w).sum() / (w.sum() * a.shape[1])
            key_loss = torch.zeros(())
            if k:
                target = repeat(keys[demo_of[batch]], "b k d -> b t k d", t=config.window)
                key_loss = ((key_pred - target) ** 2 * w[..., None]).sum() / (w.sum() * k * s.shape[1])
            opt.zero_grad()
            (action_loss + config.key_weight * key_loss).backward()
            opt.step()
            sched.step()
            update += 1
            sums = [sums[0] + action_loss.item(), sums[1] + key_loss.item(), sums[2] + 1]
            if update % config.log_every == 0 or update == config.epochs * per_epoch:
                curve.append((update, sums[0] / sums[2], sums[1] / sums[2]))
                sums = [0.0, 0.0, 0]
    return CoTResult(policy.eval(), sn, an, curve, time.time() - t0)


class WindowActor(ChunkedActor):
    """Runs a :class:`CoTResult` step by step: raw flat state (D,) -> env action (A,), from
    the last ``window`` states of the episode, chunks temporally ensembled as
    :class:`~.policy.ChunkedActor` does; call :meth:`reset` at each episode's start."""

    def reset(self):
        super().reset()
        window = self.policy.config.window
        self.states, self.prev = deque(maxlen=window), deque(maxlen=window)
        self.executed = np.zeros(self.policy.action_dim)  # normalised action before step 0

    def predict(self, state: np.ndarray) -> np.ndarray:
        self.states.append(self.sn(state))
        self.prev.append(self.executed)
        f32 = functools.partial(torch.as_tensor, dtype=torch.float32)
        prev = f32(np.stack(self.prev))[None] if self.policy.config.actions else None
        with torch.no_grad():
            pred = self.policy(f32(np.stack(self.states))[None], prev)[0][0, -1]
        return rearrange(pred, "(c a) -> c a", c=self.chunk).numpy()


def cotpc_successes(task: str, trained: CoTResult, seeds, *, max_steps: int, workers: int = 1) -> list[bool]:
    """Per env seed, whether the :func:`train_cotpc` policy reaches ``success`` within ``max_steps``."""
    return actor_successes(task, functools.partial(WindowActor, trained, max_steps),
                           trained.policy.control_mode, seeds,
                           max_steps=max_steps, workers=workers)
