"""Conditional MI I(X; Y | Z): estimates against closed forms, and the local-permutation test.

    python -m benchmarks.conditional --quick
    python -m benchmarks.conditional --threads 1 --out benchmarks/results/conditional

(a) Jointly Gaussian (X, Y, Z), dz = 1..8: Z ~ N(0, I), X = Z W_x + E_x, Y = Z W_y + E_y
    with unit-norm random loadings and residuals (E_x, E_y) of canonical correlations
    chosen for the target I(X; Y | Z); the truth is recomputed from the conditional
    covariance.  ``conditional_mi`` is compared with the chain rule through two
    ``estimate_mi`` calls (same seed): estimate_mi(X, (Y, Z)) - estimate_mi(X, Z).
(b) The same Gaussians with Z observed through the invertible map z -> Q (z + z^3 / 3),
    Q a random rotation (dz >= 2): I(X; Y | Z) is unchanged, but Z's relation to (X, Y)
    is no longer linear in its normal scores, which the reduction of a wide Z assumes.
(c) Markov chains X -> Z -> Y (I(X; Y | Z) = 0): Gaussian (linear links) and non-linear
    (Z = tanh(1.5 X a) + 0.5 noise, Y = sin(Z b) + 0.3 noise): the mean estimate and the
    false-positive rate of ``conditional_mi_test`` at alpha = 0.05.
(d) Dependent cases: Gaussian with I(X; Y | Z) = 0.05 nats, and the non-linear chain with
    a direct effect Y = sin(Z b) + 0.5 X^2 + 0.3 noise: the rejection rate (power).

Rates come with their binomial standard error sqrt(r (1 - r) / reps); estimates with the
standard error of the mean over datasets.  MI in nats.
"""
from __future__ import annotations

import math
import sys
import time
import zlib

import numpy as np
import torch

from infoatlas_loss.conditional import conditional_mi, conditional_mi_test
from infoatlas_loss.functional import estimate_mi

from .common import base_parser, fmt_table, log, setup, write_outputs

ALPHA = 0.05


def gaussian_cmi(cov: np.ndarray, dx: int, dy: int) -> float:
    """Closed-form I(X; Y | Z) in nats of a Gaussian with covariance ``cov`` over the
    columns (X: dx, Y: dy, Z: the rest), from the conditional covariance given Z."""
    k = dx + dy
    s = cov[:k, :k] - cov[:k, k:] @ np.linalg.solve(cov[k:, k:], cov[k:, :k])  # Cov(X, Y | Z)
    logdet = lambda m: np.linalg.slogdet(m)[1]  # noqa: E731
    return 0.5 * (logdet(s[:dx, :dx]) + logdet(s[dx:, dx:]) - logdet(s))


def _unit_columns(rng: np.random.Generator, d: int, m: int) -> np.ndarray:
    w = rng.standard_normal((d, m))
    return w / np.linalg.norm(w, axis=0, keepdims=True)


def gaussian_task(n: int, dz: int, cmi: float, rng: np.random.Generator, dx: int = 1, dy: int = 1):
    """x (n, dx), y (n, dy), z (n, dz) and the closed-form I(X; Y | Z) (nats).

    The residuals have min(dx, dy) equal canonical correlations summing to ``cmi``."""
    k = min(dx, dy)
    rho = math.sqrt(1 - math.exp(-2 * cmi / k))
    ce = np.eye(dx + dy)
    ce[np.arange(k), dx + np.arange(k)] = ce[dx + np.arange(k), np.arange(k)] = rho
    w = np.concatenate([_unit_columns(rng, dz, dx), _unit_columns(rng, dz, dy)], 1)  # (dz, dx+dy)
    cov = np.block([[w.T @ w + ce, w.T], [w, np.eye(dz)]])
    z = rng.standard_normal((n, dz))
    xy = z @ w + rng.multivariate_normal(np.zeros(dx + dy), ce, n)
    return xy[:, :dx], xy[:, dx:], z, gaussian_cmi(cov, dx, dy)


def warped_task(n: int, dz: int, cmi: float, rng: np.random.Generator):
    """``gaussian_task`` (dx = dy = 1) with Z replaced by Q (Z + Z^3 / 3), Q a random
    rotation: an invertible map of Z, so the closed-form I(X; Y | Z) still holds."""
    x, y, z, truth = gaussian_task(n, dz, cmi, rng)
    q, r = np.linalg.qr(rng.standard_normal((dz, dz)))
    return x, y, (z + z ** 3 / 3) @ (q * np.sign(np.diag(r))).T, truth


