"""Behaviour cloning from the demos, plain or key-state guided, and simulator evaluation.

The key-state-guided policy follows CoTPC (Jia et al. 2023) in a small form: from the
state it predicts the *next* key state of the demonstration (the subgoal) and conditions
its action on that prediction; training adds the subgoal regression to the action loss.
At test time the policy predicts its own subgoals, so key states are needed only to train.
"""
from __future__ import annotations

import multiprocessing as mp

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .demos import Normalizer


def _mlp(i: int, o: int, hidden: int, depth: int) -> nn.Sequential:
    layers, w = [], i
    for _ in range(depth):
        layers += [nn.Linear(w, hidden), nn.GELU()]
        w = hidden
    return nn.Sequential(*layers, nn.Linear(w, o))


class BCPolicy(nn.Module):
    """MLP policy on normalised states; with ``subgoal=True`` it also predicts where the next
    key state is relative to the current state (normalised units) and feeds that
    prediction to its action head."""

    def __init__(self, state_dim: int, action_dim: int, *, subgoal: bool, hidden: int = 256):
        super().__init__()
        self.subgoal = subgoal
        self.trunk = _mlp(state_dim, hidden, hidden, 2)
        self.goal_head = _mlp(hidden, state_dim, hidden, 1) if subgoal else None
        self.action_head = _mlp(hidden + (state_dim if subgoal else 0), action_dim, hidden, 1)

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = torch.relu(self.trunk(s))
        if not self.subgoal:
            return self.action_head(h), None
        # the offset to the subgoal says where to go next, which transfers across layouts
        offset = self.goal_head(h)
        return self.action_head(torch.cat([h, offset], -1)), offset


def subgoal_targets(demo, key_indices: np.ndarray) -> np.ndarray:
    """For every step t of a demo, the state at its next key state (>= t + 1), or the final
    state after the last one. (T, D)."""
    keys = sorted(int(k) for k in key_indices) + [demo.length]
    nxt = [next(k for k in keys if k >= t + 1) for t in range(demo.length)]
    return demo.states[nxt]


ARM_JOINTS = 7  # the flat state starts with the Panda's qpos; actions are joint targets


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


def train_bc(demos, key_indices: np.ndarray | None = None, *, epochs: int = 60, batch: int = 256,
             lr: float = 1e-3, goal_weight: float = 1.0, noise: float = 0.05, seed: int = 0,
             progress: bool = True):
    """Behaviour cloning; key-state guided when ``key_indices`` (N, K) is given.

    ``noise``: std of Gaussian noise added to the normalised input states (robustness to
    the small drifts a cloned policy makes).  Returns ``(policy, state_norm, action_norm)``
    for :func:`evaluate`.
    """
    torch.manual_seed(seed)
    s = np.concatenate([d.states[:-1] for d in demos])
    a = to_relative(s, np.concatenate([d.actions for d in demos]))
    sn, an = Normalizer.fit(s), Normalizer.fit(a)
    tensors = [torch.as_tensor(sn(s), dtype=torch.float32), torch.as_tensor(an(a), dtype=torch.float32)]
    if key_indices is not None:
        goals = np.concatenate([subgoal_targets(d, k) for d, k in zip(demos, key_indices)])
        tensors.append(torch.as_tensor(sn(goals) - sn(s), dtype=torch.float32))
    policy = BCPolicy(s.shape[1], a.shape[1], subgoal=key_indices is not None)
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    g = torch.Generator().manual_seed(seed)
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
    return policy.eval(), sn, an


def _rollouts(job) -> list[bool]:
    task, state_dict, arch, sn, an, seeds, max_steps = job
    torch.set_num_threads(1)
    from .env import flatten_obs, make_env
    policy = BCPolicy(*arch[:2], subgoal=arch[2])
    policy.load_state_dict(state_dict)
    env = make_env(task, max_episode_steps=max_steps)
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        success = False
        for _ in range(max_steps):
            state = flatten_obs(obs)
            s = torch.as_tensor(sn(state), dtype=torch.float32)
            with torch.no_grad():
                a = from_relative(state, an.inverse(policy(s[None])[0][0].numpy()))
            obs, _, terminated, truncated, info = env.step(a)
            success = success or bool(info["success"][0])
            if success or bool(terminated[0]) or bool(truncated[0]):
                break
        out.append(success)
    env.close()
    return out


def successes(task: str, trained, seeds, *, max_steps: int, workers: int = 1) -> list[bool]:
    """Per seed, whether a :func:`train_bc` result reaches ``success`` within ``max_steps``;
    episodes run in ``workers`` processes (one env each)."""
    policy, sn, an = trained
    arch = (policy.trunk[0].in_features, policy.action_head[-1].out_features, policy.subgoal)
    chunks = [list(c) for c in np.array_split(np.asarray(seeds), workers) if len(c)]
    jobs = [(task, policy.state_dict(), arch, sn, an, c, max_steps) for c in chunks]
    if workers == 1:
        results = [_rollouts(j) for j in jobs]
    else:
        with mp.get_context("spawn").Pool(len(jobs)) as pool:
            results = pool.map(_rollouts, jobs)
    return [r for chunk in results for r in chunk]


def evaluate(task: str, trained, seeds, *, max_steps: int, workers: int = 1) -> float:
    """Success rate over the given env seeds (see :func:`successes`)."""
    return float(np.mean(successes(task, trained, seeds, max_steps=max_steps, workers=workers)))
