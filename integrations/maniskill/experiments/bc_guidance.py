"""Can key-state guidance help behaviour cloning at all?  BC settings x key-state sources.

    python -m benchmarks.bc_guidance --task PickCube --methods plain oracle random infoatlas
    python -m benchmarks.bc_guidance --epochs 60 200 --methods plain

Trains BC on the cached scripted demos (``examples/maniskill_maxmi.py`` fills the cache)
plain and guided by key states from: ``oracle`` (the physical events read from the
simulator: the best key states any discovery could return), ``infoatlas`` (MaxMI with
``SlicedMILoss``), ``mine`` (the same MaxMI discovery with a MINE critic trained alongside,
for a fixed number of steps so that it reproduces), ``random``, a per-concept mix of
sources such as ``mix:oracle,end`` (concept k from the k-th source; ``end`` = the demo's
last step), which tells which concept's placement a guidance gain comes from, or a source
with per-demo noise such as ``jitter:oracle,4`` (each key state moved by a uniform integer
in [-4, 4] steps), which tells how exact key states must be for the gain, or a source with
every demo's concept k moved by the k-th signed step count, such as ``shift:oracle,-1,0``
(clipped to the demo: a large shift stops at its last state), which tells whether a
consistent offset of a concept costs the gain, or ``swap:src,other,i,j,...`` (``src``'s key
states with those of demos i, j, ... from ``other``), which tells how much a few demos'
key states weigh.  Every setting is
evaluated on the same env seeds: the first ``--episodes`` demo seeds ("seen") and as many
new seeds ("unseen").
Prints a Markdown table (success rates; key-state error in steps); ``--save FILE`` also
appends the run to FILE as a section ``bc_summary`` reads: the command (without ``--save``
and ``--note``), a caption (``--note``, the commit, the date), the header line and the
table.  Needs the ``maniskill`` extra.
"""
from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from integrations.maniskill import get_task
from integrations.maniskill.convert import load_demos
from integrations.maniskill.demos import fingerprint
from integrations.maniskill.env import CONTROL_MODES
from integrations.maniskill.keystates import MINE_CRITICS, discover_key_states, key_state_error, random_key_states
from integrations.maniskill.policy import evaluation_seeds, successes, train_bc


def oracle_key_states(demos, events) -> np.ndarray:
    """(N, K): the step of each physical event (clipped to the demo)."""
    return np.array([[min(d.events[e], d.length) for e in events] for d in demos])


def _sources(keys: dict) -> list[str]:
    """The key-state sources other specs can draw on (plain BC has none)."""
    return sorted(name for name, v in keys.items() if v is not None)


def mixed_key_states(spec: str, keys: dict, demos) -> np.ndarray:
    """``"mix:a,b,..."`` -> (N, K): concept k from source k (a method in ``keys`` or ``end``)."""
    sources = spec.removeprefix("mix:").split(",")
    k = next(v for v in keys.values() if v is not None).shape[1]
    if len(sources) != k:
        raise ValueError(f"{spec}: the task has {k} concepts, got {len(sources)} sources")
    unknown = [src for src in sources if src != "end" and keys.get(src) is None]
    if unknown:
        raise ValueError(f"{spec}: no key states from {unknown}; use {_sources(keys)} or 'end'")
    end = np.array([d.length for d in demos])
    cols = [end if src == "end" else keys[src][:, i] for i, src in enumerate(sources)]
    return np.sort(np.stack(cols, 1), axis=1)  # key states are used in temporal order


def _kept_in_demo(moved: np.ndarray, demos) -> np.ndarray:
    """Moved key states (N, K) clipped to each demo (steps 1..length) and re-sorted (they
    are used in temporal order)."""
    length = np.array([d.length for d in demos])[:, None]
    return np.sort(np.clip(moved, 1, length), axis=1)


def jittered_key_states(spec: str, keys: dict, demos, *, seed: int = 0) -> np.ndarray:
    """``"jitter:src,J"`` -> (N, K): ``src``'s key states, each moved by a uniform integer
    in [-J, J] steps (seeded), kept in the demo (steps 1..length) and in temporal order."""
    src, _, width = spec.removeprefix("jitter:").partition(",")
    if keys.get(src) is None or not width.isdigit():
        raise ValueError(f"{spec}: expected jitter:SOURCE,STEPS with SOURCE in {_sources(keys)}")
    rng = np.random.default_rng(seed)
    return _kept_in_demo(keys[src] + rng.integers(-int(width), int(width) + 1, size=keys[src].shape), demos)