def markov_gaussian(n: int, dz: int, rng: np.random.Generator):
    """X -> Z -> Y with linear Gaussian links: x (n, 1), y (n, 1), z (n, dz) and the
    closed-form covariance of (X, Y, Z) (its I(X; Y | Z) is 0)."""
    a, b = _unit_columns(rng, dz, 1).T, _unit_columns(rng, dz, 1)  # (1, dz), (dz, 1)
    x = rng.standard_normal((n, 1))
    z = x @ a + rng.standard_normal((n, dz))
    y = z @ b + rng.standard_normal((n, 1))
    cz = a.T @ a + np.eye(dz)
    cov = np.block([[np.ones((1, 1)), (a @ b), a], [(a @ b).T, b.T @ cz @ b + 1, b.T @ cz],
                    [a.T, cz @ b, cz]])
    return x, y, z, cov


def nonlinear_chain(n: int, dz: int, rng: np.random.Generator, direct: float = 0.0):
    """X -> Z -> Y with non-linear links (and ``direct`` * X^2 added to Y when > 0)."""
    a, b = rng.standard_normal((1, dz)), _unit_columns(rng, dz, 1)
    x = rng.standard_normal((n, 1))
    z = np.tanh(1.5 * x @ a) + 0.5 * rng.standard_normal((n, dz))
    y = np.sin(z @ b) + direct * x ** 2 + 0.3 * rng.standard_normal((n, 1))
    return x, y, z


