"""Pairwise MI matrix: ``mi_matrix`` vs scikit-learn's ``mutual_info_regression`` per column.

    python -m benchmarks.mi_matrix            # p = 20 / 50 / 100, n = 5 000
    python -m benchmarks.mi_matrix --quick    # p = 6, n = 300 (seconds)

Data: block-correlated Gaussians, blocks of 5 equicorrelated columns with correlation
0.3 / 0.5 / 0.7 / 0.9 (cycling over blocks), independent across blocks, so every pair's
MI is -log(1 - rho^2) / 2 nats (0 across blocks).  The ``monotone`` table applies exp and
x^3 to every other column (MI unchanged).  ``mi_matrix`` scores all rows or a ``max_rows``
subsample; scikit-learn is called once per target column (the usual loop), timed on a
subset of targets and extrapolated to all p.  Also: where the time of one pair goes.
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np
import torch

from infoatlas_loss.matrix import mi_matrix

from .common import base_parser, env_info, fmt_table, log, pyplot, setup, write_outputs

RHOS = (0.3, 0.5, 0.7, 0.9)
BLOCK = 5


def block_table(n: int, p: int, seed: int, monotone: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(n, p) samples and the (p, p) true pairwise MI in nats (NaN diagonal)."""
    r = np.random.default_rng(seed)
    block = np.arange(p) // BLOCK
    rho = np.array(RHOS)[block % len(RHOS)]  # (p,) correlation inside each column's block
    shared = r.standard_normal((n, block.max() + 1))[:, block]  # (n, p)
    x = np.sqrt(rho) * shared + np.sqrt(1 - rho) * r.standard_normal((n, p))
    if monotone:
        x[:, 1::4], x[:, 3::4] = np.exp(x[:, 1::4]), x[:, 3::4] ** 3
    same = block[:, None] == block[None, :]
    truth = np.where(same, -0.5 * np.log1p(-rho[:, None] ** 2), 0.0)
    np.fill_diagonal(truth, np.nan)
    return x, truth


