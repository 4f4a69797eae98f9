"""Accuracy of InfoAtlas vs KSG, CCA and Gaussian-copula MI on bmi tasks (all in nats).

    python -m benchmarks.accuracy --quick                      # Table-1 tasks, n=1000, 1 seed
    python -m benchmarks.accuracy --tasks all --n 5000 --seeds 0 1 2 --extras

For every task and seed one sample of size n is drawn (generator seeded by
``(seed, crc32(task id))``) and every method estimates MI on it; wall time per estimate
is recorded.  The table gives per task the ground truth, each method's mean ± std over
seeds and |mean - GT|; the last rows give the mean |error| over tasks and the mean seconds
per estimate.  ``--extras`` adds InfoAtlas on the Table-1 tasks at n in {64, 256, 500,
5000, 20000}.  Writes ``results.json``, ``results.md`` and ``estimate_vs_truth.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from .baselines import gaussian_copula_mi, gaussian_mi, ksg
from .bmi_tasks import TABLE1, Task, get_tasks

EXTRA_NS = (64, 256, 500, 5000, 20000)


def task_rng(task: Task, seed: int) -> np.random.Generator:
    """The generator for (task, seed): independent streams across tasks and seeds."""
    return np.random.default_rng([int(seed), zlib.crc32(task.name.encode())])


def make_methods(model) -> dict[str, Callable[[np.ndarray, np.ndarray, int], float]]:
    """name -> f(x, y, seed) -> MI in nats."""
    from infoatlas_loss import estimate_mi

    return {
        "InfoAtlas": lambda x, y, s: estimate_mi(x, y, model=model, seed=s).mi,
        "KSG": lambda x, y, s: ksg(x, y, k=10),
        "CCA": lambda x, y, s: gaussian_mi(x, y),
        "GaussCopula": lambda x, y, s: gaussian_copula_mi(x, y),
    }


def load_model(weights: str | None):
    """The InfoAtlas model: from ``weights`` (safetensors) or the shipped base weights."""
    from infoatlas_loss import load_pretrained, load_weights

    return load_weights(weights) if weights else load_pretrained("infoatlas-base")


def run_records(tasks, methods, n: int, seeds, log=sys.stderr) -> list[dict]:
    """One record per (task, seed, method): estimate (nats) and seconds."""
    recs = []
    for t in tasks:
        for s in seeds:
            x, y = t.sample(n, task_rng(t, s))
            for m, f in methods.items():
                t0 = time.perf_counter()
                est = float(f(x, y, s))
                recs.append(dict(task=t.name, gt=t.mi, seed=int(s), n=n, method=m,
                                 estimate=est, seconds=time.perf_counter() - t0))
        if log:
            row = {r["method"]: r["estimate"] for r in recs if r["task"] == t.name}
            print(f"  {t.name:48s} GT {t.mi:.3f}  " +
                  "  ".join(f"{m} {v:.3f}" for m, v in row.items()), file=log, flush=True)
    return recs


def summarize(recs: list[dict], key: str = "method") -> dict:
    """{task: {key value: {mean, std, abs_err, seconds}}} plus per-key overall means."""
    out: dict = {"tasks": {}, "overall": {}}
    for r in recs:
        out["tasks"].setdefault(r["task"], {"gt": r["gt"]}).setdefault(r[key], []).append(r)
    errs: dict = {}
    for name, row in out["tasks"].items():
        for k, rs in list(row.items()):
            if k == "gt":
                continue
            e = np.array([r["estimate"] for r in rs])
            cell = dict(mean=float(e.mean()), std=float(e.std()), abs_err=abs(e.mean() - row["gt"]),
                        seconds=float(np.mean([r["seconds"] for r in rs])), k=len(e))
            row[k] = cell
            errs.setdefault(k, []).append((cell["abs_err"], [r["seconds"] for r in rs]))
    for k, v in errs.items():
        out["overall"][k] = dict(mean_abs_err=float(np.mean([a for a, _ in v])),
                                 mean_seconds=float(np.mean([s for _, ss in v for s in ss])))
    return out


def table(summary: dict, cols: list, col_name=str, md: bool = False) -> str:
    """Plain-text (or Markdown) table of a ``summarize`` result."""
    head = ["task", "GT"] + [h for c in cols for h in (col_name(c), "|err|")]
    rows = []
    for name, row in summary["tasks"].items():
        cells = [name, f"{row['gt']:.3f}"]
        for c in cols:
            v = row.get(c)
            if v:
                sd = f" ± {v['std']:.3f}" if v["k"] > 1 else ""
                cells += [f"{v['mean']:.3f}{sd}", f"{v['abs_err']:.3f}"]
            else:
                cells += ["", ""]
        rows.append(cells)
    ov = summary["overall"]
    rows.append(["mean |error|", ""] + [h for c in cols for h in ("", f"{ov[c]['mean_abs_err']:.3f}")])
    rows.append(["mean s / estimate", ""] + [h for c in cols for h in (f"{ov[c]['mean_seconds']:.3f}", "")])
    if md:
        esc = lambda r: "| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |"  # noqa: E731
        return "\n".join([esc(head), "|" + "---|" * len(head)] + [esc(r) for r in rows])
    w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i])  # noqa: E731
                              for i, c in enumerate(r))
    return "\n".join([fmt(head), "-" * (sum(w) + 2 * len(w))] + [fmt(r) for r in rows])


def plot(summary: dict, methods: list[str], path: Path) -> None:
    """Estimate (mean ± std over seeds) vs ground truth, one panel per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods), 3.6), squeeze=False)
    gts = [row["gt"] for row in summary["tasks"].values()]
    hi = 1.15 * max(gts + [row[m]["mean"] for row in summary["tasks"].values() for m in methods])
    for ax, m in zip(axes[0], methods):
        rows = summary["tasks"].values()
        ax.errorbar([r["gt"] for r in rows], [r[m]["mean"] for r in rows],
                    yerr=[r[m]["std"] for r in rows], fmt="o", ms=4, capsize=2)
        ax.plot([0, hi], [0, hi], "k--", lw=0.8)
        ax.set(xlim=(0, hi), ylim=(min(0, ax.get_ylim()[0]), hi), xlabel="true MI (nats)",
               title=f"{m}  (mean |err| {summary['overall'][m]['mean_abs_err']:.3f})")
    axes[0][0].set_ylabel("estimated MI (nats)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", choices=["table1", "all"], default=None, help="default table1")
    p.add_argument("--task-names", nargs="+", default=None, help="explicit task ids")
    p.add_argument("--n", type=int, default=None, help="samples per estimate (default 5000)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2")
    p.add_argument("--out", default="outputs/accuracy")
    p.add_argument("--weights", default=None, help="safetensors file (default: shipped)")
    p.add_argument("--quick", action="store_true",
                   help="defaults n=1000, seed 0, Table-1 tasks, and no extras")
    p.add_argument("--extras", action="store_true",
                   help=f"InfoAtlas on Table-1 tasks at n in {EXTRA_NS}")
    a = p.parse_args(argv)
    quick = a.quick
    a.n = a.n or (1000 if quick else 5000)
    a.seeds = a.seeds or ([0] if quick else [0, 1, 2])
    a.tasks = a.tasks or "table1"
    a.extras = a.extras and not quick
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = get_tasks(a.tasks, a.task_names)
    model = load_model(a.weights)
    methods = make_methods(model)
    print(f"{len(tasks)} tasks, n={a.n}, seeds={a.seeds}", file=sys.stderr)
    recs = run_records(tasks, methods, a.n, a.seeds)
    summary = summarize(recs)
    names = list(methods)
    text = table(summary, names)
    md = [f"# MI accuracy on bmi tasks (n={a.n}, seeds={a.seeds}; nats)\n",
          table(summary, names, md=True)]
    result = dict(config=dict(n=a.n, seeds=a.seeds, weights=a.weights, tasks=[t.name for t in tasks]),
                  records=recs, summary=summary)
    t1_recs = [r for r in recs if r["task"] in TABLE1]
    if len(tasks) > len(TABLE1) and t1_recs:  # the paper's eight, from the same run
        t1_sum = summarize(t1_recs)
        text += "\n\nThe paper's Table-1 tasks (same run)\n" + table(t1_sum, names)
        md += ["\n## The paper's Table-1 tasks (same run)\n", table(t1_sum, names, md=True)]
        result["table1_summary"] = t1_sum
    if a.extras:
        t1 = [t for t in tasks if t.name in TABLE1] or get_tasks("table1")
        info = {"InfoAtlas": methods["InfoAtlas"]}
        ext = []
        for n in EXTRA_NS:
            ext += [dict(r, method=f"n={n}") for r in run_records(t1, info, n, a.seeds, log=None)]
        ext_sum = summarize(ext)
        cols = [f"n={n}" for n in EXTRA_NS]
        text += "\n\nInfoAtlas vs sample size\n" + table(ext_sum, cols)
        md += ["\n## InfoAtlas vs sample size\n", table(ext_sum, cols, md=True)]
        result["extras"] = dict(records=ext, summary=ext_sum)
    print(text)
    (out / "results.md").write_text("\n".join(md) + "\n")
    (out / "results.json").write_text(json.dumps(result, indent=1))
    plot(summary, names, out / "estimate_vs_truth.png")
    print(f"wrote {out}/results.json, results.md, estimate_vs_truth.png", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