def _mean_se(v) -> tuple[float, float]:
    v = np.asarray(v, dtype=float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def run_gaussian(net, dzs, ns, cmis, reps: int, dxy: tuple[int, int], warped: bool = False
                 ) -> list[dict]:
    rows = []
    for dz in dzs:
        for n in ns:
            for target in cmis:
                est, naive, truth, secs = [], [], [], []
                for r in range(reps):
                    rng = np.random.default_rng([dz, n, int(1000 * target), r, *dxy])
                    x, y, z, t = (warped_task(n, dz, target, rng) if warped
                                  else gaussian_task(n, dz, target, rng, *dxy))
                    t0 = time.perf_counter()
                    res = conditional_mi(x, y, z, model=net, seed=r)
                    secs.append(time.perf_counter() - t0)
                    est.append(res.cmi)
                    naive.append(estimate_mi(x, np.hstack([y, z]), model=net, seed=r).mi
                                 - estimate_mi(x, z, model=net, seed=r).mi)
                    truth.append(t)
                (m, se), (nm, nse) = _mean_se(est), _mean_se(naive)
                rows.append(dict(dx=dxy[0], dy=dxy[1], dz=dz, warped=warped, n=n,
                                 truth=float(np.mean(truth)),
                                 estimate=m, estimate_se=se, naive=nm, naive_se=nse,
                                 method=res.method, seconds=float(np.mean(secs))))
                log(rows[-1])
    return rows


def _test_cell(net, name: str, make, reps: int, perms: int) -> dict:
    rej, est, secs = [], [], []
    for r in range(reps):
        x, y, z = make(np.random.default_rng([r, zlib.crc32(name.encode())]))[:3]
        t0 = time.perf_counter()
        res = conditional_mi_test(x, y, z, num_permutations=perms, model=net, seed=r)
        secs.append(time.perf_counter() - t0)
        rej.append(res.p_value <= ALPHA)
        est.append(conditional_mi(x, y, z, model=net, seed=r).cmi)
    rate = float(np.mean(rej))
    m, se = _mean_se(est)
    return dict(case=name, reps=reps, rate=rate, rate_se=math.sqrt(rate * (1 - rate) / reps),
                estimate=m, estimate_se=se, method=res.method, test_seconds=float(np.mean(secs)))


def run_tests(net, dzs, n: int, reps_null: int, reps_power: int, perms: int) -> tuple[list, list]:
    null, power = [], []
    for dz in dzs:
        for name, make in (("Gaussian chain", lambda g: markov_gaussian(n, dz, g)),
                           ("non-linear chain", lambda g: nonlinear_chain(n, dz, g))):
            null.append(dict(dz=dz, n=n, **_test_cell(net, f"{name} dz={dz}", make, reps_null, perms)))
            log(null[-1])
        for name, make in (("Gaussian, CMI 0.05", lambda g: gaussian_task(n, dz, 0.05, g)),
                           ("non-linear + 0.5 X^2", lambda g: nonlinear_chain(n, dz, g, 0.5))):
            power.append(dict(dz=dz, n=n, **_test_cell(net, f"{name} dz={dz}", make, reps_power, perms)))
            log(power[-1])
    return null, power


def _estimate_table(gauss: list[dict]) -> str:
    return fmt_table(["dx, dy", "dz", "n", "truth", "conditional_mi", "estimate_mi difference",
                   "method", "s / estimate"],
                  [[f"{r['dx']}, {r['dy']}", r["dz"], r["n"], f"{r['truth']:.3f}",
                    f"{r['estimate']:.3f} ± {r['estimate_se']:.3f}",
                    f"{r['naive']:.3f} ± {r['naive_se']:.3f}", r["method"], f"{r['seconds']:.3f}"]
                   for r in gauss], md=True)


def tables(gauss: list[dict], null: list[dict], power: list[dict], perms: int) -> str:
    g = _estimate_table([r for r in gauss if not r["warped"]])
    w = _estimate_table([r for r in gauss if r["warped"]])
    test = lambda rows, what: fmt_table(  # noqa: E731
        ["case", "n", "reps", what, "mean conditional_mi", "method", "s / test"],
        [[r["case"], r["n"], r["reps"], f"{r['rate']:.3f} ± {r['rate_se']:.3f}",
          f"{r['estimate']:.4f} ± {r['estimate_se']:.4f}", r["method"], f"{r['test_seconds']:.2f}"]
         for r in rows], md=True)
    return (f"## Gaussian I(X; Y | Z) (nats): mean ± standard error over datasets\n\n{g}\n\n"
            f"## Gaussian I(X; Y | Z) with Z seen through z -> Q (z + z^3 / 3)\n\n{w}\n\n"
            f"## Markov chains X -> Z -> Y (truth 0): false-positive rate at alpha = {ALPHA}, "
            f"{perms} local permutations\n\n{test(null, 'false-positive rate')}\n\n"
            f"## Dependent cases: rejection rate at alpha = {ALPHA}\n\n"
            f"{test(power, 'power')}\n")


def main(argv=None):
    p = base_parser("conditional", __doc__, "a few cells and repetitions (about a minute)")
    p.add_argument("--reps", type=int, default=8, help="datasets per Gaussian estimate cell")
    p.add_argument("--test-reps", type=int, default=200, help="datasets per Markov-chain cell")
    p.add_argument("--power-reps", type=int, default=100, help="datasets per dependent cell")
    p.add_argument("--test-n", type=int, default=400)
    p.add_argument("--permutations", type=int, default=19)
    p.add_argument("--test-dims", type=int, nargs="+", default=[1, 3, 8])
    p.set_defaults(threads=1)
    a = p.parse_args(argv)
    net = setup(a)
    t0 = time.perf_counter()
    if a.quick:
        dzs, ns, cmis, reps, treps, preps, tdims = [1, 6], [200], [0.5], 2, 4, 2, [2]
    else:
        dzs, ns, cmis, reps, treps, preps, tdims = (list(range(1, 9)), [1000, 5000], [0.1, 0.5, 1.0],
                                                    a.reps, a.test_reps, a.power_reps, a.test_dims)
    gauss = run_gaussian(net, dzs, ns, cmis, reps, (1, 1))
    gauss += run_gaussian(net, dzs[::3] if not a.quick else dzs, ns, [0.5], reps, (2, 2))
    gauss += run_gaussian(net, [d for d in dzs if d > 1], ns, [0.5], reps, (1, 1), warped=True)
    null, power = run_tests(net, tdims, a.test_n, treps, preps, a.permutations)
    md = tables(gauss, null, power, a.permutations)
    cmd = "python -m benchmarks.conditional " + " ".join(sys.argv[1:] if argv is None else argv)
    weights = a.weights or "shipped"
    doc = f"# Conditional MI\n\n`{cmd}`\n\nweights: {weights}\n\n{md}"
    result = dict(gaussian=gauss, null=null, power=power, permutations=a.permutations,
                  alpha=ALPHA, seconds=time.perf_counter() - t0, command=cmd)
    write_outputs(a.out, "results", result, doc)
    print(md)
    return result


if __name__ == "__main__":
    main()
