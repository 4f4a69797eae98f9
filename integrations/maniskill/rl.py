"""Optional stable-baselines3 stage: residual PPO on top of a frozen BC policy, rewarded by
progress through the key states.

The cloned policy stays as it is; PPO learns a bounded correction,
a = a_BC + ``scale`` * a_res with a_res in [-1, 1]^A, seeing the state and the BC action.
Reward (key-state based): a phase regressor Phi(s) is fitted on the demos, Phi = k + the
fraction of the way from key state k to key state k + 1 (0 at the start, K + 1 at the end of
a demo), and the reward is Phi(s') - Phi(s) (potential-based shaping, Ng et al. 1999) plus
``success_bonus`` when the task's ``success`` flag comes on (the episode then ends), minus
``residual_cost`` * mean(a_res^2).  The actor starts with a zero mean and a small
exploration noise (log std -3), so the first episodes are the cloned behaviour, and PPO's
clipped updates keep each change small.  (SAC with the same reward, tried first in a
throw-away check, lost the cloned behaviour's successes within a few thousand steps.)
RL episodes start on their own layouts (seeds from 2 000 000 on), disjoint from the demos'
and from the held-out evaluation seeds of the example.

Needs the ``maniskill`` and ``rl`` extras: ``pip install "infoatlas-loss[maniskill,rl]"``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .common import init_parameters
from .policy import BCResult, ChunkedActor

RL_HINT = 'the SB3 stage needs stable-baselines3: pip install "infoatlas-loss[maniskill,rl]"'
RL_SEEDS = 2 * 10 ** 6  # first reset seed of RL episodes


def phase_targets(length: int, key_indices) -> np.ndarray:
    """Phase of every state 0..length of a demo: k + fraction of the way from key state k
    to k + 1, with the start as key 0 and the final state as key K + 1. (length + 1,)."""
    knots = np.concatenate([[0], np.sort(np.asarray(key_indices, dtype=float)), [length]])
    knots = np.maximum.accumulate(knots + 1e-6 * np.arange(len(knots)))  # strictly increasing
    return np.interp(np.arange(length + 1), knots, np.arange(len(knots), dtype=float))


def fit_phase(demos, key_indices: np.ndarray, sn, *, epochs: int = 30,
              generator: torch.Generator | None = None) -> nn.Module:
    """MLP: normalised state (B, D) -> phase (B,), regressed on :func:`phase_targets`."""
    if len(key_indices) != len(demos):
        raise ValueError(f"key_indices has {len(key_indices)} rows for {len(demos)} demos")
    g = torch.Generator().manual_seed(0) if generator is None else generator
    s = torch.as_tensor(sn(np.concatenate([d.states for d in demos])), dtype=torch.float32)
    y = torch.as_tensor(np.concatenate([phase_targets(len(d.states) - 1, k)
                                        for d, k in zip(demos, key_indices)]), dtype=torch.float32)
    net = init_parameters(nn.Sequential(nn.Linear(s.shape[1], 128), nn.GELU(), nn.Linear(128, 128), nn.GELU(),
                                        nn.Linear(128, 1), nn.Flatten(0)), g)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(s), generator=g).split(256):
            loss = nn.functional.mse_loss(net(s[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval().requires_grad_(False)


def _residual_env_class():
    import gymnasium as gym

    class ResidualEnv(gym.Env):
        """ManiSkill task as a flat gymnasium env for SB3: observation = [normalised state,
        BC action], action = residual in [-1, 1]^A, reward = key-state progress (module doc)."""

        def __init__(self, task, trained, phase, *, max_steps, scale, success_bonus, first_seed,
                     residual_cost=0.0):
            from .env import make_env
            self.actor, self.phase = ChunkedActor(trained, max_steps), phase
            self.env = make_env(task, max_episode_steps=max_steps, control_mode=trained.policy.control_mode)
            self.scale, self.bonus, self.next_seed = scale, success_bonus, first_seed
            self.cost = residual_cost
            space = self.env.action_space
            self.low, self.high = np.asarray(space.low).reshape(-1), np.asarray(space.high).reshape(-1)
            dim = len(trained.state_norm.mean) + len(self.low)
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (len(self.low),), np.float32)

        def _observe(self, obs):
            from .env import flatten_obs
            self.state = flatten_obs(obs)
            self.base = self.actor(self.state)
            z = self.actor.sn(self.state)
            if self.phase is not None:
                with torch.no_grad():
                    self.potential = float(self.phase(torch.as_tensor(z, dtype=torch.float32)[None])[0])
            return np.concatenate([z, self.base]).astype(np.float32)

        def reset(self, *, seed=None, options=None):
            # ``seed`` seeds gymnasium's RNG as usual; the layout is options["layout"] when
            # given (evaluation), else the next RL seed (a fresh layout every episode)
            super().reset(seed=seed)
            layout = (options or {}).get("layout")
            if layout is None:
                layout, self.next_seed = self.next_seed, self.next_seed + 1
            self.potential = 0.0
            obs, _ = self.env.reset(seed=int(layout))
            self.actor.reset()
            return self._observe(obs), {}

        def step(self, residual):
            a = np.clip(self.base + self.scale * np.asarray(residual), self.low, self.high)
            before = self.potential
            obs, _, terminated, truncated, info = self.env.step(a)
            z = self._observe(obs)
            success = bool(info["success"][0])
            reward = (self.potential - before + self.bonus * success
                      - self.cost * float(np.mean(np.square(residual))))
            return z, reward, success or bool(terminated[0]), bool(truncated[0]), {"is_success": success}

        def close(self):
            self.env.close()

    return ResidualEnv


@dataclass
class ResidualResult:
    model: object          # the SB3 PPO model (residual actor)
    seconds: float         # wall time of the RL stage
    episodes: int          # training episodes started
    train_successes: int   # of which succeeded
    scale: float           # residual bound it was trained with


def finetune_residual(task: str, trained: BCResult, demos, key_indices: np.ndarray, *, steps: int,
                      max_steps: int, scale: float = 0.2, success_bonus: float = 5.0,
                      residual_cost: float = 0.5, n_steps: int = 1024, learning_rate: float = 1e-4,
                      seed: int = 0, progress: bool = True
                      ) -> ResidualResult:
    """Train SB3 PPO for ``steps`` env steps on the residual of ``trained`` (a
    :func:`~.policy.train_bc` result; ``seed`` seeds the phase regressor and SB3) with the key-state reward of
    the module doc (key states ``key_indices`` (N, K) of ``demos``)."""
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
    except ImportError as e:
        raise ImportError(RL_HINT) from e
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if steps < n_steps:
        raise ValueError(f"steps ({steps}) must be at least one rollout of n_steps ({n_steps})")
    phase = fit_phase(demos, key_indices, trained.state_norm, generator=torch.Generator().manual_seed(seed))
    env = _residual_env_class()(task, trained, phase, max_steps=max_steps, scale=scale,
                                success_bonus=success_bonus, first_seed=RL_SEEDS + seed * 10 ** 5,
                                residual_cost=residual_cost)

    class Progress(BaseCallback):
        def _on_training_start(self):
            self.bar = tqdm(total=steps, desc="PPO residual", disable=not progress)
            self.episodes = self.wins = 0

        def _on_step(self) -> bool:
            self.bar.update(1)
            for done, info in zip(self.locals["dones"], self.locals["infos"]):
                if done:
                    self.episodes += 1
                    self.wins += bool(info.get("is_success"))
                    self.bar.set_postfix(episodes=self.episodes, success=self.wins)
            return True

        def _on_training_end(self):
            self.bar.close()

    model = PPO("MlpPolicy", env, learning_rate=learning_rate, n_steps=n_steps, batch_size=128,
                gamma=0.97, clip_range=0.1, policy_kwargs={"net_arch": [256, 256], "log_std_init": -3.0},
                seed=seed, device="cpu", verbose=0)
    with torch.no_grad():  # start as the BC policy: zero mean residual
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.zero_()
    cb = Progress()
    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=cb)
    env.close()
    return ResidualResult(model, time.perf_counter() - start, cb.episodes, cb.wins, scale)


def residual_successes(task: str, trained: BCResult, result: ResidualResult, seeds, *, max_steps: int
                       ) -> list[bool]:
    """Per env seed (layout), whether BC + the PPO residual (deterministic, with the
    residual bound it was trained with) reaches ``success`` within ``max_steps``."""
    env = _residual_env_class()(task, trained, None, max_steps=max_steps, scale=result.scale,
                                success_bonus=0.0, first_seed=0)
    out = []
    for s in seeds:
        obs, _ = env.reset(options={"layout": int(s)})
        for _ in range(max_steps):
            action, _ = result.model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        out.append(bool(info["is_success"]))
    env.close()
    return out
