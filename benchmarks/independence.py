"""High-dimensional independence testing (paper Sec. 5.2, Fig. 3 / App. A.3, Fig. 7).

    python -m benchmarks.independence --quick
    python -m benchmarks.independence --dims 16 64 128 --mine-slices 4

Three settings after Goldfeld et al. (k-sliced MI, 2022, and the SMI paper of Goldfeld &
Greenewald, 2021), all with X, Z ~ N(0, I_d) i.i.d.:

(a) one feature (linear): Y = (<theta, X> 1_d + Z) / sqrt(2), theta ~ Unif(S^{d-1});
(b) two features: Y = ([<theta1, X> 1_{ceil(d/2)}, <theta2, X> 1_{floor(d/2)}] + Z) / sqrt(2),
    theta1, theta2 independent ~ Unif(S^{d-1}) (one shared feature per half of Y);
(c) independent coordinates: Y = (X + Z) / sqrt(2) (every pair (X_i, Y_i) dependent).

Our copy of the paper lost the formulas of App. A.3 (only names and "X, Z i.i.d." survive);
the models above are our reconstruction of the Goldfeld et al. settings, written so every
coordinate of Y has unit variance.  The *independent* population draws Y from exactly the
same model and pairs it with a fresh, independent copy of X, so both populations share
their marginals and differ only in dependence.

For every (setting, d, n) there are ``--trials`` dependent and ``--trials`` independent
datasets (paper: 10 each).  Every method scores a dataset by its k-sliced MI (nats) on the
same ``--num-slices`` random k-dim slices (k = the model's max_dim; the same projections
for all datasets of a cell): InfoAtlas in one batched pass, KSG (k=10 neighbours) in a
loop, and optionally MINE on the first ``--mine-slices`` slices.  The metric is the area
under the precision-recall curve (``sklearn.metrics.average_precision_score``) with the
dependent datasets as positives; ``--repeats`` > 1 averages it over fresh populations.

Writes ``independence.json``, ``independence.md`` and ``independence.png``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from tqdm import tqdm

from .baselines_neural import train_estimator
from .common import (env_info, fmt_table, infoatlas_on_slices, ksg_on_slices, base_parser, log,
                     pyplot, random_slices, setup, write_outputs)

SETTINGS = ("one_feature", "two_features", "indep_coords")


def unit_vector(d: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform point on the unit sphere S^{d-1}, shape (d,)."""
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


