"""MaxMI key states: InfoAtlas (frozen SlicedMILoss) vs a per-dataset MINE critic given a
multiple of our wall time.

    python integrations/maniskill/experiments/maxmi_vs_mine.py --task PickCube --demos 100 --budget 10

Runs ``discover_key_states`` with our loss (``KeyStateConfig``, whose options this script takes
by name), then with MINE (one critic per MI term) until
``budget`` x our wall time, on the same cached demos and seed, and prints: the error of
the untrained locators (the same initialisation for both), each one's final key-state error (steps, mean over the task's events), MINE's error when stopped at 1x, 3x
and 10x our time, its best error at any traced point, and the seconds MINE needed to first
reach our error (or that it never did).  Needs
the ``maniskill`` extra and the demo cache (``examples/maniskill_maxmi.py`` fills it).
"""
from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import torch

from infoatlas_loss.integrations.maniskill import (KeyStateConfig, discover_key_states, get_task, key_state_error,
                                                   load_demos, random_key_states)
from infoatlas_loss.integrations.maniskill.env import CONTROL_MODES
from infoatlas_loss.integrations.maniskill.keystates import first_reach


def error_at(trace: list[tuple[float, float]], seconds: float) -> float:
    """Key-state error of the last (seconds, error) traced point within ``seconds``: what a
    run stopped there returns."""
    return [e for t, e in trace if t <= seconds][-1]


def plot_traces(runs: list[dict], path: str):
    """Key-state error (steps) against discovery wall time, ours and MINE, one line per seed,
    from the rows this benchmark writes with ``--json``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for run in runs:
        for row in run["rows"]:
            for key, color, name in (("ours_trace", "tab:red", "InfoAtlas"), ("mine_trace", "tab:blue", "MINE")):
                t, e = zip(*row[key])
                ax.plot(t, e, color=color, lw=1.2, alpha=0.8, ls=["-", "--", ":", "-."][row["seed"] % 4],
                        label=f"{name}, seed {row['seed']}")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("wall time of key-state discovery (s)")
    ax.set_ylabel("mean key-state error (steps)")
    ax.set_title(f"{runs[0]['args']['task']}, {runs[0]['args']['demos']} demos: MINE vs InfoAtlas")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="PegInsertionSide")
    p.add_argument("--demos", type=int, default=150)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--budget", type=float, default=10.0, help="MINE wall time / ours")
    p.add_argument("--cache", default="demos")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--demo-seed", type=int, default=0,
                   help="another demo set: the demos planned from this env seed on")
    p.add_argument("--control-mode", default="pd_joint_pos", choices=CONTROL_MODES,
                   help="demos as planned (joint targets) or replayed with end-effector deltas")
    KeyStateConfig.add_arguments(p, skip=("estimator",))
    p.add_argument("--plot", default=None, help="also draw error against time (PNG) here")
    p.add_argument("--replot", nargs="+", default=None, metavar="JSON",
                   help="only draw --plot from these --json files of earlier runs")
    args = p.parse_args(argv)
    if args.replot:
        runs = []
        for name in args.replot:
            with open(name) as f:
                runs.append(json.load(f))
        plot_traces(runs, args.plot or "maxmi_vs_mine.png")
        # how far each estimator's key states move once training is under way
        print("| seed | ours from its 10th update: min - max error | MINE over its run: min - max error |")
        print("|---|---|---|")
        for row in (row for run in runs for row in run["rows"]):
            ours, mine = [e for _, e in row["ours_trace"][1:]], [e for _, e in row["mine_trace"]]
            print(f"| {row['seed']} | {min(ours):.1f} - {max(ours):.1f} | {min(mine):.1f} - {max(mine):.1f} |")
        return [row for run in runs for row in run["rows"]]
    torch.set_num_threads(args.threads)
    config = KeyStateConfig.from_args(args)
    events = get_task(args.task).events
    demos = load_demos(args.task, args.demos, args.control_mode, seed=args.demo_seed, cache_dir=args.cache,
                       progress=False)
    err = lambda idx: key_state_error(demos, idx, events)["mean"]  # noqa: E731
    rows = []
    print(f"{args.task}, {len(demos)} demos, MINE budget {args.budget:g}x ours; key-state error "
          f"in steps (random: {err(random_key_states(demos, len(events))):.1f})")
    # MINE stopped at these multiples of our wall time: what a user with that budget gets
    at = [m for m in (1, 3, 10) if m < args.budget] + [args.budget]
    print("| seed | untrained error | ours: error | ours: s | "
          + " | ".join(f"MINE at {m:g}x: error" for m in at) + " | MINE: best error | MINE s to reach ours |")
    print("|---|---|---|---|" + "---|" * len(at) + "---|---|")
    for seed in args.seeds:
        gen = lambda: torch.Generator().manual_seed(seed)  # noqa: E731
        ours = discover_key_states(demos, len(events), config, generator=gen(), progress=False)
        mine = discover_key_states(demos, len(events), dataclasses.replace(config, estimator="mine", steps=10 ** 6),
                                   generator=gen(), max_seconds=args.budget * ours.seconds, progress=False)
        reach = first_reach(mine.trace, demos, events, err(ours.indices))
        ours_trace, mine_trace = [(t, err(i)) for t, i in ours.trace], [(t, err(i)) for t, i in mine.trace]
        # stopped within m x our time; the full budget's is the final answer (traced after the stop)
        err_at = {m: error_at(mine_trace, m * ours.seconds) for m in at[:-1]} | {args.budget: mine_trace[-1][1]}
        # same generator, same initial locators: the vote before any update is the same for both
        row = {"seed": seed, "untrained_error": ours_trace[0][1], "ours_error": ours_trace[-1][1],
               "ours_seconds": ours.seconds, "mine_error_at": {str(m): e for m, e in err_at.items()},
               "mine_error": mine_trace[-1][1], "mine_best": min(e for _, e in mine_trace),
               "mine_seconds": mine.seconds, "mine_seconds_to_reach_ours": reach,
               "ours_trace": ours_trace, "mine_trace": mine_trace}
        rows.append(row)
        print(f"| {seed} | {row['untrained_error']:.1f} | {row['ours_error']:.1f} | {ours.seconds:.0f} | "
              + " | ".join(f"{err_at[m]:.1f}" for m in at) + f" | {row['mine_best']:.1f} | "
              f"{'never' if reach is None else f'{reach:.0f} s'} |", flush=True)
    print(f"\nMINE ran {args.budget:g}x our wall time; \"MINE at Mx\" is its key states at the last traced "
          f"point within M x our seconds (a run given that budget), \"best\" and \"s to reach ours\" pick "
          f"points by their error against the simulator events, an oracle stopping rule.")
    # error against time for both: ours stopped after n updates vs MINE given as long and 10x as long
    print("\n| seed | ours: updates | ours: s | ours: error | MINE at the same s: error | MINE at 10x that: error |")
    print("|---|---|---|---|---|---|")
    for seed, row in zip(args.seeds, rows):
        for n in sorted({m for m in (10, 20, 50, 100) if m < config.steps} | {config.steps}):
            t, e = row["ours_trace"][n // config.trace_every if n < config.steps else -1]
            m10 = f"{error_at(row['mine_trace'], 10 * t):.1f}" if 10 * t <= row["mine_seconds"] else "–"
            print(f"| {seed} | {n} | {t:.0f} | {e:.1f} | {error_at(row['mine_trace'], t):.1f} | {m10} |")
    run = {"args": vars(args), "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(run, f, indent=1)
    if args.plot:
        plot_traces([run], args.plot)
    return rows


if __name__ == "__main__":
    main()
