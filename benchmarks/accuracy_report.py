"""Tables, group means and the estimate-vs-truth plot of ``benchmarks.accuracy`` (nats).

Summaries are built from the records ``accuracy.run_records`` writes: one per (task, seed,
n, method) with the estimate and its seconds.  The published anchor rows are labelled as
published: they come from the cited paper's own runs, not from this repository.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .bmi_tasks import GROUPS, TABLE1, TASKS, WIDE
from .common import fmt_table


GROUP_LABELS = {"all": "all", "narrow": "≤ 5 dims", "wide": "wide (25–50 dims)",
                "table1": "Table-1"}

PUBLISHED = {
    "Alice-Base": (0.092, 0.063, 0.060),
    "MINDE": (0.353, 0.070, 0.065),
    "MINE": (0.248, 0.117, 0.108),
    "InfoNCE": (0.887, 0.123, 0.083),
    "CCA": (0.195, 0.192, 0.181),
    "KSG": (0.288, 0.240, 0.219),
}
"""Mean |error| (nats) over bmi's 40 tasks at n = 1000 / 5000 / 10000 as published by
Franzese, Rossi & Michiardi (2026, "Alice") from their own runs; not measured here."""
PUBLISHED_NS = (1000, 5000, 10000)
PUBLISHED_SOURCE = "Franzese, Rossi, Michiardi 2026 (Alice), their own runs"


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
                                 mean_seconds=float(np.mean([s for _, ss in v for s in ss])),
                                 tasks=len(v))
    return out


def group_summary(summary: dict, methods: list[str], task_names: list[str]) -> dict:
    """{group: {"tasks": count, method: {mean_abs_err, mean_seconds, tasks}}} over the groups
    of ``GROUPS`` that meet the run's tasks; a method's ``tasks`` counts those it ran on."""
    out = {}
    for g, names in GROUPS.items():
        names = [n for n in names if n in task_names]
        if not names or (g == "table1" and len(names) < len(TABLE1)):
            continue
        row: dict = {"tasks": len(names)}
        for m in methods:
            cells = [summary["tasks"][n][m] for n in names if m in summary["tasks"].get(n, {})]
            if cells:
                row[m] = dict(mean_abs_err=float(np.mean([c["abs_err"] for c in cells])),
                              mean_seconds=float(np.mean([c["seconds"] for c in cells])),
                              tasks=len(cells))
        out[g] = row
    return out


def table(summary: dict, cols: list, col_name=str, md: bool = False) -> str:
    """Per-task table of a ``summarize`` result: GT, each column's mean ± std and |err|."""
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
                cells += ["skipped", ""]
        rows.append(cells)
    ov = summary["overall"]
    ntask = len(summary["tasks"])
    cnt = lambda c: "" if ov[c]["tasks"] == ntask else f" ({ov[c]['tasks']}/{ntask})"  # noqa: E731
    rows.append(["mean |error|", ""] + [h for c in cols if c in ov
                                         for h in ("", f"{ov[c]['mean_abs_err']:.3f}{cnt(c)}")])
    rows.append(["mean s / estimate", ""] + [h for c in cols if c in ov
                                              for h in (f"{ov[c]['mean_seconds']:.3f}", "")])
    return fmt_table(head, rows, md)


def group_table(groups: dict, methods: list[str], md: bool = False) -> str:
    """Mean |error| and mean seconds per estimate of each method over each task group."""
    rows = []
    for what, key, fmt in (("mean |error|", "mean_abs_err", "{:.3f}"),
                           ("s / estimate", "mean_seconds", "{:.3g}")):
        for g, row in groups.items():
            cells = [f"{what}: {GROUP_LABELS[g]}, {row['tasks']} tasks"]
            for m in methods:
                c = row.get(m)
                miss = "" if c is None or c["tasks"] == row["tasks"] else f" ({c['tasks']}/{row['tasks']})"
                cells.append("skipped" if c is None else fmt.format(c[key]) + miss)
            rows.append(cells)
    return fmt_table([""] + methods, rows, md)


def published_table(by_n: dict, methods: list[str], md: bool = False) -> str:
    """The published anchors (labelled) and, for a 40-task run, this run's means at the same n."""
    rows = [[f"{k} (published)", *(f"{v:.3f}" for v in vals), PUBLISHED_SOURCE]
            for k, vals in PUBLISHED.items()]
    full = {n: g["all"] for n, g in by_n.items() if g.get("all", {}).get("tasks") == len(TASKS)}
    for m in methods:
        cells = []
        for n in PUBLISHED_NS:
            c = full.get(n, {}).get(m)
            cells.append("" if c is None else f"{c['mean_abs_err']:.3f}"
                         + ("" if c["tasks"] == len(TASKS) else f" ({c['tasks']}/{len(TASKS)})"))
        if any(cells):
            rows.append([f"{m} (this run)", *cells, "this run, same samples for every method"])
    return fmt_table(["estimator", *(f"n={n}" for n in PUBLISHED_NS), "source"], rows, md)


def plot(by_n: dict, methods: list[str], path: Path) -> None:
    """Estimate (mean over seeds) vs ground truth, one panel per n, one marker per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = dict(zip(methods, "os^Dvx"))
    fig, axes = plt.subplots(1, len(by_n), figsize=(4.4 * len(by_n), 4.2), squeeze=False)
    for ax, (n, summ) in zip(axes[0], by_n.items()):
        rows = list(summ["tasks"].values())
        hi = 1.1 * max([r["gt"] for r in rows] + [r[m]["mean"] for r in rows for m in methods if m in r])
        for color, m in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], methods):
            label = f"{m} ({summ['overall'][m]['mean_abs_err']:.3f})" if m in summ["overall"] else None
            for wide in (False, True):  # wide tasks filled, the others hollow
                pts = [(r["gt"], r[m]["mean"], r[m]["std"]) for name, r in summ["tasks"].items()
                       if m in r and (name in WIDE) == wide]
                if not pts:
                    continue
                gt, mean, sd = map(np.array, zip(*pts))
                ax.errorbar(gt, mean, yerr=sd, fmt=markers.get(m, "o"), ms=4, capsize=2, alpha=0.75,
                            color=color, mfc=color if wide else "none",
                            label=label)
                label = None
        ax.plot([0, hi], [0, hi], "k--", lw=0.8)
        ax.set(xlim=(0, hi), ylim=(min(0, ax.get_ylim()[0]), hi), xlabel="true MI (nats)",
               title=f"n = {n}: {len(rows)} tasks (filled: wide)")
        ax.legend(title="method (mean |error|)", fontsize=8, title_fontsize=8, loc="upper left")
    axes[0][0].set_ylabel("estimated MI (nats, mean over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
