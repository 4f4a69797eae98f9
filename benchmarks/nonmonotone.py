"""One-dimensional non-monotone dependence: the estimate against the truth, KSG and the copula.

    python -m benchmarks.nonmonotone --quick
    python -m benchmarks.nonmonotone --out benchmarks/results/nonmonotone

X ~ U(-1, 1), Y = f(X) + sigma * eps with eps ~ N(0, 1).  The truth is
I(X; Y) = h(Y) - h(sigma * eps), with the density of Y computed by quadrature over X
(``true_mi``).  Monotone f (linear, exp) are controls; the others fold back on themselves,
so rank (copula) structure alone does not show the dependence.

``--critic-steps K`` adds a diagnosis column: the shipped critic architecture trained
directly on the sample (K Adam steps on the DV bound, held-out rows scored, as in
``benchmarks.critic_capacity``).  Where it reaches the truth and the estimate does not,
the hypernetwork, not the critic, is what misses the dependence.
"""
from __future__ import annotations

import math

import numpy as np

from infoatlas_loss import estimate_mi

from .baselines import gaussian_copula_mi, ksg
from .common import base_parser, fmt_table, log, pyplot, setup, write_outputs

FAMILIES = {  # name: (f, sigma)
    "linear": (lambda x: x, 0.5),
    "exp": (lambda x: np.exp(2 * x), 0.5),
    "quadratic": (lambda x: x ** 2, 0.1),
    "quadratic, noisy": (lambda x: x ** 2, 0.3),
    "abs": (lambda x: np.abs(x), 0.1),
    "cubic x^3 - x": (lambda x: x ** 3 - x, 0.05),
    "sine, one period": (lambda x: np.sin(2 * math.pi * x), 0.3),
    "sine, two periods": (lambda x: np.sin(4 * math.pi * x), 0.3),
}
METHODS = ("InfoAtlas", "KSG", "Gaussian copula")
CRITIC = "critic trained on the sample"


def true_mi(f, sigma: float, grid: int = 4001) -> float:
    """I(X; Y) in nats for X ~ U(-1, 1), Y = f(X) + sigma N(0, 1), by quadrature."""
    xs = np.linspace(-1, 1, grid)
    fx = f(xs)
    ys = np.linspace(fx.min() - 8 * sigma, fx.max() + 8 * sigma, grid)
    dens = np.exp(-0.5 * ((ys[:, None] - fx[None, :]) / sigma) ** 2).mean(1) / (sigma * math.sqrt(2 * math.pi))
    p = np.clip(dens, 1e-300, None)
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed it
    h_y = -trapezoid(dens * np.log(p), ys)
    return float(h_y - 0.5 * math.log(2 * math.pi * math.e * sigma ** 2))


def sample(f, sigma: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-1, 1, size=(n, 1))
    return x, f(x) + sigma * rng.normal(size=(n, 1))


def _trained_critic(model, x, y, steps: int, seed: int) -> float:
    """Held-out DV bound (nats) of the shipped critic architecture trained on this sample."""
    import torch

    from infoatlas_loss.critic import critic_init
    from infoatlas_loss.estimator import prepare

    from .critic_capacity import train_critic

    cfg = model.config
    zx, zy, _, _ = prepare(torch.as_tensor(x, dtype=torch.float32)[None],
                           torch.as_tensor(y, dtype=torch.float32)[None], cfg.max_dim, seeds=[seed])
    with torch.random.fork_rng():  # critic_init draws from the global generator
        torch.manual_seed(seed)
        theta0 = critic_init(cfg)[None]
    return train_critic(theta0, cfg, zx, zy, steps=steps, lr=3e-3, seed=seed)


def main(argv=None):
    p = base_parser("nonmonotone", __doc__, "two families, n = 300, one seed")
    p.add_argument("--ns", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--critic-steps", type=int, default=0, help="add the directly trained critic (0: skip)")
    a = p.parse_args(argv)
    model = setup(a)
    fams = dict(list(FAMILIES.items())[1:4:2]) if a.quick else FAMILIES
    ns, seeds = ([300], [0]) if a.quick else (a.ns, a.seeds)
    rows = []
    for name, (f, sigma) in fams.items():
        truth = true_mi(f, sigma)
        for n in ns:
            methods = METHODS + ((CRITIC,) if a.critic_steps else ())
            est = {m: [] for m in methods}
            for s in seeds:
                x, y = sample(f, sigma, n, np.random.default_rng(1000 * s + n))
                est["InfoAtlas"].append(estimate_mi(x, y, model=model, seed=s).mi)
                est["KSG"].append(ksg(x, y))
                est["Gaussian copula"].append(gaussian_copula_mi(x, y))
                if a.critic_steps:
                    est[CRITIC].append(_trained_critic(model, x, y, a.critic_steps, s))
            rows.append(dict(family=name, sigma=sigma, n=n, truth=truth,
                             **{m: float(np.mean(v)) for m, v in est.items()}))
            log(name, n, f"truth {truth:.3f}", *(f"{m} {np.mean(v):.3f}" for m, v in est.items()))
    cols = METHODS + ((CRITIC,) if a.critic_steps else ())
    table = fmt_table(["family", "sigma", "n", "true MI", *cols],
                      [[r["family"], r["sigma"], r["n"], f"{r['truth']:.3f}",
                        *(f"{r[m]:.3f}" for m in cols)] for r in rows], md=True)
    cmd = "python -m benchmarks.nonmonotone " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    md = (f"# Non-monotone dependence (nats)\n\n`{cmd.strip()}`\n\n"
          f"X ~ U(-1, 1), Y = f(X) + sigma N(0, 1); mean over seeds {seeds}; truth by quadrature.\n\n"
          f"{table}\n\n![estimates](nonmonotone.png)\n")
    out = write_outputs(a.out, "results", dict(rows=rows, seeds=seeds), md)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    last = [r for r in rows if r["n"] == max(ns)]
    xs = np.arange(len(last))
    ax.bar(xs - 0.3, [r["truth"] for r in last], 0.2, label="truth", color="k")
    for i, m in enumerate(METHODS):
        ax.bar(xs - 0.1 + 0.2 * i, [r[m] for r in last], 0.2, label=m)
    ax.set_xticks(xs, [r["family"] for r in last], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"MI (nats), n = {max(ns)}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "nonmonotone.png", dpi=120)
    plt.close(fig)
    return dict(rows=rows)


if __name__ == "__main__":
    main()
