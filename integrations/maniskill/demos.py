"""Scripted demonstrations from ManiSkill's motion-planning solutions, cached on disk.

A demo is the flat state trajectory (T + 1, D), the joint-position actions (T, A) and the
first step of every physical event of its task (index into the states).  Demos are made by
seed (deterministic), only successful ones are kept, and each seed's outcome is cached as
one ``.npz`` so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .common import map_jobs
from .env import CONTROL_MODES, events_now, flatten_obs, get_task, make_env


@dataclass
class Demo:
    seed: int
    states: np.ndarray   # (T + 1, D) float32
    actions: np.ndarray  # (T, A) float32
    events: dict[str, int] = field(default_factory=dict)  # event -> first state index
    control_mode: str = "pd_joint_pos"  # what the actions mean (ManiSkill controller name)

    @property
    def length(self) -> int:
        return len(self.actions)


class Recorder:
    """Wraps an env for the motion planner and records what every step returns."""

    def __init__(self, env, task: str):
        self.env, self.task = env, task
        self.unwrapped = env.unwrapped
        self.order = get_task(task).events

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.states, self.actions, self.events = [flatten_obs(obs)], [], {}
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.states.append(flatten_obs(obs))
        self.actions.append(np.asarray(action, dtype=np.float32).reshape(-1))
        # an event counts from the first step it holds after the previous event in the
        # task's order (a PickCube goal can start right at the cube: "placed" before grasp)
        for name, now in events_now(self.task, self.env, info).items():
            k = self.order.index(name)
            if now and name not in self.events and (k == 0 or self.order[k - 1] in self.events):
                self.events[name] = len(self.states) - 1
        return obs, reward, terminated, truncated, info

    def to_demo(self, seed: int, success: bool, control_mode: str = "pd_joint_pos") -> Demo | None:
        """The recorded episode as a :class:`Demo`; None unless it ended in success with
        every event of the task seen."""
        if not success or any(e not in self.events for e in self.order):
            return None
        return Demo(seed, np.stack(self.states), np.stack(self.actions), dict(self.events),
                    control_mode)


def _solve_one(task: str, env, seed: int) -> Demo | None:
    from mani_skill.examples.motionplanning.panda import solutions
    rec = Recorder(env, task)
    try:
        res = getattr(solutions, get_task(task).solver)(rec, seed=seed)
    except Exception:  # the planner raises when it finds no plan; the demo just fails
        return None
    return rec.to_demo(seed, res != -1 and bool(res[-1]["success"][0]))


def cache_path(folder: str | Path, seed: int) -> Path:
    """Cache file of one env seed's demo (failed plans are cached too, so never retried)."""
    return Path(folder) / f"seed_{seed}.npz"


def save_demo(path: Path, demo: Demo | None):
    """Write a demo (``None``: a failed plan) as a pickle-free ``.npz``."""
    tmp = path.with_suffix(".tmp.npz")
    if demo is None:
        np.savez(tmp, ok=False)
    else:
        np.savez(tmp, ok=True, seed=demo.seed, states=demo.states, actions=demo.actions,
                 events=json.dumps(demo.events), control_mode=demo.control_mode)
    tmp.replace(path)  # atomic: a killed run never leaves half a file


def load_demo(path: Path) -> Demo | None:
    """Read :func:`save_demo`'s file; ``None`` for a cached failure."""
    with np.load(path) as f:
        if not bool(f["ok"]):
            return None
        mode = str(f["control_mode"]) if "control_mode" in f.files else "pd_joint_pos"
        return Demo(int(f["seed"]), f["states"], f["actions"], json.loads(str(f["events"])), mode)


def fingerprint(demos) -> str:
    """10 hex digits naming a demo set (sha256 of every demo's seed, states and actions):
    results measured on demos with another fingerprint are not comparable seed by seed."""
    h = hashlib.sha256()
    for d in demos:
        h.update(str(d.seed).encode())
        h.update(np.ascontiguousarray(d.states, np.float32).tobytes())
        h.update(np.ascontiguousarray(d.actions, np.float32).tobytes())
    return h.hexdigest()[:10]


def _plan_seeds(job) -> None:
    """Worker: plan and cache the given seeds.  A fresh env per seed: a reused env carries
    state from the previous episode into the plan (differences ~1e-5 in the actions, seen on
    ManiSkill 3.0.1), so a demo would depend on which seeds its worker planned before it."""
    task, folder, seeds = job
    for s in seeds:
        env = make_env(task)
        save_demo(cache_path(folder, s), _solve_one(task, env, s))
        env.close()


def generate_demos(task: str, num: int, *, seed: int = 0, cache_dir: str | Path = "demos",
                   max_attempts: int | None = None, workers: int = 1,
                   progress: bool = True) -> list[Demo]:
    """``num`` successful demos of ``task``, the first successes among seeds ``seed, seed + 1, ...``.

    Cached per seed under ``cache_dir/task``; a rerun reads the cache and only plans the
    missing seeds, ``workers`` processes at a time.  Raises if fewer than ``num`` succeed
    within ``max_attempts`` seeds (default 4 * num).
    """
    get_task(task)
    folder = Path(cache_dir) / task
    folder.mkdir(parents=True, exist_ok=True)
    max_attempts = max_attempts or 4 * num
    demos, tried = [], 0
    bar = tqdm(total=num, desc=f"demos {task}", disable=not progress)
    while len(demos) < num and tried < max_attempts:
        path = cache_path(folder, seed + tried)
        if not path.exists():
            # plan a block of uncached seeds about as large as the shortfall, in parallel
            size = max(workers, math.ceil(1.15 * (num - len(demos))))
            block = range(seed + tried, seed + min(max_attempts, tried + size))
            todo = [s for s in block if not cache_path(folder, s).exists()]
            jobs = [(task, str(folder), todo[i::workers]) for i in range(workers) if todo[i::workers]]
            map_jobs(_plan_seeds, jobs)
        demo = load_demo(path)
        tried += 1
        if demo is not None:
            demos.append(demo)
            bar.update(1)
        bar.set_postfix(tried=tried, refresh=False)
    bar.close()
    if len(demos) < num:
        raise RuntimeError(f"only {len(demos)} of {num} {task} demos succeeded in {max_attempts} seeds")
    return demos


def load_demos(task: str, num: int, control_mode: str = "pd_joint_pos", *, seed: int = 0,
               cache_dir: str | Path = "demos", workers: int = 1, progress: bool = True) -> list[Demo]:
    """The ``num`` planned demos of ``task`` (:func:`generate_demos`) in ``control_mode``:
    as planned (``pd_joint_pos``) or replayed with end-effector deltas (``pd_ee_delta_pose``,
    :func:`~.convert.to_ee_delta`; the replays that fail are dropped, so there may be fewer)."""
    if control_mode not in CONTROL_MODES:
        raise ValueError(f"control_mode must be one of {CONTROL_MODES}, got {control_mode!r}")
    demos = generate_demos(task, num, seed=seed, cache_dir=cache_dir, workers=workers, progress=progress)
    if control_mode == "pd_ee_delta_pose":
        from .convert import to_ee_delta  # convert builds on this module
        demos = to_ee_delta(task, demos, cache_dir=cache_dir, workers=workers, progress=progress)
    return demos