def shifted_key_states(spec: str, keys: dict, demos) -> np.ndarray:
    """``"shift:src,d1,...,dK"`` -> (N, K): ``src``'s concept k moved by d_k steps in every
    demo, kept in the demo (steps 1..length) and in temporal order."""
    src, *steps = spec.removeprefix("shift:").split(",")
    if keys.get(src) is None or not steps or not all(st.lstrip("+-").isdigit() for st in steps):
        raise ValueError(f"{spec}: expected shift:SOURCE,STEPS1,...,STEPSK with SOURCE in {_sources(keys)}")
    if len(steps) != keys[src].shape[1]:
        raise ValueError(f"{spec}: the task has {keys[src].shape[1]} concepts, got {len(steps)} shifts")
    return _kept_in_demo(keys[src] + np.array([int(st) for st in steps]), demos)


def swapped_key_states(spec: str, keys: dict) -> np.ndarray:
    """``"swap:src,other,i,j,..."`` -> (N, K): ``src``'s key states, those of demos i, j, ...
    (indices into the demo list) from ``other``."""
    src, other, *demos = spec.removeprefix("swap:").split(",")
    if keys.get(src) is None or keys.get(other) is None or not demos or not all(i.isdigit() for i in demos):
        raise ValueError(f"{spec}: expected swap:SOURCE,OTHER,DEMO,... with sources in {_sources(keys)}")
    rows = [int(i) for i in demos]
    if max(rows) >= len(keys[src]):
        raise ValueError(f"{spec}: demo index {max(rows)} out of range (there are {len(keys[src])})")
    out = keys[src].copy()
    out[rows] = keys[other][rows]
    return out


