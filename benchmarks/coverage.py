"""Empirical coverage of ``mi_interval``'s 90 % and 95 % intervals.

    python -m benchmarks.coverage                 # 50 repetitions per cell
    python -m benchmarks.coverage --quick         # 4 repetitions, two small cells per part

Cells: Gaussians with closed-form MI (``atlas.gaussian_task``: equal canonical correlations,
random rotations) at n = 500 and 2 000, and tasks of the bmi suite (``bmi_tasks``, wide
ones included) at ``--bmi-n`` rows.  Every repetition draws a fresh dataset and computes
``mi_interval`` (``--resamples`` subsamples); the 90 % interval is mi +- z_0.95 * stderr
from the same call.

Columns (nats; "± x" is a standard error over the repetitions):

* ``mean est``: mean point estimate; ``sd est``: its spread over the repetitions;
  ``mean se``: mean reported stderr; ``se/sd``: their ratio (1 = calibrated spread).
* ``width95``: mean width of the 95 % interval.
* ``cov true 90/95``: share of intervals that contain the true MI.
* ``cov E 90/95``: share that contain the estimator's expectation at this n, approximated
  for each repetition by the mean estimate of the *other* repetitions (leave-one-out).

Misses of the true MI with good coverage of E are the estimator's bias, not its variance.
Writes ``results.json``, ``results.md`` and ``coverage.png`` to ``--out``.
"""
from __future__ import annotations

import sys
import time
from statistics import NormalDist

import numpy as np
import torch

from infoatlas_loss.atlas import gaussian_task
from infoatlas_loss.uncertainty import mi_interval

from .bmi_tasks import TASKS
from .common import base_parser, env_info, fmt_table, log, pyplot, setup, write_outputs

GAUSSIANS = ((1, 0.5), (3, 1.0), (5, 1.0))
"""(dimension of X and of Y, MI in nats) of the Gaussian cells."""

BMI_TASKS = ("multinormal-dense-5-5-0.5", "student-identity-3-3-3",
             "half_cube-multinormal-sparse-5-5-2-2.0", "1v1-additive-0.1", "1v1-bimodal-0.75",
             "multinormal-dense-25-25-0.5", "multinormal-sparse-25-25-2-2.0",
             "spiral-multinormal-sparse-25-25-2-2.0")


def _share(hit: np.ndarray) -> tuple[float, float]:
    """Coverage and its binomial standard error."""
    p = float(hit.mean())
    return p, float(np.sqrt(p * (1 - p) / hit.size))


def score_cell(name: str, n: int, dim: int, true_mi: float, pairs, net, resamples: int) -> dict:
    """Intervals on every (x, y) of ``pairs``; coverage of the true MI and of E[estimate]."""
    t0 = time.perf_counter()
    res = [mi_interval(x, y, model=net, num_resamples=resamples, seed=rep)
           for rep, (x, y) in enumerate(pairs)]
    est = np.array([r.mi for r in res])
    se = np.array([r.stderr for r in res])
    reps = est.size
    loo = (est.sum() - est) / (reps - 1)  # leave-one-out mean: E[estimate] at this n
    row = dict(cell=name, n=n, dim=dim, true_mi=true_mi, reps=reps, estimate=res[0].estimate,
               mean_est=float(est.mean()), mean_est_se=float(est.std(ddof=1) / np.sqrt(reps)),
               sd_est=float(est.std(ddof=1)), mean_se=float(se.mean()),
               seconds=time.perf_counter() - t0)
    row["se_over_sd"] = row["mean_se"] / row["sd_est"] if row["sd_est"] > 0 else float("nan")
    for level in (0.9, 0.95):
        half = NormalDist().inv_cdf(0.5 + level / 2) * se
        key = int(round(100 * level))
        row[f"width{key}"] = float(2 * half.mean())
        row[f"cov_true{key}"], row[f"cov_true{key}_se"] = _share(np.abs(est - true_mi) <= half)
        row[f"cov_E{key}"], row[f"cov_E{key}_se"] = _share(np.abs(est - loo) <= half)
    log(f"{name} n={n}: cover true {row['cov_true95']:.2f}, E {row['cov_E95']:.2f}, "
        f"se/sd {row['se_over_sd']:.2f} ({row['seconds']:.0f} s)")
    return row


