"""Can key-state guidance help behaviour cloning at all?  BC settings x key-state sources.

    python integrations/maniskill/experiments/bc_guidance.py --task PickCube --methods plain oracle random infoatlas
    python integrations/maniskill/experiments/bc_guidance.py --epochs 60 200 --methods plain

Trains BC on the cached scripted demos (``examples/maniskill_maxmi.py`` fills the cache)
plain and guided by key states from: ``oracle`` (the physical events read from the
simulator: the best key states any discovery could return), ``infoatlas`` (MaxMI with
``SlicedMILoss``; ``KeyStateConfig``, whose options this script takes by name), ``mine`` (the
same MaxMI discovery with per-term MINE critics trained alongside, for ``--mine-steps`` steps
so that it reproduces), ``random``, a per-concept mix of
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
and ``--note``), a caption (``--note``), the header line and the table.  Needs the
``maniskill`` extra.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

from infoatlas_loss.integrations.maniskill import (KeyStateConfig, discover_key_states, get_task, key_state_error,
                                                   load_demos, random_key_states)
from infoatlas_loss.integrations.maniskill.demos import fingerprint
from infoatlas_loss.integrations.maniskill.env import CONTROL_MODES
from infoatlas_loss.integrations.maniskill.policy import evaluation_seeds, successes, train_bc

COMMAND = "python integrations/maniskill/experiments/bc_guidance.py"


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


def saved_section(argv: list[str], note: str | None, lines: list[str]) -> str:
    """A run as a results-file section: ``## `command` ``, a caption (``note``, if given),
    the printed lines."""
    keep, skip = [], False
    for arg in argv:  # the command as rerun: without where it was saved and its caption
        if skip:
            skip = False
        elif arg in ("--save", "--note"):
            skip = True
        elif not arg.startswith(("--save=", "--note=")):
            keep.append(arg)
    caption = ["", f"({note})"] if note else []
    return "\n".join(["", f"## `{COMMAND} {' '.join(keep)}`", *caption, "", *lines]) + "\n"


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
    p.add_argument("--aux-only", action="store_true",
                   help="subgoal as an auxiliary target only, not an input of the action head")
    p.add_argument("--control-mode", default="pd_joint_pos",
                   choices=CONTROL_MODES,
                   help="clone the planner's joint targets or end-effector deltas (converted)")
    p.add_argument("--discovery-seed", type=int, default=0, help="seed of both discoveries")
    p.add_argument("--mine-steps", type=int, default=750,
                   help="mine discovery: locator updates (~2.5 per second on 2 cores)")
    KeyStateConfig.add_arguments(p, skip=("estimator",))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", default="demos")
    p.add_argument("--save", type=Path, default=None,
                   help="append the run (command, caption, table) to this Markdown file at the end")
    p.add_argument("--note", default=None, help="caption of the saved run (what it is for)")
    argv = sys.argv[1:] if argv is None else list(argv)
    a = p.parse_args(argv)
    lines = []

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
    config = KeyStateConfig.from_args(a)
    for estimator, steps in (("infoatlas", config.steps), ("mine", a.mine_steps)):
        if any(estimator in m for m in a.methods):
            keys[estimator] = discover_key_states(
                demos, len(spec.events), dataclasses.replace(config, estimator=estimator, steps=steps),
                generator=torch.Generator().manual_seed(a.discovery_seed), progress=False).indices
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
    out(f"{a.task}: {len(demos)} demos (demo set {fingerprint(demos)}), {a.episodes} episodes per split"
        + (", subgoal as auxiliary target only" if a.aux_only else "")
        + f", input noise {a.noise}, {a.control_mode}, chunk {a.chunk}")
    out()
    out("| method | subgoal from | epochs | BC seed | key-state error | seen | unseen | minutes |")
    out("|---|---|---|---|---|---|---|---|")
    runs = [(m, g) for m in a.methods for g in ([0] if m == "plain" else a.goal_from)]
    for epochs in a.epochs:
        for seed in a.bc_seeds:
            for m, g in runs:
                t0 = time.time()
                trained = train_bc(demos, keys[m], epochs=epochs, goal_from=g, condition=not a.aux_only,
                                   noise=a.noise, chunk=a.chunk, generator=torch.Generator().manual_seed(seed),
                                   progress=False)
                ok = successes(a.task, trained, seen + unseen, max_steps=spec.max_steps,
                               workers=a.workers)
                err = "—" if keys[m] is None else f"{key_state_error(demos, keys[m], spec.events)['mean']:.1f}"
                out(f"| {m} | {g if keys[m] is not None else '—'} | {epochs} | {seed} | {err} | {np.mean(ok[:len(seen)]):.2f} | "
                    f"{np.mean(ok[len(seen):]):.2f} | {(time.time() - t0) / 60:.1f} |")
    if a.save is not None:
        with open(a.save, "a") as f:
            f.write(saved_section(argv, a.note, lines))


if __name__ == "__main__":
    main()