def commit(root: Path = Path(__file__).parents[1]) -> str:
    """The commit of the repo at ``root``, ``-dirty`` when tracked files other than the saved
    results have changes (runs append to ``benchmarks/results/``, which changes no code),
    ``unknown`` outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=root).stdout.strip()
    try:
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results")
        return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def saved_section(argv: list[str], note: str | None, lines: list[str], version: str) -> str:
    """A run as a results-file section: ``## `command` ``, a caption (``note``, the commit
    ``version`` it ran at, the date), the printed lines."""
    keep, skip = [], False
    for arg in argv:  # the command as rerun: without where it was saved and its caption
        if skip:
            skip = False
        elif arg in ("--save", "--note"):
            skip = True
        elif not arg.startswith(("--save=", "--note=")):
            keep.append(arg)
    caption = ", ".join(filter(None, [note, f"commit {version}", datetime.date.today().isoformat()]))
    return "\n".join(["", f"## `python -m benchmarks.bc_guidance {' '.join(keep)}`", "", f"({caption})", "",
                      *lines]) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="PickCube")
    p.add_argument("--demos", type=int, default=300)
    p.add_argument("--demo-seed", type=int, default=0,
                   help="first env seed planned for demos: another value gives another demo set")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per split")
    p.add_argument("--methods", nargs="+", default=["plain", "oracle", "random", "infoatlas"])
    p.add_argument("--epochs", type=int, nargs="+", default=[60])
    p.add_argument("--bc-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--goal-from", type=int, nargs="+", default=[0],
                   help="first state column of the subgoal (18: skip the Panda's qpos, qvel)")
    p.add_argument("--noise", type=float, default=0.05, help="BC input-noise std (normalised)")
    p.add_argument("--chunk", type=int, default=1, help="actions predicted per query (ACT-style)")
    p.add_argument("--goal-loss", default="mse", choices=["mse", "huber"],
                   help="subgoal regression loss of guided BC (see train_bc)")
    p.add_argument("--aux-only", action="store_true",
                   help="subgoal as an auxiliary target only, not an input of the action head")
    p.add_argument("--control-mode", default="pd_joint_pos",
                   choices=CONTROL_MODES,
                   help="clone the planner's joint targets or end-effector deltas (converted)")
    p.add_argument("--order", default="greedy", choices=["greedy", "hinge"],
                   help="infoatlas discovery: how concepts are kept in temporal order")
    p.add_argument("--discovery-seed", type=int, default=0, help="infoatlas discovery seed")
    p.add_argument("--ks-steps", type=int, default=300,
                   help="infoatlas locator updates (the example uses 200)")
    p.add_argument("--contrast-gap", type=int, default=None,
                   help="infoatlas discovery: maximise I(s_k; s_k-4) - I(s_k; s_k-gap) (see discover_key_states)")
    p.add_argument("--restarts", type=int, default=5,
                   help="locators trained side by side per discovery; key state = their vote (--vote)")
    p.add_argument("--vote", default="median", choices=["median", "agree"],
                   help="how restarts' key states combine (see discover_key_states)")
    p.add_argument("--guard", type=float, default=None,
                   help="re-place key states this many MADs off their concept's phase (see phase_guard)")
    p.add_argument("--mine-critics", default="shared", choices=MINE_CRITICS,
                   help="mine discovery: one critic for all MI terms (as every row saved before "
                        "session 17) or one per term (see discover_key_states)")
    p.add_argument("--mine-steps", type=int, default=750,
                   help="mine discovery: locator updates (~2.5 per second on 2 cores)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", default="demos")
    p.add_argument("--save", type=Path, default=None,
                   help="append the run (command, caption, table) to this Markdown file at the end")
    p.add_argument("--note", default=None, help="caption of the saved run (what it is for)")
    argv = sys.argv[1:] if argv is None else list(argv)
    a = p.parse_args(argv)
    lines, version = [], commit()  # the code as it is when the run starts

    def out(line: str = ""):
        print(line, flush=True)
        lines.append(line)

    torch.set_num_threads(a.threads)
    spec = get_task(a.task)
    demos = load_demos(a.task, a.demos, a.control_mode, seed=a.demo_seed, cache_dir=a.cache,
                       workers=a.workers, progress=False)
    keys = {"plain": None, "oracle": oracle_key_states(demos, spec.events),
            "random": random_key_states(demos, len(spec.events))}
    # both estimators with the same discovery settings, each for its own number of steps
    discovery = dict(seed=a.discovery_seed, order=a.order, contrast_gap=a.contrast_gap,
                     restarts=a.restarts, vote=a.vote, guard=a.guard, progress=False)
    for estimator, steps in (("infoatlas", a.ks_steps), ("mine", a.mine_steps)):
        if any(estimator in m for m in a.methods):
            extra = {"mine_critics": a.mine_critics} if estimator == "mine" else {}
            keys[estimator] = discover_key_states(demos, len(spec.events), estimator=estimator,
                                                  steps=steps, **discovery, **extra).indices
    for m in a.methods:
        if m.startswith("mix:"):
            keys[m] = mixed_key_states(m, keys, demos)
        elif m.startswith("jitter:"):
            keys[m] = jittered_key_states(m, keys, demos)
        elif m.startswith("shift:"):
            keys[m] = shifted_key_states(m, keys, demos)
        elif m.startswith("swap:"):
            keys[m] = swapped_key_states(m, keys)
    seen, unseen = evaluation_seeds(demos, a.episodes)
    out(f"{a.task}: {len(demos)} demos (set {fingerprint(demos)}), {a.episodes} episodes per split"
        + (", subgoal as auxiliary target only" if a.aux_only else "")
        + f", input noise {a.noise}, {a.control_mode}, chunk {a.chunk}"
        + (f", subgoal loss {a.goal_loss}" if a.goal_loss != "mse" else ""))
    out()
    out("| method | subgoal from | epochs | BC seed | key-state error | seen | unseen | minutes |")
    out("|---|---|---|---|---|---|---|---|")
    runs = [(m, g) for m in a.methods for g in ([0] if m == "plain" else a.goal_from)]
    for epochs in a.epochs:
        for seed in a.bc_seeds:
            for m, g in runs:
                t0 = time.time()
                trained = train_bc(demos, keys[m], epochs=epochs, seed=seed, goal_from=g,
                                   condition=not a.aux_only, noise=a.noise, chunk=a.chunk,
                                   goal_loss=a.goal_loss, progress=False)
                ok = successes(a.task, trained, seen + unseen, max_steps=spec.max_steps,
                               workers=a.workers)
                err = "—" if keys[m] is None else f"{key_state_error(demos, keys[m], spec.events)['mean']:.1f}"
                out(f"| {m} | {g if keys[m] is not None else '—'} | {epochs} | {seed} | {err} | {np.mean(ok[:len(seen)]):.2f} | "
                    f"{np.mean(ok[len(seen):]):.2f} | {(time.time() - t0) / 60:.1f} |")
    if a.save is not None:
        with open(a.save, "a") as f:
            f.write(saved_section(argv, a.note, lines, version))


if __name__ == "__main__":
    main()