def gaussian_pairs(n: int, dim: int, mi: float, reps: int, seed: int):
    x, y, _ = gaussian_task(reps, n, dim, dim, mi, generator=torch.Generator().manual_seed(seed))
    return list(zip(x, y))


def table(rows: list[dict], md: bool) -> str:
    pm = lambda r, k: f"{r[k]:.2f} ± {r[k + '_se']:.2f}"  # noqa: E731
    head = ["cell", "n", "dim", "estimate", "true MI", "mean est", "sd est", "mean se", "se/sd",
            "width95", "cov true 90", "cov true 95", "cov E 90", "cov E 95"]
    body = [[r["cell"], r["n"], r["dim"], r["estimate"], f"{r['true_mi']:.3f}",
             f"{r['mean_est']:.3f} ± {r['mean_est_se']:.3f}", f"{r['sd_est']:.3f}",
             f"{r['mean_se']:.3f}", f"{r['se_over_sd']:.2f}", f"{r['width95']:.3f}",
             pm(r, "cov_true90"), pm(r, "cov_true95"), pm(r, "cov_E90"), pm(r, "cov_E95")]
            for r in rows]
    return fmt_table(head, body, md=md)


def plot(rows: list[dict], path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(rows)), 4))
    pos = np.arange(len(rows))
    for off, key, label in ((-0.18, "cov_true95", "true MI"), (0.18, "cov_E95", "E[estimate]")):
        ax.errorbar(pos + off, [r[key] for r in rows], yerr=[r[key + "_se"] for r in rows],
                    fmt="o", capsize=3, label=f"covers {label}")
    ax.axhline(0.95, color="k", lw=0.8, ls="--")
    ax.set_xticks(pos, [f"{r['cell']} n={r['n']}" for r in rows], rotation=60, ha="right",
                  fontsize=7)
    ax.set_ylabel("95 % interval coverage")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = base_parser("coverage", __doc__, "4 repetitions, two small cells per part")
    p.add_argument("--reps", type=int, default=50, help="datasets per cell")
    p.add_argument("--resamples", type=int, default=32, help="mi_interval num_resamples")
    p.add_argument("--ns", type=int, nargs="+", default=[500, 2000], help="rows, Gaussian cells")
    p.add_argument("--bmi-n", type=int, default=1000, help="rows, bmi cells")
    p.add_argument("--tasks", nargs="*", default=list(BMI_TASKS), help="bmi task ids")
    p.set_defaults(threads=1)
    a = p.parse_args(argv)
    net = setup(a)
    gaussians = GAUSSIANS
    if a.quick:
        a.reps, a.resamples, a.ns, a.bmi_n = 4, 8, [200], 200
        gaussians, a.tasks = GAUSSIANS[:2], [BMI_TASKS[0], BMI_TASKS[-1]]
    t0 = time.perf_counter()
    rows = []
    for ci, (dim, mi) in enumerate(gaussians):
        for n in a.ns:
            rows.append(score_cell(f"gaussian-{dim}x{dim}-{mi:g}", n, dim, mi,
                                   gaussian_pairs(n, dim, mi, a.reps, seed=1000 * ci + n),
                                   net, a.resamples))
    for ti, name in enumerate(a.tasks):
        task = TASKS[name]
        pairs = [task.sample(a.bmi_n, np.random.default_rng([ti, rep])) for rep in range(a.reps)]
        rows.append(score_cell(name, a.bmi_n, max(task.dim_x, task.dim_y), task.mi, pairs, net,
                               a.resamples))
    seconds = time.perf_counter() - t0
    cmd = "python -m benchmarks.coverage " + " ".join(sys.argv[1:] if argv is None else argv)
    md = (f"# Coverage of mi_interval ({a.reps} repetitions per cell, {a.resamples} subsamples)\n\n"
          f"`{cmd.strip()}`\n\n{table(rows, md=True)}\n")
    print(table(rows, md=False))
    result = dict(rows=rows, reps=a.reps, resamples=a.resamples, seconds=seconds, command=cmd,
                  env=env_info())
    out = write_outputs(a.out, "results", result, md)
    plot(rows, out / "coverage.png")
    log(f"{seconds:.0f} s -> {out}")
    return result


if __name__ == "__main__":
    main()