def errors(est: np.ndarray, truth: np.ndarray) -> dict:
    """Mean absolute error (nats) over dependent and independent pairs where est is known."""
    ok = np.isfinite(est) & np.isfinite(truth)
    dep, ind = ok & (truth > 0), ok & (truth == 0)
    return dict(mae_dependent=float(np.abs(est - truth)[dep].mean()),
                mae_independent=float(np.abs(est[ind]).mean()),
                bias_dependent=float((est - truth)[dep].mean()), pairs=int(ok.sum() // 2))


def sklearn_matrix(x: np.ndarray, targets: list[int], seed: int) -> tuple[np.ndarray, float]:
    """``mutual_info_regression(X, X[:, j])`` for the target columns j: the (p, p) matrix
    with those columns (and rows) filled, averaged over both directions where both were
    computed, and the wall and CPU seconds per call."""
    from sklearn.feature_selection import mutual_info_regression

    p = x.shape[1]
    m = np.full((p, p), np.nan)
    t0, c0 = time.perf_counter(), time.process_time()
    for j in targets:
        m[:, j] = mutual_info_regression(x, x[:, j], random_state=seed)
    calls = len(targets)
    per_call = ((time.perf_counter() - t0) / calls, (time.process_time() - c0) / calls)
    np.fill_diagonal(m, np.nan)
    both = np.isfinite(m) & np.isfinite(m.T)
    sym = np.where(both, (m + m.T) / 2, np.where(np.isfinite(m), m, m.T))
    return sym, per_call


def cost_breakdown(model, n: int, pairs: int = 32) -> dict:
    """Milliseconds per pair of one-column variables, and the part of it that reads one
    variable only: normal scores, the marginal path's input MLP and summary block, and the
    key / value projections of the variable's tokens in the cross blocks (x_to_y reads y's
    tokens, y_to_x reads x's).  Timed on the estimator's own pieces, best of 3."""
    from infoatlas_loss.counter_rng import split_seeds
    from infoatlas_loss.estimator import dataset_seeds, estimate_batch, prepare
    from infoatlas_loss.softrank import normal_scores

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(pairs, n, 1, generator=g), torch.randn(pairs, n, 1, generator=g)
    seeds = split_seeds(dataset_seeds(1, g), pairs)
    zx, zy, _, _ = prepare(x, y, model.config.max_dim, seeds=seeds)  # (B, n, max_dim) each
    lat = model.x_latents.unsqueeze(0).expand(pairs, -1, -1)

    def ms(f, reps=3):
        best = math.inf
        for _ in range(reps):
            t0 = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t0)
        return 1e3 * best / pairs

    def one_variable(z, embed, summary, cross):
        h = embed(z)
        return summary(lat, h), cross.attn.to_kv(cross.attn.norm_kv(h))

    with torch.no_grad():
        total = ms(lambda: estimate_batch(model, x, y, seeds=seeds))
        scores = 2 * ms(lambda: normal_scores(x))
        marginal = ms(lambda: one_variable(zx, model.x_in, model.x_summary, model.y_to_x)) + ms(
            lambda: one_variable(zy, model.y_in, model.y_summary, model.x_to_y))
    return dict(n=n, total_ms=total, normal_scores_ms=scores, marginal_ms=marginal,
                per_variable_share=(scores + marginal) / total)


def time_ours(model, x, truth, max_rows, threads, seed) -> dict:
    torch.set_num_threads(threads)
    c0 = time.process_time()
    res = mi_matrix(x, model=model, max_rows=max_rows, seed=seed)
    return dict(method="mi_matrix", p=x.shape[1], n=x.shape[0], rows=res.n, threads=threads,
                seconds=res.seconds, cpu_seconds=time.process_time() - c0,
                **errors(res.mi, truth))


def run(model, a) -> dict:
    rows, acc = [], []
    for p in a.ps:
        x, truth = block_table(a.n, p, a.seed)
        for max_rows in [None, *a.max_rows]:
            for threads in sorted({a.threads, *a.also_threads}):
                if threads != a.threads and p != max(a.ps):
                    continue  # other thread counts at the largest table only
                rows.append(time_ours(model, x, truth, max_rows, threads, a.seed))
                log(rows[-1])
        torch.set_num_threads(a.threads)
        step = max(1, p // a.sklearn_targets)
        targets = list(range(0, p, step))[:a.sklearn_targets]
        est, per_call = sklearn_matrix(x, targets, a.seed)
        rows.append(dict(method="sklearn loop", p=p, n=a.n, rows=a.n, threads=a.threads,
                         seconds=per_call[0] * p, cpu_seconds=per_call[1] * p,
                         targets_timed=len(targets), **errors(est, truth)))
        log(rows[-1])
    x, truth = block_table(a.n, min(a.ps), a.seed + 1, monotone=True)
    ours = mi_matrix(x, model=model, seed=a.seed)
    est, _ = sklearn_matrix(x, list(range(x.shape[1])), a.seed)
    acc = [dict(method="mi_matrix", **errors(ours.mi, truth)),
           dict(method="sklearn loop", **errors(est, truth))]
    breakdown = [cost_breakdown(model, n) for n in sorted({a.n, *a.max_rows})]
    return dict(timing=rows, monotone=acc, breakdown=breakdown, heatmap=(ours, truth))


def tables(res: dict, a) -> str:
    head = ["method", "p", "n", "rows scored", "threads", "seconds", "CPU seconds", "MAE dependent",
            "MAE independent", "bias dependent", "pairs scored"]
    t = [[r["method"], r["p"], r["n"], r["rows"], r["threads"],
          f"{r['seconds']:.1f}" + (f" (from {r['targets_timed']} of {r['p']} targets)"
                                   if "targets_timed" in r else ""),
          f"{r['cpu_seconds']:.1f}", f"{r['mae_dependent']:.3f}", f"{r['mae_independent']:.3f}",
          f"{r['bias_dependent']:+.3f}", r["pairs"]] for r in res["timing"]]
    m = [[r["method"], f"{r['mae_dependent']:.3f}", f"{r['mae_independent']:.3f}",
          f"{r['bias_dependent']:+.3f}", r["pairs"]] for r in res["monotone"]]
    b = [[r["n"], f"{r['total_ms']:.2f}", f"{r['normal_scores_ms']:.2f}",
          f"{r['marginal_ms']:.2f}", f"{100 * r['per_variable_share']:.0f}%"]
         for r in res["breakdown"]]
    return "\n\n".join([
        "(a) wall and CPU time (s; CPU time sums the threads) and error (nats) on "
        "block-correlated Gaussians",
        fmt_table(head, t, md=True),
        f"(b) monotone-transformed table, p = {min(a.ps)}, n = {a.n}, all rows",
        fmt_table(["method", "MAE dependent", "MAE independent", "bias dependent",
                   "pairs scored"], m, md=True),
        "(c) ms per pair (one-column variables, 32 pairs per batch): total, and the parts "
        "that depend on one variable only",
        fmt_table(["n", "total", "normal scores (x and y)", "marginal path, per-variable part "
                   "(x and y)", "per-variable share"], b, md=True)])


def plot(res: dict, path) -> None:
    from infoatlas_loss.plotting import plot_mi_matrix

    plt = pyplot()
    ours, truth = res["heatmap"]
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5))
    plot_mi_matrix(ours, ax=axes[0], annotate=False, vmax=float(np.nanmax(truth)),
                   title=f"mi_matrix, n = {ours.n} (monotone-transformed table)")
    axes[1].imshow(truth, vmin=0, vmax=float(np.nanmax(truth)))
    axes[1].set_title("true pairwise MI (nats)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> dict:
    p = base_parser("mi_matrix", __doc__, "p = 6, n = 300, one max_rows setting")
    p.set_defaults(threads=1)
    p.add_argument("--ps", type=int, nargs="+", default=[20, 50, 100], help="numbers of columns")
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--max-rows", type=int, nargs="*", default=[1000, 500])
    p.add_argument("--also-threads", type=int, nargs="*", default=[2],
                   help="thread counts also timed at the largest p")
    p.add_argument("--sklearn-targets", type=int, default=5, help="target columns timed")
    p.add_argument("--seed", type=int, default=0)
    argv = sys.argv[1:] if argv is None else argv
    a = p.parse_args(argv)
    if a.quick:
        a.ps, a.n, a.max_rows, a.also_threads, a.sklearn_targets = [6], 300, [100], [], 2
    model = setup(a)
    t0, load = time.perf_counter(), os.getloadavg()[0]
    res = run(model, a)
    md = tables(res, a)
    print(md)
    cmd = "python -m benchmarks.mi_matrix" + "".join(f" {s}" for s in argv)
    out = write_outputs(a.out, "results", dict(
        timing=res["timing"], monotone=res["monotone"], breakdown=res["breakdown"],
        env=dict(env_info(), load_average=load), wall_seconds=time.perf_counter() - t0),
        f"# Pairwise MI matrix (nats, seconds)\n\n`{cmd}`\n\n"
        f"{os.cpu_count()} CPUs, 1-minute load average {load:.1f} at the start\n\n{md}")
    plot(res, out / "heatmap.png")
    return res


if __name__ == "__main__":
    main()
