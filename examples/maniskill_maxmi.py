"""MaxMI key states on ManiSkill with SlicedMILoss, then key-state-guided behaviour cloning.

    python examples/maniskill_maxmi.py                  # PickCube, about 9 min on 2 CPU cores once the demos are cached
    python examples/maniskill_maxmi.py --tasks all      # PickCube, StackCube, PegInsertionSide

Per task: scripted motion-planning demos (cached; by default converted to end-effector
deltas by replay, which BC clones far better than joint targets) -> key states by MaxMI with the frozen
InfoAtlas loss and with per-dataset MINE critics, one per MI term (MINE gets ``--mine-budget`` times our
wall time; both run ``KeyStateConfig``, whose defaults are this example's and can be changed with
the options of the same names) -> BC policies: plain, guided by our key states, by MINE's, by random
ones -> success rates in the simulator on demo seeds ("seen") and new seeds ("unseen").
Optional (``--rl-steps N``, needs the ``rl`` extra): stable-baselines3 PPO fine-tunes a
residual on top of the InfoAtlas-guided BC policy, rewarded by progress through our key
states (``infoatlas_loss.integrations.maniskill.rl``).
Key-state error = mean |key step - event step| against events read from the simulator.
Writes results.json, results.md and plots to ``--out`` (default ``outputs/maniskill_maxmi``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from infoatlas_loss.integrations.maniskill import (TASKS, KeyStateConfig, discover_key_states, get_task,
                                                   key_state_error, load_demos, random_key_states)
from infoatlas_loss.integrations.maniskill.demos import fingerprint
from infoatlas_loss.integrations.maniskill.env import CONTROL_MODES
from infoatlas_loss.integrations.maniskill.keystates import first_reach
from infoatlas_loss.integrations.maniskill.policy import evaluation_seeds, successes, train_bc

METHODS = ("plain BC", "InfoAtlas key states", "MINE key states", "random key states")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="PickCube", help="comma-separated task names, or 'all'")
    p.add_argument("--demos", type=int, default=300, help="successful demos per task")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per split")
    KeyStateConfig.add_arguments(p, skip=("estimator",))
    p.add_argument("--mine-budget", type=float, default=1.0,
                   help="MINE's wall-time budget as a multiple of ours (1: equal time; its trace "
                        "also says when it first reached our error)")
    p.add_argument("--bc-epochs", type=int, default=60)
    p.add_argument("--bc-seeds", type=int, default=1,
                   help="BC trainings per method (seeds seed, seed+1, ...); success pools their episodes")
    p.add_argument("--control-mode", default="pd_ee_delta_pose", choices=CONTROL_MODES,
                   help="what BC clones: end-effector deltas (demos converted by replay) or joint targets")
    p.add_argument("--chunk", type=int, default=8, help="BC actions per query, temporally ensembled")
    p.add_argument("--goal-from", type=int, default=18,
                   help="first state column of the key-state subgoal (18 skips the arm's qpos and qvel)")
    p.add_argument("--rl-steps", type=int, default=0,
                   help="SB3 PPO residual fine-tuning steps on the InfoAtlas-guided policy (0: skip)")
    p.add_argument("--rl-scale", type=float, default=0.2, help="residual action bound")
    p.add_argument("--workers", type=int, default=2, help="demo-planning and evaluation processes")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="demos", help="demo cache folder")
    p.add_argument("--out", default="outputs/maniskill_maxmi")
    return p.parse_args(argv)


def run_task(task: str, args, out: Path) -> dict:
    spec = get_task(task)
    k = len(spec.events)
    t0 = time.time()
    demos = load_demos(task, args.demos, args.control_mode, seed=args.seed, cache_dir=args.cache,
                       workers=args.workers)
    config = KeyStateConfig.from_args(args)
    gen = lambda: torch.Generator().manual_seed(args.seed)  # noqa: E731  (the same start for both)
    ours = discover_key_states(demos, k, config, generator=gen())
    # MINE runs for as long as we took times the budget (its step count is no limit)
    mine = discover_key_states(demos, k, dataclasses.replace(config, estimator="mine", steps=100 * config.steps),
                               generator=gen(), max_seconds=args.mine_budget * ours.seconds)
    keys = {"InfoAtlas key states": ours.indices, "MINE key states": mine.indices,
            "random key states": random_key_states(demos, k, seed=args.seed)}
    ks = {name: key_state_error(demos, idx, spec.events) for name, idx in keys.items()}
    reach = first_reach(mine.trace, demos, spec.events, ks["InfoAtlas key states"]["mean"])
    seen, unseen = evaluation_seeds(demos, args.episodes, offset=args.seed)
    rows, rl_ok, rl_runs = {}, [], []
    for name in METHODS:
        ok_seen, ok_unseen = [], []
        for b in range(args.bc_seeds):
            trained = train_bc(demos, keys.get(name), epochs=args.bc_epochs, chunk=args.chunk,
                               goal_from=args.goal_from, generator=torch.Generator().manual_seed(args.seed + b))
            # both splits in one batch of workers (one process start-up and env build, not two)
            ok = successes(task, trained, seen + unseen, max_steps=spec.max_steps, workers=args.workers)
            ok_seen += ok[:len(seen)]
            ok_unseen += ok[len(seen):]
            if args.rl_steps and name == "InfoAtlas key states":
                from infoatlas_loss.integrations.maniskill.rl import finetune_residual, residual_successes
                rl = finetune_residual(task, trained, demos, ours.indices, steps=args.rl_steps,
                                       max_steps=spec.max_steps, scale=args.rl_scale, seed=args.seed + b)
                rl_ok.append(residual_successes(task, trained, rl, seen + unseen, max_steps=spec.max_steps))
                rl_runs.append(rl)
        rows[name] = {"seen": float(np.mean(ok_seen)), "unseen": float(np.mean(ok_unseen)),
                      "key_state_error": ks.get(name)}
        print(f"{task} {name}: seen {rows[name]['seen']:.2f} unseen {rows[name]['unseen']:.2f}")
    if rl_ok:
        rl_name = f"InfoAtlas key states + PPO residual ({args.rl_steps} steps)"
        rows[rl_name] = {"seen": float(np.mean([o[:len(seen)] for o in rl_ok])),
                         "unseen": float(np.mean([o[len(seen):] for o in rl_ok])),
                         "key_state_error": ks["InfoAtlas key states"],
                         "rl_seconds": sum(r.seconds for r in rl_runs),
                         "rl_train_episodes": sum(r.episodes for r in rl_runs),
                         "rl_train_successes": sum(r.train_successes for r in rl_runs)}
        print(f"{task} {rl_name}: seen {rows[rl_name]['seen']:.2f} unseen {rows[rl_name]['unseen']:.2f}")
    from infoatlas_loss.integrations.maniskill.plots import plot_key_states, plot_key_state_time
    plot_key_states(task, demos, {"InfoAtlas": ours.indices, "MINE": mine.indices}, out / f"{task}_key_states.png")
    plot_key_state_time(task, demos, {"InfoAtlas": ours, "MINE": mine}, out / f"{task}_error_vs_time.png")
    return {"task": task, "demos": len(demos), "demo_set": fingerprint(demos),
            "episodes_per_split": args.episodes * args.bc_seeds, "bc_seeds": args.bc_seeds,
            "events": list(spec.events), "methods": rows,
            "discovery_seconds": {"InfoAtlas": round(ours.seconds, 1), "MINE": round(mine.seconds, 1)},
            "mine_seconds_to_reach_ours": reach, "minutes": round((time.time() - t0) / 60, 1)}


def to_markdown(results: list[dict]) -> str:
    lines = ["| task | method | success seen | success unseen | key-state error (steps) | discovery time (s) |",
             "|---|---|---|---|---|---|"]
    for r in results:
        for name, row in r["methods"].items():
            err = row["key_state_error"]
            err_s = "—" if err is None else f"{err['mean']:.1f} (" + ", ".join(
                f"{e} {err[e]:.1f}" for e in r["events"]) + ")"
            sec = r["discovery_seconds"].get(name.split()[0], "—")
            lines.append(f"| {r['task']} | {name} | {row['seen']:.2f} | {row['unseen']:.2f} | {err_s} | {sec} |")
    def reach(r):
        s = r["mine_seconds_to_reach_ours"]
        return (f"after {s:.1f} s" if s is not None else
                f"not within its {r['discovery_seconds']['MINE']} s budget")
    notes = [f"- {r['task']}: {r['demos']} demos (demo set {r['demo_set']}), "
             f"{r['episodes_per_split']} episodes per split "
             f"({r.get('bc_seeds', 1)} BC training(s) per method); MINE reached "
             f"InfoAtlas's key-state error {reach(r)}; task wall time {r['minutes']} min"
             + "".join(f"; PPO residual stage {row['rl_seconds']:.0f} s, success in "
                       f"{row.get('rl_train_successes', '?')} of {row.get('rl_train_episodes', '?')} training episodes"
                       for row in r["methods"].values() if "rl_seconds" in row) for r in results]
    return "\n".join(lines + [""] + notes) + "\n"


def _weights_sha() -> str:
    from infoatlas_loss.pretrained import REGISTRY
    return REGISTRY["infoatlas-base"][1]


def main(argv=None):
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = list(TASKS) if args.tasks == "all" else args.tasks.split(",")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for task in tasks:
        results.append(run_task(task, args, out))
        meta = {"args": vars(args), "weights_sha256": _weights_sha()}
        (out / "results.json").write_text(json.dumps({**meta, "results": results}, indent=1))
        (out / "results.md").write_text(to_markdown(results))
    from infoatlas_loss.integrations.maniskill.plots import plot_success
    plot_success(results, out / "success.png")
    print(to_markdown(results))


if __name__ == "__main__":
    main()
