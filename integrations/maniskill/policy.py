"""Behaviour cloning from the demos, plain or key-state guided, and simulator evaluation.

The key-state-guided policy follows CoTPC (Jia et al. 2023) in a small form: from the
state it predicts the *next* key state of the demonstration (the subgoal) and conditions
its action on that prediction; training adds the subgoal regression to the action loss.
At test time the policy predicts its own subgoals, so key states are needed only to train.
Actions are the demos' own (end-effector deltas after ``convert.to_ee_delta``, or joint
targets, cloned as offsets from the current joints), optionally predicted in chunks.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from einops import rearrange
from torch import nn
from tqdm import tqdm

from .common import Normalizer, init_parameters, map_jobs
from .env import ARM_JOINTS


def _mlp(i: int, o: int, hidden: int, depth: int) -> nn.Sequential:
    layers, w = [], i
    for _ in range(depth):
        layers += [nn.Linear(w, hidden), nn.GELU()]
        w = hidden
    return nn.Sequential(*layers, nn.Linear(w, o))


class BCPolicy(nn.Module):
    """MLP policy on normalised states; with ``subgoal=True`` it also predicts where the next
    key state is relative to the current state (normalised units; the last ``goal_dim``
    state columns, default all) and feeds that prediction to its action head."""

    chunk = 1  # actions predicted per query (set by train_bc)
    control_mode = "pd_joint_pos"  # what the actions mean (set by train_bc)

    def __init__(self, state_dim: int, action_dim: int, *, subgoal: bool, hidden: int = 256,
                 goal_dim: int | None = None, condition: bool = True):
        super().__init__()
        self.subgoal, self.condition = subgoal, subgoal and condition
        self.goal_dim = goal_dim = goal_dim or state_dim
        self.trunk = _mlp(state_dim, hidden, hidden, 2)
        self.goal_head = _mlp(hidden, goal_dim, hidden, 1) if subgoal else None
        self.action_head = _mlp(hidden + (goal_dim if self.condition else 0), action_dim, hidden, 1)

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = torch.relu(self.trunk(s))
        if not self.subgoal:
            return self.action_head(h), None
        # the offset to the subgoal says where to go next, which transfers across layouts
        offset = self.goal_head(h)
        if not self.condition:  # subgoal prediction as an auxiliary task only
            return self.action_head(h), offset
        return self.action_head(torch.cat([h, offset], -1)), offset


def subgoal_targets(demo, key_indices: np.ndarray) -> np.ndarray:
    """For every step t of a demo, the state at its next key state (>= t + 1), or the final
    state after the last one. (T, D)."""
    keys = sorted(int(k) for k in key_indices) + [demo.length]
    nxt = [next(k for k in keys if k >= t + 1) for t in range(demo.length)]
    return demo.states[nxt]


def to_relative(states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Joint-position targets -> offsets from the current joint positions (gripper as is):
    the offsets are small and alike across the workspace, so they are easier to clone."""
    out = actions.copy()
    out[..., :ARM_JOINTS] -= states[..., :ARM_JOINTS]
    return out