def goldfeld_pair(setting: str, n: int, d: int, dependent: bool, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One dataset: x (n, d), y (n, d) of ``setting`` (see the module docstring).

    With ``dependent=False`` y is drawn from the same model but x is an independent copy,
    so x and y are independent with the same marginals as in the dependent population.
    """
    x = rng.standard_normal((n, d))
    z = rng.standard_normal((n, d))
    if setting == "one_feature":
        signal = np.repeat((x @ unit_vector(d, rng))[:, None], d, axis=1)
    elif setting == "two_features":
        h = (d + 1) // 2
        f1, f2 = x @ unit_vector(d, rng), x @ unit_vector(d, rng)
        signal = np.concatenate([np.repeat(f1[:, None], h, 1), np.repeat(f2[:, None], d - h, 1)], 1)
    elif setting == "indep_coords":
        signal = x
    else:
        raise ValueError(f"unknown setting {setting!r}; choose from {SETTINGS}")
    y = (signal + z) / np.sqrt(2.0)
    if not dependent:
        x = rng.standard_normal((n, d))
    return x, y


def population(setting: str, n: int, d: int, trials: int, seed: int):
    """``trials`` dependent then ``trials`` independent datasets: (2T, n, d) twice + labels."""
    rng = np.random.default_rng(seed)
    pairs = [goldfeld_pair(setting, n, d, i < trials, rng) for i in range(2 * trials)]
    x = torch.from_numpy(np.stack([p[0] for p in pairs])).float()
    y = torch.from_numpy(np.stack([p[1] for p in pairs])).float()
    return x, y, np.r_[np.ones(trials), np.zeros(trials)]


def run_cell(model, setting: str, d: int, n: int, a, seed: int) -> dict:
    """Scores (nats) and AUPRC of every method for one (setting, d, n, repeat)."""
    x, y, labels = population(setting, n, d, a.trials, seed)
    g = torch.Generator().manual_seed(seed)
    xs, ys = random_slices(x, y, a.num_slices, model.config.max_dim, g)
    out = {}
    t0 = time.perf_counter()
    scores = {"InfoAtlas": infoatlas_on_slices(model, xs, ys, seed=seed).mean(1)}
    t1 = time.perf_counter()
    scores["KSG"] = ksg_on_slices(xs, ys).mean(1)
    t2 = time.perf_counter()
    secs = {"InfoAtlas": t1 - t0, "KSG": t2 - t1}
    if a.mine_slices:
        m = min(a.mine_slices, xs.shape[1])
        scores["MINE"] = np.array([np.mean([
            train_estimator(xs[i, j].numpy(), ys[i, j].numpy(), "mine", epochs=a.mine_epochs,
                            patience=a.mine_patience, seed=seed).mi for j in range(m)])
            for i in range(len(xs))])
        secs["MINE"] = time.perf_counter() - t2
    for k, s in scores.items():
        out[k] = dict(auprc=float(average_precision_score(labels, s)), seconds=secs[k],
                      dep_mean=float(s[labels == 1].mean()), ind_mean=float(s[labels == 0].mean()))
    return out


def run(model, a) -> list[dict]:
    rows = []
    cells = [(s, d, n) for s in a.settings for d in a.dims for n in a.ns]
    for s, d, n in tqdm(cells, desc="cells"):
        reps = [run_cell(model, s, d, n, a, seed=a.seed + 7919 * r + 31 * n + d)
                for r in range(a.repeats)]
        for m in reps[0]:
            rows.append(dict(setting=s, dim=d, n=n, method=m,
                             auprc=float(np.mean([r[m]["auprc"] for r in reps])),
                             auprc_std=float(np.std([r[m]["auprc"] for r in reps])),
                             dep_mean=float(np.mean([r[m]["dep_mean"] for r in reps])),
                             ind_mean=float(np.mean([r[m]["ind_mean"] for r in reps])),
                             seconds=float(np.mean([r[m]["seconds"] for r in reps]))))
    return rows


def table(rows: list[dict], md: bool = False) -> str:
    meths = list(dict.fromkeys(r["method"] for r in rows))
    key = {(r["setting"], r["dim"], r["n"], r["method"]): r for r in rows}
    cells = list(dict.fromkeys((r["setting"], r["dim"], r["n"]) for r in rows))
    body = [[s, d, n] + [f"{key[s, d, n, m]['auprc']:.3f} ({key[s, d, n, m]['dep_mean']:.3f}/"
                         f"{key[s, d, n, m]['ind_mean']:.3f})" for m in meths] for s, d, n in cells]
    return fmt_table(["setting", "dim", "n"] + [f"{m} AUPRC (dep/ind MI)" for m in meths], body, md)


def plot(rows: list[dict], path) -> None:
    """AUPRC vs n: one panel per (dim, setting), one line per method (paper Fig. 3)."""
    plt = pyplot()
    dims = sorted({r["dim"] for r in rows})
    sets = list(dict.fromkeys(r["setting"] for r in rows))
    fig, ax = plt.subplots(len(dims), len(sets), figsize=(3.6 * len(sets), 3 * len(dims)),
                           squeeze=False)
    for i, d in enumerate(dims):
        for j, s in enumerate(sets):
            for m in dict.fromkeys(r["method"] for r in rows):
                rs = sorted((r for r in rows if r["dim"] == d and r["setting"] == s and r["method"] == m),
                            key=lambda r: r["n"])
                ax[i][j].plot([r["n"] for r in rs], [r["auprc"] for r in rs], "o-", label=m)
            ns = sorted({r["n"] for r in rows})
            ax[i][j].set(title=f"{s}, d={d}", xlabel="n", ylabel="AUPRC", ylim=(0.4, 1.02),
                         xscale="log")
            ax[i][j].minorticks_off()
            ax[i][j].set_xticks(ns, [str(n) for n in ns])
    ax[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse(argv) -> argparse.Namespace:
    p = base_parser("independence", __doc__, "d=64, n in {100, 500}, 16 slices")
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--dims", type=int, nargs="+", default=None, help="default 16 64")
    p.add_argument("--ns", type=int, nargs="+", default=None, help="default 50 100 200 500 1000")
    p.add_argument("--trials", type=int, default=10, help="datasets per population")
    p.add_argument("--repeats", type=int, default=1, help="AUPRC averaged over repeats")
    p.add_argument("--num-slices", type=int, default=None, help="default 64, quick 16")
    p.add_argument("--mine-slices", type=int, default=0, help="MINE on this many slices (0: off)")
    p.add_argument("--mine-epochs", type=int, default=300)
    p.add_argument("--mine-patience", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    a.dims = a.dims or ([64] if a.quick else [16, 64])
    a.ns = a.ns or ([100, 500] if a.quick else [50, 100, 200, 500, 1000])
    a.num_slices = a.num_slices or (16 if a.quick else 64)
    if a.quick:
        a.mine_slices = 0
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    model = setup(a)
    log(f"independence: {a.settings} dims {a.dims} ns {a.ns}, {a.trials}+{a.trials} datasets, "
        f"{a.num_slices} slices of k={model.config.max_dim}")
    rows = run(model, a)
    print(table(rows))
    md = (f"# Independence testing: AUPRC of dependent vs independent populations\n\n"
          f"{a.trials}+{a.trials} datasets per cell, {a.num_slices} slices of k="
          f"{model.config.max_dim}, repeats={a.repeats}; in brackets the mean sliced MI (nats) "
          f"of the dependent / independent datasets.\n\n" + table(rows, md=True))
    res = dict(config=vars(a), env=env_info(), rows=rows)
    out = write_outputs(a.out, "independence", res, md)
    plot(rows, out / "independence.png")
    log(f"wrote {out}/independence.json, independence.md, independence.png")
    return res


if __name__ == "__main__":
    main()
