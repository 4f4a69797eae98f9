"""Accuracy of InfoAtlas vs KSG, CCA and Gaussian-copula MI on the 40 bmi tasks (nats).

    python -m benchmarks.accuracy --quick                  # Table-1 tasks + one wide task, n=1000, seed 0
    python -m benchmarks.accuracy --n 1000 5000 10000 --seeds 0 1 2 --threads 1   # the full suite

For every task, seed and n one sample is drawn (generator seeded by
``(seed, crc32(task id))``, the same stream at every n) and every method estimates MI on
that same sample; wall time per estimate is recorded (each method is warmed up once
first, so model loading is not timed).  Methods:

* ``InfoAtlas``: ``infoatlas_loss.estimate(X, Y)`` (the ``benchmark-mi`` interface), or
  ``infoatlas_loss.estimate_mi(X, Y, model=...)`` with ``--weights``;
* ``KSG``: Kraskov et al. algorithm 1, k = 10, max-norm k-d trees (``benchmarks.baselines``);
* ``CCA``: MI of the Gaussian fitted to the sample, -1/2 sum log(1 - rho_i^2);
* ``GaussCopula``: the same on the normal scores of the ranks (plain formula, no bias
  correction).

Output (``--out``): ``results.md`` (the command; mean |error| per n over the 40 tasks,
the 33 with at most 5 dimensions per variable, the 7 wide ones and the paper's Table-1
eight, with mean seconds per estimate; the published anchors; per-task tables per n),
``results.json`` (config, every record, the summaries) and ``estimate_vs_truth.png``
(one panel per n).  ``--ksg-wide-max-n`` leaves KSG out on the wide tasks above that n
(about 70 s per estimate on 50 x 50 at n = 10 000 on one core); every skipped estimate is
printed and listed in both result files, and group means that miss tasks show the count.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from .baselines import gaussian_copula_mi, gaussian_mi, ksg
from .bmi_tasks import GROUPS, TABLE1, Task, get_tasks
from .accuracy_report import (PUBLISHED, PUBLISHED_NS, PUBLISHED_SOURCE, group_summary, group_table,
                              plot, published_table, summarize, table)
from .common import fmt_table, load_model

EXTRA_NS = (64, 256, 500, 5000, 20000)
QUICK_TASKS = TABLE1 + ("multinormal-sparse-25-25-2-2.0",)
def task_rng(task: Task, seed: int) -> np.random.Generator:
    """The generator for (task, seed): independent streams across tasks and seeds."""
    return np.random.default_rng([int(seed), zlib.crc32(task.name.encode())])


def make_methods(weights: str | None = None) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """name -> f(x, y) -> MI in nats.  InfoAtlas goes through the public estimator."""
    import infoatlas_loss

    if weights:
        model = load_model(weights)
        info = lambda x, y: float(infoatlas_loss.estimate_mi(x, y, model=model))  # noqa: E731
    else:
        info = lambda x, y: float(infoatlas_loss.estimate(x, y))  # noqa: E731
    return {
        "InfoAtlas": info,
        "KSG": lambda x, y: ksg(x, y, k=10),
        "CCA": gaussian_mi,
        "GaussCopula": gaussian_copula_mi,
    }


REUSABLE = ("KSG", "CCA")
"""Baselines whose records ``--baselines-from`` may take from an earlier run."""


def load_baselines(path: str) -> dict:
    """(task, seed, n, method) -> record of an earlier run's results.json."""
    data = json.loads(Path(path).read_text())
    out = {(r["task"], r["seed"], r["n"], r["method"]): r for r in data["records"]}
    out.update({(r["task"], r["seed"], r["n"], r["method"]): None for r in data.get("skipped", [])})
    return out


