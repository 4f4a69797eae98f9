"""Do key states help a chain-of-thought transformer policy?  The gate before key-state discovery.

    python integrations/maniskill/experiments/cotpc_gate.py --tasks PickCube StackCube PegInsertionSide
    python integrations/maniskill/experiments/cotpc_gate.py --quick      # smoke run, about a minute

Per task and training seed, three :class:`~infoatlas_loss.integrations.maniskill.cotpc.CoTPolicy`
variants are trained on the same cached motion-planning demos (end-effector deltas by
default) with the same budget: (a) ``none``, the transformer without key-state tokens;
(b) ``oracle``, chain-of-thought tokens trained to predict the key states at the physical
events read from the simulator; (c) ``random``, the same with random key states (drawn per
training seed).  Each is evaluated in the simulator on the first ``--episodes`` demo seeds
("seen") and as many new seeds ("unseen"); nothing is selected on either.
Gate: (b) beats (a) in the per-seed success over both splits, two-sided sign test over the
paired seeds (ties dropped), p < 0.05, on at least one task.
Every (task, variant, seed) result is saved under ``--out``/runs as it finishes and read back
on a rerun with the same settings, so an interrupted run resumes.  Writes results.json,
results.md (the command on top) and curves.png (training losses) to ``--out``.
Needs the ``maniskill`` and ``bench`` extras.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import binomtest

from infoatlas_loss.integrations.maniskill import get_task, load_demos, random_key_states
from infoatlas_loss.integrations.maniskill.cotpc import CoTConfig, cotpc_successes, train_cotpc
from infoatlas_loss.integrations.maniskill.demos import fingerprint
from infoatlas_loss.integrations.maniskill.env import CONTROL_MODES
from infoatlas_loss.integrations.maniskill.policy import evaluation_seeds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bc_guidance import oracle_key_states  # noqa: E402  (a sibling script)

COMMAND = "python integrations/maniskill/experiments/cotpc_gate.py"
OUT = Path(__file__).resolve().parent / "results" / "cotpc_gate"
VARIANTS = {"none": "(a) no key-state tokens", "oracle": "(b) oracle key states",
            "random": "(c) random key states"}
QUICK = {"tasks": ["PickCube"], "seeds": [0], "episodes": 2, "demos": 4, "epochs": 1, "window": 4}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["PickCube", "StackCube", "PegInsertionSide"])
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)), help="training seeds (paired)")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per split")
    p.add_argument("--demos", type=int, default=100, help="successful demos per task")
    p.add_argument("--epochs", type=int, default=CoTConfig.epochs)
    p.add_argument("--window", type=int, default=CoTConfig.window)
    p.add_argument("--control-mode", default="pd_ee_delta_pose", choices=CONTROL_MODES)
    p.add_argument("--workers", type=int, default=1, help="evaluation processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--cache", default="demos", help="demo cache folder")
    p.add_argument("--out", type=Path, default=None, help="default integrations/maniskill/experiments/results/cotpc_gate "
                   "(--quick: outputs/cotpc_gate_quick)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: " + ", ".join(f"{k} {v}" for k, v in QUICK.items()))
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    args.out = args.out or (Path("outputs/cotpc_gate_quick") if args.quick else OUT)
    return args


def key_indices(variant: str, demos, events, seed: int) -> np.ndarray | None:
    if variant == "none":
        return None
    if variant == "oracle":
        return oracle_key_states(demos, events)
    return random_key_states(demos, len(events), seed=seed)


def sign_test(b: list[float], a: list[float]) -> dict:
    """Seeds where ``b`` is above / equal to / below ``a``; two-sided sign-test p (ties dropped)."""
    wins, losses = sum(x > y for x, y in zip(b, a)), sum(x < y for x, y in zip(b, a))
    p = binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    return {"above": wins, "equal": len(a) - wins - losses, "below": losses, "p": float(p)}


def run_one(task: str, variant: str, seed: int, demos, config: CoTConfig, args) -> dict:
    spec = get_task(task)
    keys = key_indices(variant, demos, spec.events, seed)
    trained = train_cotpc(demos, keys, config, generator=torch.Generator().manual_seed(seed), progress=False)
    seen, unseen = evaluation_seeds(demos, args.episodes)
    t0 = time.time()
    ok = cotpc_successes(task, trained, seen + unseen, max_steps=spec.max_steps, workers=args.workers)
    return {"task": task, "variant": variant, "seed": seed, "seen": ok[:len(seen)], "unseen": ok[len(seen):],
            "curve": trained.curve, "train_seconds": round(trained.seconds, 1),
            "eval_seconds": round(time.time() - t0, 1)}


def restored(saved: dict | None, setting: dict, task: str, variant: str, seed: int, demo_set: str) -> dict | None:
    """A finished run whose file under ``runs/`` is gone (that folder is not kept in git), rebuilt
    from the results.json found at start with the same settings and demo set: its success counts
    per split (all the summary needs; episode order is not kept) and times; no training curve."""
    if saved is None or saved["setting"] != setting:
        return None
    for s in saved["summaries"]:
        if s["task"] == task and s["demo_set"] == demo_set and seed in s["seeds"]:
            i = s["seeds"].index(seed)
            times = next(r for r in saved["runs"] if (r["task"], r["variant"], r["seed"]) == (task, variant, seed))
            split = {k: [1] * round(s["per_seed"][variant][k][i] * setting["episodes"]) for k in ("seen", "unseen")}
            return {**times, **{k: x + [0] * (setting["episodes"] - len(x)) for k, x in split.items()},
                    "curve": None}
    return None


def summarize(task: str, runs: dict, seeds: list[int]) -> dict:
    """Per variant: mean and sd over seeds of the success per split; sign tests of (b) and (c)
    against (a) and of (b) against (c), over the seeds every variant has."""
    paired = [s for s in seeds if all((v, s) in runs for v in VARIANTS)]
    rate = {v: {split: [float(np.mean(runs[v, s][split])) for s in paired] for split in ("seen", "unseen")}
            for v in VARIANTS}
    for v in VARIANTS:
        rate[v]["both"] = [float(np.mean(runs[v, s]["seen"] + runs[v, s]["unseen"])) for s in paired]
    stats = {v: {split: [float(np.mean(x)), float(np.std(x, ddof=1)) if len(x) > 1 else 0.0]
                 for split, x in r.items()} for v, r in rate.items()} if paired else {}
    tests = {f"{b} vs {a}": {split: sign_test(rate[b][split], rate[a][split]) for split in ("both", "seen", "unseen")}
             for b, a in (("oracle", "none"), ("random", "none"), ("oracle", "random"))} if paired else {}
    gate = tests.get("oracle vs none", {}).get("both")
    return {"task": task, "seeds": paired, "success": stats, "per_seed": rate, "tests": tests,
            "gate_pass": bool(gate and gate["p"] < 0.05 and gate["above"] > gate["below"]),
            "minutes": round(sum(r["train_seconds"] + r["eval_seconds"] for (v, s), r in runs.items()
                                 if s in paired) / 60, 1)}


def to_markdown(command: str, summaries: list[dict], setting: dict) -> str:
    lines = [f"`{command}`", "",
             "CoTPC-style policy (" + ", ".join(f"{k} {v}" for k, v in setting["config"].items()) + f"), {setting['control_mode']}, {setting['demos']} demos per task, "
             f"{setting['episodes']} evaluation episodes per split and seed. Success rate, mean ± sd over training "
             "seeds; sign tests over the paired seeds (seeds above / equal / below, two-sided p; ties dropped), "
             "\"both\" = the success over seen and unseen episodes together (the gate's measure).", "",
             "| task | variant | seeds | seen | unseen | both |", "|---|---|---|---|---|---|"]
    for s in summaries:
        for v, name in VARIANTS.items():
            if v in s["success"]:
                cells = " | ".join(f"{m:.2f} ± {sd:.2f}" for m, sd in (s["success"][v][k] for k in ("seen", "unseen", "both")))
                lines.append(f"| {s['task']} (demo set {s['demo_set']}) | {name} | {len(s['seeds'])} | {cells} |")
    lines += ["", "| task | comparison | both | seen | unseen |", "|---|---|---|---|---|"]
    for s in summaries:
        for name, t in s["tests"].items():
            cells = " | ".join(f"{t[k]['above']} / {t[k]['equal']} / {t[k]['below']} (p {t[k]['p']:.3f})"
                               for k in ("both", "seen", "unseen"))
            lines.append(f"| {s['task']} | {name} | {cells} |")
    lines.append("")
    for s in summaries:
        verdict = "passes" if s["gate_pass"] else "does not pass"
        lines.append(f"- {s['task']}: the gate (oracle above none, p < 0.05) {verdict}; "
                     f"{len(s['seeds'])} paired seeds, {s['minutes']} min of training and evaluation.")
    overall = any(s["gate_pass"] for s in summaries)
    lines.append(f"- Overall: the gate {'passes' if overall else 'does not pass'} on the tasks above.")
    return "\n".join(lines) + "\n"


def plot_curves(all_runs: dict, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tasks = sorted({t for t, _, _ in all_runs})
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 3 * len(tasks)), squeeze=False)
    colors = {"none": "tab:gray", "oracle": "tab:blue", "random": "tab:orange"}
    for row, task in zip(axes, tasks):
        for v in VARIANTS:
            curves = [np.asarray(r["curve"]) for (t, vv, _), r in all_runs.items()
                      if t == task and vv == v and r["curve"] is not None]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            mean = np.mean([c[:n] for c in curves], 0)
            row[0].plot(mean[:, 0], mean[:, 1], color=colors[v], label=f"{VARIANTS[v]} ({len(curves)} seeds)")
            if v != "none":
                row[1].plot(mean[:, 0], mean[:, 2], color=colors[v], label=VARIANTS[v])
        row[0].set(title=f"{task}: action loss (normalised MSE)", xlabel="update", yscale="log")
        row[1].set(title=f"{task}: key-state loss (normalised MSE)", xlabel="update", yscale="log")
        for ax in row:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse(argv)
    torch.set_num_threads(args.threads)
    config = dataclasses.replace(CoTConfig(), epochs=args.epochs, window=args.window)
    command = " ".join([COMMAND, *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    setting = {"config": dataclasses.asdict(config), "control_mode": args.control_mode, "demos": args.demos,
               "episodes": args.episodes}
    previous = json.loads((args.out / "results.json").read_text()) if (args.out / "results.json").exists() else None
    summaries, all_runs = [], {}
    for task in args.tasks:
        demos = load_demos(task, args.demos, args.control_mode, cache_dir=args.cache, progress=False)
        demo_set = fingerprint(demos)
        runs = {}
        for seed in args.seeds:
            for v in VARIANTS:
                path = args.out / "runs" / f"{task}-{v}-seed{seed}.json"
                if path.exists():
                    saved = json.loads(path.read_text())
                    if saved["setting"] != {**setting, "demo_set": demo_set}:
                        raise SystemExit(f"{path} was run with other settings; use another --out")
                    r = saved["result"]
                elif (r := restored(previous, setting, task, v, seed, demo_set)) is not None:
                    pass
                else:
                    r = run_one(task, v, seed, demos, config, args)
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps({"setting": {**setting, "demo_set": demo_set}, "result": r}))
                    tmp.replace(path)
                    print(f"{task} {v} seed {seed}: seen {np.mean(r['seen']):.2f} unseen {np.mean(r['unseen']):.2f} "
                          f"(train {r['train_seconds']:.0f} s, eval {r['eval_seconds']:.0f} s)", flush=True)
                runs[v, seed] = all_runs[task, v, seed] = r
            summary = {**summarize(task, runs, args.seeds), "demo_set": demo_set, "demos": len(demos)}
            done = summaries + [summary]
            (args.out / "results.json").write_text(json.dumps(
                {"command": command, "setting": setting, "summaries": done,
                 "runs": [{k: r[k] for k in ("task", "variant", "seed", "train_seconds", "eval_seconds")}
                          for r in all_runs.values()]}, indent=1))
            (args.out / "results.md").write_text(to_markdown(command, done, setting))
            plot_curves(all_runs, args.out / "curves.png")
        summaries.append(summary)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
