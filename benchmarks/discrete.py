"""Discrete and mixed data: error against exact MI, and loss gradients on tied inputs.

    python -m benchmarks.discrete              # n = 1000 and 5000, 5 datasets per cell
    python -m benchmarks.discrete --quick      # n = 1000, 1 dataset per cell

Discrete pairs (binary, counts, category codes) have MI from the joint pmf; mixed pairs
(class -> Gaussian, X = floor(Y)) from 1-D numerical integration (scipy).  Every case is
estimated with ``estimate_mi(..., ties=...)`` for ``"off"`` (ties left as atoms), ``"jitter"``
(random tie-breaking within one level gap) and ``"auto"`` (the default).  The gradient
table gives the norm of d sliced_mi / dx (n = 256) for tied and continuous x.  Nats.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from scipy import integrate
from scipy.stats import binom, norm, poisson

from .common import base_parser, env_info, fmt_table, log, setup, write_outputs

TIES = ("off", "jitter", "auto")


# ----------------------------------------------------------------------------- truths
def pmf_mi(p: np.ndarray) -> float:
    """MI in nats of a joint pmf table p (kx, ky)."""
    p = p / p.sum()
    pxy = p.sum(1, keepdims=True) @ p.sum(0, keepdims=True)
    m = p > 0
    return float((p[m] * np.log(p[m] / pxy[m])).sum())


def gaussian_mixture_mi(weights, means) -> float:
    """I(K; Y) for K ~ weights, Y | K = k ~ N(means[k], 1): h(Y) - h(N(0, 1)), by quad."""
    w, mu = np.asarray(weights, float), np.asarray(means, float)

    def neg_f_log_f(t):
        f = float((w * norm.pdf(t - mu)).sum())
        return -f * math.log(f) if f > 0 else 0.0

    h_y = integrate.quad(neg_f_log_f, mu.min() - 12, mu.max() + 12, limit=400)[0]
    return h_y - 0.5 * math.log(2 * math.pi * math.e)


def binary_pmf(rho: float) -> np.ndarray:
    """Signs of a standard bivariate normal pair with correlation rho (orthant formula)."""
    p11 = 0.25 + math.asin(rho) / (2 * math.pi)
    return np.array([[p11, 0.5 - p11], [0.5 - p11, p11]])


def noisy_code_pmf(k: int, keep: float, target: np.ndarray) -> np.ndarray:
    """X uniform on k codes, Y = target[X] with probability ``keep``, else uniform."""
    p = np.full((k, k), (1 - keep) / k / k)
    p[np.arange(k), target] += keep / k
    return p


# ----------------------------------------------------------------------------- cases
def _binary(rho, cols):
    def draw(n, g):
        z = g.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=(n, cols))  # (n, cols, 2)
        return (z[..., 0] > 0).astype(float), (z[..., 1] > 0).astype(float)
    return draw, cols * pmf_mi(binary_pmf(rho))


def _poisson(lam, top=60):
    def draw(n, g):
        x = g.poisson(lam, n)
        return x[:, None].astype(float), (x + g.poisson(lam, n))[:, None].astype(float)
    p = np.zeros((top, 2 * top))
    for a in range(top):
        p[a, a:a + top] = poisson.pmf(a, lam) * poisson.pmf(np.arange(top), lam)
    return draw, pmf_mi(p)


def _binomial(m=8):
    def draw(n, g):  # X ~ Bin(m, 1/2), Y | X ~ Bin(m, (X + 1) / (m + 2))
        x = g.binomial(m, 0.5, n)
        return x[:, None].astype(float), g.binomial(m, (x + 1) / (m + 2))[:, None].astype(float)
    xs = np.arange(m + 1)
    p = binom.pmf(xs, m, 0.5)[:, None] * binom.pmf(xs[None, :], m, ((xs + 1) / (m + 2))[:, None])
    return draw, pmf_mi(p)


def _codes(k, keep, seed=3):
    target = np.random.default_rng(seed).permutation(k)

    def draw(n, g):
        x = g.integers(0, k, n)
        y = np.where(g.random(n) < keep, target[x], g.integers(0, k, n))
        return x[:, None].astype(float), y[:, None].astype(float)
    return draw, pmf_mi(noisy_code_pmf(k, keep, target))


def _code_pairs(keep=0.8):
    """X = (a, b) codes in 0..2; Y = ((a + b) mod 3, b), each kept with prob ``keep``."""
    def draw(n, g):
        a, b = g.integers(0, 3, n), g.integers(0, 3, n)
        y1 = np.where(g.random(n) < keep, (a + b) % 3, g.integers(0, 3, n))
        y2 = np.where(g.random(n) < keep, b, g.integers(0, 3, n))
        return np.stack([a, b], 1).astype(float), np.stack([y1, y2], 1).astype(float)
    p = np.zeros((9, 9))
    for a in range(3):
        for b in range(3):
            q1 = np.full(3, (1 - keep) / 3)
            q1[(a + b) % 3] += keep
            q2 = np.full(3, (1 - keep) / 3)
            q2[b] += keep
            p[3 * a + b] = np.outer(q1, q2).ravel() / 9
    return draw, pmf_mi(p)


def _classes(means, direction=None):
    """K uniform on len(means) classes; Y | K ~ N(means[K], 1), or in 2-D along ``direction``
    with independent unit noise across it (the same MI)."""
    mu = np.asarray(means, float)

    def draw(n, g):
        k = g.integers(0, len(mu), n)
        if direction is None:
            return k[:, None].astype(float), (mu[k] + g.standard_normal(n))[:, None]
        u = np.asarray(direction, float) / np.linalg.norm(direction)
        return k[:, None].astype(float), mu[k][:, None] * u + g.standard_normal((n, 2))
    return draw, gaussian_mixture_mi(np.full(len(mu), 1 / len(mu)), mu)


def _bits_to_gaussian(scale=1.0):
    """X = two fair bits (a, b); Y ~ N(scale * (2a + b), 1)."""
    def draw(n, g):
        a, b = g.integers(0, 2, n), g.integers(0, 2, n)
        return np.stack([a, b], 1).astype(float), (scale * (2 * a + b) + g.standard_normal(n))[:, None]
    return draw, gaussian_mixture_mi(np.full(4, 0.25), scale * np.arange(4))


def _floor(sd=1.5):
    """Y ~ N(0, sd^2), X = floor(Y): I(X; Y) = H(X)."""
    def draw(n, g):
        y = sd * g.standard_normal(n)
        return np.floor(y)[:, None], y[:, None]
    k = np.arange(-12, 12)
    p = norm.cdf((k + 1) / sd) - norm.cdf(k / sd)
    p = p[p > 0]
    return draw, float(-(p * np.log(p)).sum())


CASES = {
    "binary rho=0.3": lambda: _binary(0.3, 1),
    "binary rho=0.6": lambda: _binary(0.6, 1),
    "binary rho=0.9": lambda: _binary(0.9, 1),
    "3 binary pairs rho=0.89": lambda: _binary(0.89, 3),
    "Poisson(2) counts, Y = X + Poisson(2)": lambda: _poisson(2.0),
    "binomial counts": _binomial,
    "6 codes, permuted, kept 0.6": lambda: _codes(6, 0.6),
    "2 code columns, (a + b) mod 3 and b": _code_pairs,
    "mixed: 2 classes -> N(0 or 2, 1)": lambda: _classes([0.0, 2.0]),
    "mixed: 4 classes -> N(0, 3, -3, 1.5)": lambda: _classes([0.0, 3.0, -3.0, 1.5]),
    "mixed: 3 classes -> 2-D Gaussian": lambda: _classes([0.0, 1.5, 3.0], direction=[1.0, 1.0]),
    "mixed: 2 bits -> N(2a + b, 1)": _bits_to_gaussian,
    "mixed: X = floor(Y)": _floor,
}


# ----------------------------------------------------------------------------- gradients
def gradient_norms(net, reps: int, n: int = 256) -> list[dict]:
    """Mean norm of d sliced_mi / dx over ``reps`` draws, for tied and continuous x; the
    ReLU row also gives the norm through the ReLU (d / dz), what a network's weights see."""
    from infoatlas_loss.functional import sliced_mi

    inputs = {
        "x continuous, y continuous": lambda z, e: (z, z + e),
        "x continuous, y binary": lambda z, e: (z, (z[:, :1] + e[:, :1] > 0).float()),
        "x continuous, y 3 classes": lambda z, e: (z, (z[:, :1] + e[:, :1]).round().clamp(-1, 1)),
        "x = relu(z - 0.5), y continuous": lambda z, e: (torch.relu(z - 0.5), z + e),
        "same, d / dz through the ReLU": lambda z, e: (torch.relu(z - 0.5), z + e),
        "x binary, y continuous": lambda z, e: ((z > 0).float(), z + e),
    }
    rows = []
    for name, make in inputs.items():
        row = dict(input=name)
        for ties in TIES:
            norms = []
            for r in range(reps):
                g = torch.Generator().manual_seed(r)
                z, e = torch.randn(n, 4, generator=g).requires_grad_(True), torch.randn(n, 4, generator=g)
                x, y = make(z, e)
                if x.requires_grad:
                    x.retain_grad()
                else:  # a thresholded x: a leaf of its own
                    x = x.requires_grad_(True)
                sliced_mi(x, y.detach(), model=net, generator=torch.Generator().manual_seed(r),
                          ties=ties).backward()
                grad = z.grad if name.startswith("same") else x.grad
                norms.append(float(grad.norm()))
            row[ties] = float(np.mean(norms))
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- main
def run_cases(net, ns, reps) -> list[dict]:
    from infoatlas_loss.functional import estimate_mi

    rows = []
    for ci, (name, make) in enumerate(CASES.items()):
        draw, truth = make()
        for n in ns:
            est = {t: [] for t in TIES}
            for r in range(reps):
                x, y = draw(n, np.random.default_rng([ci, n, r]))
                for t in TIES:
                    est[t].append(estimate_mi(x, y, model=net, ties=t, seed=r).mi)
            row = dict(case=name, n=n, truth=truth, reps=reps)
            for t in TIES:
                e = np.asarray(est[t])
                row[t] = float(e.mean())
                row[t + "_se"] = float(e.std(ddof=1) / math.sqrt(reps)) if reps > 1 else 0.0
            rows.append(row)
            log(f"{name} n={n}: truth {truth:.3f} " + " ".join(f"{t} {row[t]:.3f}" for t in TIES))
    return rows


