"""Self-consistency under added noise (paper Sec. 5.2, CLIP experiment, Fig. 4), on digits.

    python -m benchmarks.noise_consistency --quick
    python -m benchmarks.noise_consistency --sigmas 0.1 0.2 0.5 1 2 3 --repeats 20

Data: scikit-learn's digits (1797 images of 8 x 8 = 64 pixels, shipped inside sklearn),
every pixel z-scored (always-zero pixels stay 0).  For each noise level sigma the pair is
(X, X + sigma * eps), eps ~ N(0, I_64), so I(X; Y) falls strictly as sigma grows and
every sensible estimate should too.  Both variables are 64-D, so the score is k-sliced MI
(nats): ``--num-slices`` random k-dim projections (k = the model's max_dim) of x and of y.

Each of ``--repeats`` repeats draws fresh noise for every sigma and fresh slices (shared by
the sigmas of that repeat, so within a repeat only the noise level differs).  InfoAtlas
scores all sigmas of a repeat in one batched pass; KSG (k=10) runs on the same slices in
a loop, with its wall time.  Reported per sigma: mean +- std over repeats; whether the
means fall strictly; whether adjacent error bars separate (mean_i - std_i >
mean_{i+1} + std_{i+1}); and in how many repeats the whole curve falls strictly.

Writes ``noise_consistency.json``, ``noise_consistency.md`` and ``noise_consistency.png``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tqdm import tqdm

from .common import (env_info, fmt_table, infoatlas_on_slices, ksg_on_slices, base_parser, log,
                     pyplot, random_slices, setup, write_outputs)


def digits() -> np.ndarray:
    """sklearn digits, (1797, 64), each pixel z-scored (constant pixels -> 0)."""
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float64)
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)


def noisy_batch(x: np.ndarray, sigmas, rng: np.random.Generator):
    """x (n, d), sigmas (L,) -> X (L, n, d) (x repeated) and Y (L, n, d) = x + sigma eps."""
    ys = np.stack([x + s * rng.standard_normal(x.shape) for s in sigmas])
    xs = np.broadcast_to(x, ys.shape)
    return torch.from_numpy(np.ascontiguousarray(xs)).float(), torch.from_numpy(ys).float()


def run(model, a) -> dict:
    """{method: (repeats, L) sliced-MI matrix in nats, and seconds per repeat}."""
    x = digits()
    if a.n and a.n < len(x):
        x = x[np.random.default_rng(a.seed).permutation(len(x))[:a.n]]
    est = {"InfoAtlas": [], "KSG": []} if a.ksg else {"InfoAtlas": []}
    secs = {m: [] for m in est}
    for r in tqdm(range(a.repeats), desc="repeats"):
        rng = np.random.default_rng([a.seed, r])
        xb, yb = noisy_batch(x, a.sigmas, rng)
        xs, ys = random_slices(xb, yb, a.num_slices, model.config.max_dim,
                               torch.Generator().manual_seed(1000 * a.seed + r))
        t0 = time.perf_counter()
        est["InfoAtlas"].append(infoatlas_on_slices(model, xs, ys, seed=r).mean(1))
        secs["InfoAtlas"].append(time.perf_counter() - t0)
        if a.ksg:
            t0 = time.perf_counter()
            est["KSG"].append(ksg_on_slices(xs, ys).mean(1))
            secs["KSG"].append(time.perf_counter() - t0)
    return {m: dict(values=np.array(v), seconds_per_repeat=float(np.mean(secs[m])))
            for m, v in est.items()}


def summarize(values: np.ndarray, sigmas) -> dict:
    """values (repeats, L) -> per-sigma mean/std and the monotonicity checks."""
    mu, sd = values.mean(0), values.std(0)
    return dict(sigmas=list(map(float, sigmas)), mean=mu.tolist(), std=sd.tolist(),
                strictly_decreasing=bool(np.all(np.diff(mu) < 0)),
                bars_separate=[bool(mu[i] - sd[i] > mu[i + 1] + sd[i + 1]) for i in range(len(mu) - 1)],
                all_bars_separate=bool(all(mu[i] - sd[i] > mu[i + 1] + sd[i + 1]
                                           for i in range(len(mu) - 1))),
                monotone_repeats=int(np.sum(np.all(np.diff(values, axis=1) < 0, axis=1))),
                repeats=int(len(values)))


def table(summ: dict, md: bool = False) -> str:
    meths = list(summ)
    sig = summ[meths[0]]["sigmas"]
    rows = [[f"{s:g}"] + [f"{summ[m]['mean'][i]:.4f} ± {summ[m]['std'][i]:.4f}" for m in meths]
            for i, s in enumerate(sig)]
    rows.append(["strictly decreasing means"] + [str(summ[m]["strictly_decreasing"]) for m in meths])
    rows.append(["adjacent bars separate"] + [
        f"{sum(summ[m]['bars_separate'])}/{len(summ[m]['bars_separate'])}" for m in meths])
    rows.append(["repeats strictly decreasing"] + [
        f"{summ[m]['monotone_repeats']}/{summ[m]['repeats']}" for m in meths])
    rows.append(["seconds / repeat (all sigmas)"] + [f"{summ[m]['seconds_per_repeat']:.3g}" for m in meths])
    return fmt_table(["sigma"] + [f"{m} sliced MI (nats)" for m in meths], rows, md)


def plot(summ: dict, path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for m, s in summ.items():
        ax.errorbar(s["sigmas"], s["mean"], yerr=s["std"], fmt="o-", capsize=3, ms=4,
                    label=f"{m} ({s['seconds_per_repeat']:.2g} s / repeat)")
    ax.set(xscale="log", xlabel="noise sigma (X standardised)", ylabel="sliced MI (nats)",
           title="digits: I(X; X + sigma eps), mean ± std over repeats")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse(argv) -> argparse.Namespace:
    p = base_parser("noise_consistency", __doc__, "4 sigmas, 4 repeats, 12 slices")
    p.add_argument("--sigmas", type=float, nargs="+", default=None,
                   help="default 0.1 0.2 0.5 1 2 3; quick 0.1 0.5 1 3")
    p.add_argument("--repeats", type=int, default=None, help="default 20, quick 4")
    p.add_argument("--num-slices", type=int, default=None, help="default 32, quick 12")
    p.add_argument("--n", type=int, default=None, help="subsample the 1797 images (default: all)")
    p.add_argument("--no-ksg", dest="ksg", action="store_false", help="skip KSG on slices")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    a.sigmas = sorted(a.sigmas or ([0.1, 0.5, 1.0, 3.0] if a.quick else [0.1, 0.2, 0.5, 1.0, 2.0, 3.0]))
    a.repeats = a.repeats or (4 if a.quick else 20)
    a.num_slices = a.num_slices or (12 if a.quick else 32)
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    model = setup(a)
    log(f"noise_consistency: sigmas {a.sigmas}, {a.repeats} repeats, {a.num_slices} slices "
        f"of k={model.config.max_dim}")
    raw = run(model, a)
    summ = {m: summarize(r["values"], a.sigmas) | {"seconds_per_repeat": r["seconds_per_repeat"]}
            for m, r in raw.items()}
    print(table(summ))
    md = (f"# Noise consistency on sklearn digits (64-D), {a.repeats} repeats, {a.num_slices} "
          f"slices of k={model.config.max_dim}\n\n" + table(summ, md=True))
    res = dict(config=vars(a), env=env_info(), summary=summ,
               values={m: r["values"] for m, r in raw.items()})
    out = write_outputs(a.out, "noise_consistency", res, md)
    plot(summ, out / "noise_consistency.png")
    log(f"wrote {out}/noise_consistency.json, noise_consistency.md, noise_consistency.png")
    return res


if __name__ == "__main__":
    main()
