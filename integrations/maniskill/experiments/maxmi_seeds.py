"""Seed stability of MaxMI key-state discovery on cached ManiSkill demos.

    python integrations/maniskill/experiments/maxmi_seeds.py --task PickCube --demos 300 --seeds 0 1 2 3
    python integrations/maniskill/experiments/maxmi_seeds.py --task PickCube --estimator mine --steps 750

Runs ``discover_key_states`` (SlicedMILoss, or with ``--estimator mine`` MINE critics trained
alongside; ``KeyStateConfig``, whose options this script takes by name) once per seed and prints the key-state error
per event (steps), the final MaxMI objective (nats, as the estimator measures it; mean of the
last 30 steps and over restarts), the wall time, the error of the untrained locators
(step 0: what the architecture, order and vote give without any MI) and of random key states;
then, per seed and concept, where the key state sits relative to each event (mean ± std over
demos of key step - event step: a std near 0 means the concept is locked to that event at a
fixed offset), and how many demos are more than 10 steps off with the error of each
restart alone (before the vote).  Needs the ``maniskill`` extra and the demo cache
(``examples/maniskill_maxmi.py`` fills it).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from infoatlas_loss.integrations.maniskill import (KeyStateConfig, discover_key_states, get_task, key_state_error,
                                                   load_demos, random_key_states)
from infoatlas_loss.integrations.maniskill.env import CONTROL_MODES


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="PickCube")
    p.add_argument("--demos", type=int, default=300)
    p.add_argument("--demo-seed", type=int, default=0,
                   help="another demo set: the demos planned from this env seed on")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--cache", default="demos")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--control-mode", default="pd_joint_pos", choices=CONTROL_MODES,
                   help="demos as planned (joint targets) or replayed with end-effector deltas, "
                        "as the example and BC use them (pd_ee_delta_pose)")
    KeyStateConfig.add_arguments(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = KeyStateConfig.from_args(args)
    events = get_task(args.task).events
    demos = load_demos(args.task, args.demos, args.control_mode, seed=args.demo_seed, cache_dir=args.cache,
                       progress=False)
    rnd = key_state_error(demos, random_key_states(demos, len(events)), events)
    print("| seed | final MaxMI objective (nats) | seconds | untrained: mean | " + " | ".join(events) + " | mean |")
    print("|---|---|---|---|" + "---|" * (len(events) + 1))
    at = np.array([[d.events[k] for k in events] for d in demos])  # (N, E) event steps
    offsets, per_restart = [], []
    for seed in args.seeds:
        r = discover_key_states(demos, len(events), config, generator=torch.Generator().manual_seed(seed),
                                progress=False)
        e = key_state_error(demos, r.indices, events)
        e0 = key_state_error(demos, r.trace[0][1], events)["mean"]  # before the first update
        print(f"| {seed} | {np.mean(r.history[-30:]):.3f} | {r.seconds:.0f} | {e0:.1f} | "
              + " | ".join(f"{e[k]:.1f}" for k in events) + f" | {e['mean']:.1f} |", flush=True)
        offsets.append(r.indices[:, :, None] - at[:, None, :])  # (N, K, E)
        per_restart.append(np.abs(r.probs.argmax(-1) - at[None]).mean(1))  # (R, K)
    print("| random | – | – | – | " + " | ".join(f"{rnd[k]:.1f}" for k in events) + f" | {rnd['mean']:.1f} |")
    print("\n| seed | concept | " + " | ".join(f"key - {k} (steps)" for k in events) + " |")
    print("|---|---|" + "---|" * len(events))
    for seed, off in zip(args.seeds, offsets):
        for c in range(len(events)):
            print(f"| {seed} | {c + 1} | " + " | ".join(
                f"{off[:, c, j].mean():+.1f} ± {off[:, c, j].std():.1f}" for j in range(len(events))) + " |")
    # outliers: a few demos far off weigh more in guided BC than a constant offset does
    print("\n| seed | concept | demos > 10 steps off its event | error of each restart alone (steps) |")
    print("|---|---|---|---|")
    for seed, off, pr in zip(args.seeds, offsets, per_restart):
        for c in range(len(events)):
            print(f"| {seed} | {c + 1} | {np.mean(np.abs(off[:, c, c]) > 10):.0%} | "
                  + ", ".join(f"{x:.1f}" for x in pr[:, c]) + " |")


if __name__ == "__main__":
    main()