def tables(rows, grads) -> str:
    def cell(r, t):
        return f"{r[t]:.3f} ± {r[t + '_se']:.3f}" if r["reps"] > 1 else f"{r[t]:.3f}"

    head = ["case", "n", "exact MI"] + [f"ties={t}" for t in TIES] + [f"|error| {t}" for t in TIES]
    body = [[r["case"], r["n"], f"{r['truth']:.3f}"] + [cell(r, t) for t in TIES]
            + [f"{abs(r[t] - r['truth']):.3f}" for t in TIES] for r in rows]
    mae = ["mean |error|", "", ""] + [""] * len(TIES) + [
        f"{np.mean([abs(r[t] - r['truth']) for r in rows]):.3f}" for t in TIES]
    ghead = ["input (n = 256, 4 columns)"] + [f"‖d MI / dx‖ ties={t}" for t in TIES]
    gbody = [[g["input"]] + [f"{g[t]:.3g}" for t in TIES] for g in grads]
    return (fmt_table(head, body + [mae], md=True) + "\n\n" + fmt_table(ghead, gbody, md=True))


def main(argv=None):
    p = base_parser("discrete", __doc__, "n = 1000, one dataset per cell")
    p.add_argument("--ns", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--reps", type=int, default=5, help="datasets per cell")
    p.set_defaults(threads=1)
    a = p.parse_args(argv)
    ns, reps = ([1000], 1) if a.quick and a.ns == [1000, 5000] else (a.ns, a.reps)
    reps = 1 if a.quick else reps
    net = setup(a)
    t0 = time.perf_counter()
    rows = run_cases(net, ns, reps)
    grads = gradient_norms(net, reps=max(2, reps))
    md = tables(rows, grads)
    print(md)
    cmd = "python -m benchmarks.discrete" + (" " + " ".join(argv) if argv else "")
    result = dict(rows=rows, gradients=grads, ns=ns, reps=reps, seconds=time.perf_counter() - t0,
                  env=env_info())
    write_outputs(a.out, "results", result, f"# Discrete and mixed data (nats)\n\n`{cmd}`\n\n{md}")
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