def from_relative(states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    out = actions.copy()
    out[..., :ARM_JOINTS] += states[..., :ARM_JOINTS]
    return out


def action_chunks(actions: np.ndarray, chunk: int) -> np.ndarray:
    """(T, A) -> (T, chunk * A): actions t .. t + chunk - 1 for every step t, the last action
    repeated past the demo's end."""
    idx = np.minimum(np.arange(len(actions))[:, None] + np.arange(chunk), len(actions) - 1)
    return rearrange(actions[idx], "t c a -> t (c a)")


@dataclass
class BCResult:
    """A trained :func:`train_bc` policy with the normalisers of its states and actions."""
    policy: BCPolicy
    state_norm: Normalizer
    action_norm: Normalizer


def train_bc(demos, key_indices: np.ndarray | None = None, *, epochs: int = 60, batch: int = 256,
             lr: float = 1e-3, goal_weight: float = 1.0, noise: float = 0.05,
             goal_from: int = 0, condition: bool = True, chunk: int = 1,
             generator: torch.Generator | None = None, progress: bool = True) -> BCResult:
    """Behaviour cloning; key-state guided when ``key_indices`` (N, K) is given.

    ``noise``: std of Gaussian noise added to the normalised input states (robustness to
    the small drifts a cloned policy makes).  ``goal_from``: first state column of the
    subgoal (e.g. 18 skips the Panda's joint positions and velocities); ``condition``: feed
    the predicted subgoal to the action head (else it is an auxiliary target only);
    ``chunk``: predict the next ``chunk`` actions at once and, at test time, execute the
    average of every prediction made for the current step (ACT's temporal ensembling: a
    pause in the demos, where one state is followed by "stay" and then "go", no longer
    averages into a slow drift).  The subgoal is regressed with MSE.  ``generator``: source
    of the initialisation, batches and noise (default ``torch.Generator().manual_seed(0)``).
    Returns a :class:`BCResult` for :func:`evaluate`.
    """
    g = torch.Generator().manual_seed(0) if generator is None else generator
    modes = {d.control_mode for d in demos}
    if len(modes) != 1:
        raise ValueError(f"demos mix control modes {sorted(modes)}")
    mode = modes.pop()
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    s = np.concatenate([d.states[:-1] for d in demos])
    per_demo = [d.actions if mode != "pd_joint_pos" else to_relative(d.states[:-1], d.actions)
                for d in demos]
    an = Normalizer.fit(np.concatenate(per_demo))
    sn = Normalizer.fit(s)
    a = np.concatenate([action_chunks(an(x), chunk) for x in per_demo])
    tensors = [torch.as_tensor(sn(s), dtype=torch.float32), torch.as_tensor(a, dtype=torch.float32)]
    if key_indices is not None:
        goals = np.concatenate([subgoal_targets(d, k) for d, k in zip(demos, key_indices)])
        offsets = (sn(goals) - sn(s))[:, goal_from:]
        tensors.append(torch.as_tensor(offsets, dtype=torch.float32))
    policy = init_parameters(BCPolicy(s.shape[1], a.shape[1], subgoal=key_indices is not None,
                                      goal_dim=s.shape[1] - goal_from, condition=condition), g)
    policy.chunk = chunk
    policy.control_mode = mode  # what its actions mean; evaluation builds the env to match
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in tqdm(range(epochs), desc="behaviour cloning", disable=not progress, leave=False):
        for idx in torch.randperm(len(s), generator=g).split(batch):
            s_in = tensors[0][idx]
            pred, goal = policy(s_in + noise * torch.randn(s_in.shape, generator=g))
            loss = nn.functional.mse_loss(pred, tensors[1][idx])
            if goal is not None:
                loss = loss + goal_weight * nn.functional.mse_loss(goal, tensors[2][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return BCResult(policy.eval(), sn, an)


class ChunkedActor:
    """Runs a :class:`BCResult` policy step by step: raw flat state (D,) -> env action (A,).
    With chunks it keeps every prediction made for the coming steps and executes their mean
    (ACT's temporal ensembling); call :meth:`reset` at the start of each episode (at most
    ``max_steps + 1`` calls per episode: one per step and one for the final state)."""

    def __init__(self, trained: BCResult, max_steps: int):
        self.policy, self.sn, self.an = trained.policy, trained.state_norm, trained.action_norm
        self.chunk, self.max_steps = self.policy.chunk, max_steps
        self.reset()

    def reset(self):
        self.t = 0
        self.plans = np.zeros((self.max_steps + 1 + self.chunk, self.chunk, len(self.an.mean)))  # (step, age, A)

    def __call__(self, state: np.ndarray) -> np.ndarray:
        t, chunk = self.t, self.chunk
        if t > self.max_steps:
            raise RuntimeError(f"more than max_steps + 1 = {self.max_steps + 1} calls; call reset()")
        pred = self.predict(state)
        for j in range(chunk):  # the prediction for step t + j, made now (j steps ahead)
            self.plans[t + j, j] = pred[j]
        # every query since step t - chunk + 1 (none before 0) predicted step t
        self.executed = self.plans[t, :min(t + 1, chunk)].mean(0)  # normalised
        a = self.an.inverse(self.executed)
        self.t = t + 1
        return from_relative(state, a) if self.policy.control_mode == "pd_joint_pos" else a

    def predict(self, state: np.ndarray) -> np.ndarray:
        """The policy's normalised actions for the next ``chunk`` steps. (chunk, A)"""
        s = torch.as_tensor(self.sn(state), dtype=torch.float32)
        with torch.no_grad():
            return rearrange(self.policy(s[None])[0][0], "(c a) -> c a", c=self.chunk).numpy()


def _policy_from(arch, state_dict, mode, chunk) -> BCPolicy:
    policy = BCPolicy(*arch[:2], subgoal=arch[2], goal_dim=arch[3], condition=arch[4])
    policy.load_state_dict(state_dict)
    policy.chunk, policy.control_mode = chunk, mode
    return policy.eval()


def _chunked_actor(arch, state_dict, mode, chunk, sn, an, max_steps) -> ChunkedActor:
    return ChunkedActor(BCResult(_policy_from(arch, state_dict, mode, chunk), sn, an), max_steps)


def _rollouts(job) -> list[bool]:
    task, make_actor, mode, seeds, max_steps = job
    torch.set_num_threads(1)
    from .env import flatten_obs, make_env
    actor = make_actor()
    env = make_env(task, max_episode_steps=max_steps, control_mode=mode)
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        actor.reset()
        success = False
        for _ in range(max_steps):
            obs, _, terminated, truncated, info = env.step(actor(flatten_obs(obs)))
            success = success or bool(info["success"][0])
            if success or bool(terminated[0]) or bool(truncated[0]):
                break
        out.append(success)
    env.close()
    return out


UNSEEN_SEEDS = 10 ** 6  # first env seed of the held-out layouts (demo seeds are far below)


def evaluation_seeds(demos, episodes: int, *, offset: int = 0) -> tuple[list[int], list[int]]:
    """Env seeds to evaluate on: the first ``episodes`` demos' own ("seen") and as many new
    ones ("unseen"), the ``offset``-th block of ``episodes`` from :data:`UNSEEN_SEEDS` on."""
    start = UNSEEN_SEEDS + offset * episodes
    return [d.seed for d in demos[:episodes]], list(range(start, start + episodes))


def actor_successes(task: str, make_actor, control_mode: str, seeds, *, max_steps: int,
                    workers: int = 1) -> list[bool]:
    """Per seed, whether the actor reaches ``success`` within ``max_steps``.  ``make_actor()``
    (picklable; called once per worker process) returns an object with ``reset()``, called at
    each episode's start, and ``__call__(flat_state) -> env action``; episodes run in
    ``workers`` processes (one env each, built with ``control_mode``)."""
    chunks = [list(c) for c in np.array_split(np.asarray(seeds), workers) if len(c)]
    results = map_jobs(_rollouts, [(task, make_actor, control_mode, c, max_steps) for c in chunks])
    return [r for chunk in results for r in chunk]


def successes(task: str, trained: BCResult, seeds, *, max_steps: int, workers: int = 1) -> list[bool]:
    """Per seed, whether a :func:`train_bc` result reaches ``success`` within ``max_steps``;
    episodes run in ``workers`` processes (one env each)."""
    policy, sn, an = trained.policy, trained.state_norm, trained.action_norm
    arch = (policy.trunk[0].in_features, policy.action_head[-1].out_features, policy.subgoal,
            policy.goal_dim, policy.condition)
    make_actor = partial(_chunked_actor, arch, policy.state_dict(), policy.control_mode, policy.chunk,
                         sn, an, max_steps)
    return actor_successes(task, make_actor, policy.control_mode, seeds, max_steps=max_steps, workers=workers)


def evaluate(task: str, trained: BCResult, seeds, *, max_steps: int, workers: int = 1) -> float:
    """Success rate over the given env seeds (see :func:`successes`)."""
    return float(np.mean(successes(task, trained, seeds, max_steps=max_steps, workers=workers)))