def reuse_records(reused: dict, fresh: list[dict], tasks, n: int, seeds) -> list[dict]:
    """The KSG and CCA records of ``reused`` for these tasks, n and seeds, after checking on
    every sample that the freshly computed Gaussian-copula estimate equals the stored one
    (same samples).  Raises if a record is missing or a sample differs."""
    out = []
    for r in fresh:
        if r["method"] != "GaussCopula":
            continue
        old = reused.get((r["task"], r["seed"], n, "GaussCopula"))
        if old is None or abs(old["estimate"] - r["estimate"]) > 1e-9:
            raise ValueError(f"--baselines-from: {r['task']} seed {r['seed']} n={n} is not the same "
                             "sample in the earlier run; rerun without it")
    for t in tasks:
        for s in seeds:
            for m in REUSABLE:
                key = (t, int(s), n, m)
                if key in reused and reused[key] is None:
                    continue  # left out in the earlier run too
                rec = reused.get(key)
                if rec is None:
                    raise ValueError(f"--baselines-from has no {m} record for {t}, seed {s}, n={n}")
                out.append(dict(rec, reused=True))
    return out


def warm_up(methods: dict) -> None:
    """One untimed call of each method (loads weights, fills caches)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((256, 2)), rng.standard_normal((256, 2))
    for f in methods.values():
        f(x, y)


def run_records(tasks, methods, n: int, seeds, skip: Callable[[Task, int, str], bool] = None,
                log=sys.stderr) -> tuple[list[dict], list[dict]]:
    """One record per (task, seed, method): estimate (nats) and seconds.

    ``skip(task, n, method)`` True leaves that estimate out; returns (records, skipped).
    """
    recs, skipped = [], []
    for t in tasks:
        t_start = time.perf_counter()
        for s in seeds:
            x, y = t.sample(n, task_rng(t, s))
            for m, f in methods.items():
                if skip and skip(t, n, m):
                    skipped.append(dict(task=t.name, seed=int(s), n=n, method=m))
                    continue
                t0 = time.perf_counter()
                est = float(f(x, y))
                recs.append(dict(task=t.name, gt=t.mi, seed=int(s), n=n, method=m,
                                 estimate=est, seconds=time.perf_counter() - t0))
        if log:
            row = {}
            for r in recs:
                if r["task"] == t.name and r["n"] == n:
                    row.setdefault(r["method"], []).append(r["estimate"])
            print(f"  n={n:<6d} {t.name:50s} GT {t.mi:.3f}  " +
                  "  ".join(f"{m} {np.mean(v):.3f}" for m, v in row.items()) +
                  f"  ({time.perf_counter() - t_start:.1f} s)", file=log, flush=True)
    return recs, skipped


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", choices=sorted(GROUPS), default=None, help="task group (default all)")
    p.add_argument("--task-names", nargs="+", default=None, help="explicit task ids")
    p.add_argument("--n", type=int, nargs="+", default=None,
                   help="samples per estimate (default 1000 5000 10000)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2")
    p.add_argument("--out", default="outputs/accuracy")
    p.add_argument("--weights", default=None, help="safetensors file (default: shipped)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--ksg-wide-max-n", type=int, default=None,
                   help="leave KSG out on the wide tasks at n above this (default: never)")
    p.add_argument("--baselines-from", default=None, metavar="RESULTS_JSON",
                   help="take the KSG and CCA records from an earlier run's results.json on the "
                        "same tasks, n and seeds (the samples are the same: checked by "
                        "recomputing Gaussian-copula MI, which must match to 1e-9)")
    p.add_argument("--quick", action="store_true",
                   help="defaults n=1000, seed 0, Table-1 tasks + one wide task, and no extras")
    p.add_argument("--extras", action="store_true",
                   help=f"InfoAtlas on Table-1 tasks at n in {EXTRA_NS}")
    a = p.parse_args(argv)
    a.argv = list(sys.argv[1:] if argv is None else argv)
    quick = a.quick
    a.n = a.n or ([1000] if quick else [1000, 5000, 10000])
    a.seeds = a.seeds or ([0] if quick else [0, 1, 2])
    if not a.task_names and not a.tasks and quick:
        a.task_names = list(QUICK_TASKS)
    a.tasks = a.tasks or "all"
    a.extras = a.extras and not quick
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.accuracy " + shlex.join(a.argv)
    tasks = get_tasks(a.tasks, a.task_names)
    names = [t.name for t in tasks]
    methods = make_methods(a.weights)
    mnames = list(methods)
    reused = load_baselines(a.baselines_from) if a.baselines_from else {}
    methods = {m: f for m, f in methods.items() if m not in REUSABLE or not reused}
    warm_up(methods)
    skip = None
    if a.ksg_wide_max_n is not None:
        wide = set(GROUPS["wide"])
        skip = lambda t, n, m: m == "KSG" and t.name in wide and n > a.ksg_wide_max_n  # noqa: E731
    print(f"{len(tasks)} tasks, n={a.n}, seeds={a.seeds}", file=sys.stderr)
    recs, skipped, by_n, groups = [], [], {}, {}
    for n in a.n:
        r, s = run_records(tasks, methods, n, a.seeds, skip)
        if reused:
            r += reuse_records(reused, r, names, n, a.seeds)
        recs += r
        skipped += s
        by_n[n] = summarize(r)
        groups[n] = group_summary(by_n[n], mnames, names)
    for s in skipped:
        print(f"skipped: {s['method']} on {s['task']}, n={s['n']}, seed {s['seed']}", file=sys.stderr)

    text, md = [], [f"# MI accuracy on bmi tasks (nats)\n\n`{command}`\n\n"
                    f"{len(tasks)} tasks, n = {', '.join(map(str, a.n))}, seeds {a.seeds}, "
                    f"weights: {a.weights or 'shipped'}\n"]
    if reused:
        md.append(f"KSG and CCA records are taken from `{a.baselines_from}` (same samples: "
                  "Gaussian-copula MI recomputed on each and equal); their seconds are from "
                  "that run.\n")
    md.append("## Mean |error| by task group\n")
    for n in a.n:
        text += [f"\nn = {n}: mean |error| and seconds per estimate by task group",
                 group_table(groups[n], mnames)]
        md += [f"### n = {n}\n", group_table(groups[n], mnames, md=True), ""]
    text += ["\nPublished anchors (40-task mean |error|) and this run",
             published_table(groups, mnames)]
    md += ["## Published anchors (40-task mean |error|) and this run\n",
           published_table(groups, mnames, md=True), ""]
    if skipped:
        md += ["## Skipped estimates\n",
               fmt_table(["method", "task", "n", "seed"],
                         [[s["method"], s["task"], s["n"], s["seed"]] for s in skipped], md=True), ""]
    for n in a.n:
        md += [f"## Per task, n = {n}\n", table(by_n[n], mnames, md=True), ""]
    result = dict(config=dict(command=command, n=a.n, seeds=a.seeds, weights=a.weights,
                              threads=a.threads, ksg_wide_max_n=a.ksg_wide_max_n, tasks=names,
                              methods=mnames),
                  records=recs, skipped=skipped,
                  summary={str(n): s for n, s in by_n.items()},
                  groups={str(n): g for n, g in groups.items()},
                  published=dict(source=PUBLISHED_SOURCE, n=list(PUBLISHED_NS), mean_abs_err=PUBLISHED))
    if a.extras:
        t1 = [t for t in tasks if t.name in TABLE1] or get_tasks("table1")
        info = {"InfoAtlas": methods["InfoAtlas"]}
        ext = []
        for n in EXTRA_NS:
            ext += [dict(r, method=f"n={n}") for r in run_records(t1, info, n, a.seeds, log=None)[0]]
        ext_sum = summarize(ext)
        cols = [f"n={n}" for n in EXTRA_NS]
        text += ["\nInfoAtlas vs sample size (Table-1 tasks)", table(ext_sum, cols)]
        md += ["## InfoAtlas vs sample size (Table-1 tasks)\n", table(ext_sum, cols, md=True), ""]
        result["extras"] = dict(records=ext, summary=ext_sum)
    print("\n".join(text))
    (out / "results.md").write_text("\n".join(md).rstrip() + "\n")
    (out / "results.json").write_text(json.dumps(result, indent=1))
    plot(by_n, mnames, out / "estimate_vs_truth.png")
    print(f"wrote {out}/results.json, results.md, estimate_vs_truth.png", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
