"""MaxMI key states on ManiSkill with SlicedMILoss, then key-state-guided behaviour cloning.

    python examples/maniskill_maxmi.py                  # PickCube, 11-14 min on 2 CPU cores once the demos are cached
    python examples/maniskill_maxmi.py --tasks all      # PickCube, StackCube, PegInsertionSide

Per task: scripted motion-planning demos (cached; by default converted to end-effector
deltas by replay, which BC clones far better than joint targets) -> key states by MaxMI with the frozen
InfoAtlas loss and with per-dataset MINE critics, one per MI term (MINE gets ``--mine-budget`` times our
wall time; both maximise the MI gain I(s_k; s_k-4) - I(s_k; s_k-12), ``--contrast-gap``, and
combine their restarts by agreement with a phase guard, ``--vote`` and ``--guard``)
-> BC policies: plain, guided by our key states, by MINE's, by random ones -> success rates
in the simulator on demo seeds ("seen") and new seeds ("unseen").
Optional (``--rl-steps N``, needs the ``rl`` extra): stable-baselines3 PPO fine-tunes a
residual on top of the InfoAtlas-guided BC policy, rewarded by progress through our key
states (``integrations/maniskill/rl.py``).
Key-state error = mean |key step - event step| against events read from the simulator.
Writes results.json, results.md and plots to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

try:
    import integrations.maniskill  # noqa: F401
except ModuleNotFoundError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from integrations.maniskill import TASKS, get_task
from integrations.maniskill.convert import load_demos
from integrations.maniskill.demos import fingerprint
from integrations.maniskill.env import CONTROL_MODES
from integrations.maniskill.keystates import (MINE_CRITICS, discover_key_states, first_reach,
                                             key_state_error, random_key_states)
from integrations.maniskill.policy import evaluation_seeds, successes, train_bc

METHODS = ("plain BC", "InfoAtlas key states", "MINE key states", "random key states")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="PickCube", help="comma-separated task names, or 'all'")
    p.add_argument("--demos", type=int, default=300, help="successful demos per task")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per split")
    p.add_argument("--ks-steps", type=int, default=200, help="key-state localiser updates")
    p.add_argument("--restarts", type=int, default=5,
                   help="locators trained side by side that vote on each key state (both estimators)")
    p.add_argument("--vote", default="agree", choices=["median", "agree"],
                   help="how the restarts' key states combine (see discover_key_states; "
                        "'median': the plain median of all restarts, the default before session 15)")
    p.add_argument("--guard", type=float, default=4.0,
                   help="re-place key states at an outlying phase of their demo, in median "
                        "absolute deviations (see integrations.maniskill.vote.phase_guard; 0: off)")
    p.add_argument("--order", default="greedy", choices=["greedy", "hinge"],
                   help="how the concepts are kept in temporal order (see discover_key_states)")
    p.add_argument("--contrast-gap", type=int, default=12,
                   help="maximise I(s_k; s_k-4) - I(s_k; s_k-gap), both estimators (see "
                        "discover_key_states; 0: the plain MaxMI objective I(s_k; s_k-4))")
    p.add_argument("--mine-budget", type=float, default=1.0,
                   help="MINE's wall-time budget as a multiple of ours (1: equal time; its trace "
                        "also says when it first reached our error)")
    p.add_argument("--mine-critics", default="per-term", choices=MINE_CRITICS,
                   help="one MINE critic per MI term, or one for all (the weaker baseline the "
                        "example used before session 17; see discover_key_states)")
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
    p.add_argument("--out", default="examples/results/maniskill")
    return p.parse_args(argv)


def run_task(task: str, args, out: Path) -> dict:
    spec = get_task(task)
    k = len(spec.events)
    t0 = time.time()
    demos = load_demos(task, args.demos, args.control_mode, seed=args.seed, cache_dir=args.cache,
                       workers=args.workers)
    discovery = dict(seed=args.seed, restarts=args.restarts, order=args.order,
                     contrast_gap=args.contrast_gap or None, vote=args.vote, guard=args.guard or None)
    ours = discover_key_states(demos, k, estimator="infoatlas", steps=args.ks_steps, **discovery)
    mine = discover_key_states(demos, k, estimator="mine", steps=100 * args.ks_steps,
                               max_seconds=args.mine_budget * ours.seconds, mine_critics=args.mine_critics,
                               **discovery)
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
                               goal_from=args.goal_from, seed=args.seed + b)
            # both splits in one batch of workers (one process start-up and env build, not two)
            ok = successes(task, trained, seen + unseen, max_steps=spec.max_steps, workers=args.workers)
            ok_seen += ok[:len(seen)]
            ok_unseen += ok[len(seen):]
            if args.rl_steps and name == "InfoAtlas key states":
                from integrations.maniskill.rl import finetune_residual, residual_successes
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
    from integrations.maniskill.plots import plot_key_states, plot_key_state_time
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
    notes = [f"- {r['task']}: {r['demos']} demos (set {r.get('demo_set', '?')}), "
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
    from integrations.maniskill.plots import plot_success
    plot_success(results, out / "success.png")
    print(to_markdown(results))


if __name__ == "__main__":
    main()
