"""MaxMI key states: InfoAtlas (frozen SlicedMILoss) vs a per-dataset MINE critic given a
multiple of our wall time.

    python -m benchmarks.maxmi_vs_mine --task PegInsertionSide --demos 150 --budget 10

Runs ``discover_key_states`` with our loss (default settings), then with MINE until
``budget`` x our wall time, on the same cached demos and seed, and prints: each one's
key-state error (steps, mean over the task's events), MINE's best error at any traced
point, and the seconds MINE needed to first reach our error (or that it never did).  Needs
the ``maniskill`` extra and the demo cache (``examples/maniskill_maxmi.py`` fills it).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from integrations.maniskill import generate_demos, get_task
from integrations.maniskill.keystates import (discover_key_states, first_reach, key_state_error,
                                             random_key_states)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="PegInsertionSide")
    p.add_argument("--demos", type=int, default=150)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, default=200, help="our localiser steps")
    p.add_argument("--budget", type=float, default=10.0, help="MINE wall time / ours")
    p.add_argument("--restarts", type=int, default=5,
                   help="locators side by side, for both estimators (see discover_key_states)")
    p.add_argument("--cache", default="demos")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    events = get_task(args.task).events
    demos = generate_demos(args.task, args.demos, cache_dir=args.cache, progress=False)
    err = lambda idx: key_state_error(demos, idx, events)["mean"]  # noqa: E731
    rows = []
    print(f"{args.task}, {len(demos)} demos, MINE budget {args.budget:g}x ours; key-state error "
          f"in steps (random: {err(random_key_states(demos, len(events))):.1f})")
    print("| seed | ours: error | ours: s | MINE: final error | MINE: best error | MINE: s "
          "| MINE s to reach ours |")
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        ours = discover_key_states(demos, len(events), steps=args.steps, seed=seed, progress=False,
                                   restarts=args.restarts)
        mine = discover_key_states(demos, len(events), estimator="mine", steps=10 ** 6, seed=seed,
                                   progress=False, max_seconds=args.budget * ours.seconds,
                                   restarts=args.restarts)
        reach = first_reach(mine.trace, demos, events, err(ours.indices))
        row = {"seed": seed, "ours_error": err(ours.indices), "ours_seconds": ours.seconds,
               "mine_error": err(mine.indices), "mine_best": min(err(i) for _, i in mine.trace),
               "mine_seconds": mine.seconds, "mine_seconds_to_reach_ours": reach}
        rows.append(row)
        print(f"| {seed} | {row['ours_error']:.1f} | {ours.seconds:.0f} | {row['mine_error']:.1f} | "
              f"{row['mine_best']:.1f} | {mine.seconds:.0f} | "
              f"{'never' if reach is None else f'{reach:.0f}'} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
