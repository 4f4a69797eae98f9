"""Held-out closed-form families for selecting estimator designs (never the bmi tasks).

The bmi suite is what we report; designs are chosen here, on families with exact MI (nats)
that differ from bmi's in dimensions, parameters and maps:

* ``gauss``: Gaussians with random canonical correlations, rotated within x and within y,
  then strictly increasing maps per column (exp on x, sinh on y); dims 1..5.
* ``student``: multivariate Student-t (nu = 1.5 or 4), identity dispersion, then a random
  invertible linear map within x and within y; MI = h(dx) + h(dy) - h(dx + dy).
* ``additive``: X ~ U(0, 1), Y = X + U(-eps, eps), eps in {0.05, 0.3, 0.5}.
* ``spiral``: a 3x3 or 4x4 Gaussian with a rotation-by-|v|^2 spiral in a random plane.
* ``indep``: independent pairs with Gaussian, Cauchy, uniform and discrete-valued columns.
* ``wide``: Gaussians with 10..40 columns per variable, 1..3 canonical pairs, rotated
  or coordinate-aligned, and independent wide pairs.

    python -m benchmarks.heldout --n 1000 5000             # shipped estimator, KSG, copula
    python -m benchmarks.heldout --groups wide --methods infoatlas infoatlas-sliced
    python -m benchmarks.heldout --weights runs/x.safetensors --quick
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .bmi_tasks import additive_mi, student_mi
from .bmi_transforms import spiral

Array = np.ndarray


@dataclass(frozen=True)
class Family:
    name: str
    group: str
    mi: float
    sampler: Callable[[int, np.random.Generator], tuple[Array, Array]]


def _orth(d: int, rng) -> Array:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _canonical(dx: int, dy: int, rho: Array, rng, rotate: bool = True):
    """Sampler of a Gaussian with canonical correlations ``rho`` and its MI."""
    d = dx + dy
    c = np.eye(d)
    for i, r in enumerate(rho):
        c[i, dx + i] = c[dx + i, i] = r
    chol = np.linalg.cholesky(c)
    rx = _orth(dx, rng) if rotate else np.eye(dx)
    ry = _orth(dy, rng) if rotate else np.eye(dy)

    def sample(n, g):
        v = g.standard_normal((n, d)) @ chol.T
        return v[:, :dx] @ rx.T, v[:, dx:] @ ry.T

    return sample, float(-0.5 * np.sum(np.log(1 - np.asarray(rho) ** 2)))


def families(seed: int = 12345) -> list[Family]:
    rng = np.random.default_rng(seed)
    out = []
    for dx, dy, mi in [(1, 1, 0.6), (2, 3, 1.2), (4, 2, 0.4), (3, 5, 1.8), (5, 5, 0.9), (1, 4, 0.3)]:
        k = min(dx, dy)
        w = rng.dirichlet(np.ones(k)) * mi
        rho = np.sqrt(1 - np.exp(-2 * w))
        base, truth = _canonical(dx, dy, rho, rng)

        def sample(n, g, base=base):
            x, y = base(n, g)
            return np.exp(x), np.sinh(y)
        out.append(Family(f"gauss-{dx}x{dy}-{mi}", "gauss", truth, sample))
    for dx, dy, nu in [(1, 2, 1.5), (2, 2, 4.0), (3, 1, 1.5), (4, 4, 4.0)]:
        mx, my = rng.standard_normal((dx, dx)) + 2 * np.eye(dx), rng.standard_normal((dy, dy)) + 2 * np.eye(dy)

        def sample(n, g, dx=dx, dy=dy, nu=nu, mx=mx, my=my):
            t = g.standard_normal((n, dx + dy)) * np.sqrt(nu / g.chisquare(nu, size=(n, 1)))
            return t[:, :dx] @ mx.T, t[:, dx:] @ my.T
        out.append(Family(f"student-{dx}x{dy}-nu{nu}", "student", float(student_mi(dx, dy, nu)), sample))
    for eps in (0.05, 0.3, 0.5):
        def sample(n, g, eps=eps):
            x = g.uniform(0, 1, (n, 1))
            return x, x + g.uniform(-eps, eps, (n, 1))
        out.append(Family(f"additive-{eps}", "additive", float(additive_mi(eps)), sample))
    for d, speed in [(3, 0.4), (4, 0.25)]:
        base, truth = _canonical(d, d, [0.85, 0.6], rng, rotate=False)
        i, j = rng.choice(d, 2, replace=False)
        tx, ty = spiral(int(i), int(j), speed), spiral(int(j), int(i), speed)

        def sample(n, g, base=base, tx=tx, ty=ty):
            x, y = base(n, g)
            return tx.forward(x), ty.forward(y)
        out.append(Family(f"spiral-{d}x{d}-{speed}", "spiral", truth, sample))
    indep = {
        "gauss-3x2": lambda n, g: (g.standard_normal((n, 3)), g.standard_normal((n, 2))),
        "cauchy-2x2": lambda n, g: (g.standard_cauchy((n, 2)), g.standard_cauchy((n, 2))),
        "discrete-2x1": lambda n, g: (g.integers(0, 4, (n, 2)).astype(float), g.integers(0, 3, (n, 1)).astype(float)),
        "uniform-5x5": lambda n, g: (g.uniform(size=(n, 5)), g.uniform(size=(n, 5))),
    }
    out += [Family(f"indep-{k}", "indep", 0.0, s) for k, s in indep.items()]
    for d, k, mi, rotate in [(10, 1, 0.8, True), (20, 3, 1.5, True), (40, 2, 0.5, False), (30, 3, 1.2, True)]:
        w = np.full(k, mi / k)
        base, truth = _canonical(d, d, np.sqrt(1 - np.exp(-2 * w)), rng, rotate=rotate)
        out.append(Family(f"wide-{d}x{d}-{k}-{mi}", "wide", truth, base))
    out += [Family(f"wide-indep-{d}x{d}", "wide", 0.0,
                   lambda n, g, d=d: (g.standard_normal((n, d)), g.standard_t(3, (n, d)))) for d in (12, 40)]
    return out


def run(estimators: dict[str, Callable], ns, seeds, fams=None) -> list[dict]:
    rows = []
    for fam in fams or families():
        for n in ns:
            for s in seeds:
                x, y = fam.sampler(n, np.random.default_rng(1000 * s + n))
                for name, est in estimators.items():
                    t0 = time.perf_counter()
                    v = float(est(x, y))
                    rows.append({"family": fam.name, "group": fam.group, "n": n, "seed": s, "method": name,
                                 "true": fam.mi, "est": v, "err": abs(v - fam.mi),
                                 "seconds": time.perf_counter() - t0})
    return rows


def summary(rows: list[dict]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    groups = list(dict.fromkeys(r["group"] for r in rows)) + ["all"]
    ns = sorted({r["n"] for r in rows})
    lines = ["| n | method | " + " | ".join(groups) + " | s/est |", "|---" * (len(groups) + 3) + "|"]
    for n in ns:
        for m in methods:
            sel = [r for r in rows if r["n"] == n and r["method"] == m]
            cells = [np.mean([r["err"] for r in sel if g in ("all", r["group"])]) for g in groups]
            t = np.mean([r["seconds"] for r in sel])
            lines.append(f"| {n} | {m} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {t:.3f} |")
    return "\n".join(lines)


def make_estimators(names: list[str], weights: str | None) -> dict[str, Callable]:
    """Estimators by name: ``infoatlas`` (the default estimate), ``infoatlas-sliced`` (wide
    variables by random slices), ``infoatlas-refineK`` (K test-time refinement steps),
    ``gauss-copula``, ``ksg``."""
    from infoatlas_loss import estimate_mi, load_weights
    from .baselines import gaussian_copula_mi, ksg
    model = load_weights(weights) if weights else None
    out = {}
    for name in names:
        if name == "infoatlas":
            out[name] = lambda x, y: estimate_mi(x, y, model=model).mi
        elif name == "infoatlas-sliced":
            out[name] = lambda x, y: estimate_mi(x, y, model=model, wide="sliced").mi
        elif name.startswith("infoatlas-refine"):
            k = int(name.removeprefix("infoatlas-refine"))
            out[name] = lambda x, y, k=k: estimate_mi(x, y, model=model, refine_steps=k).mi
        elif name == "gauss-copula":
            out[name] = gaussian_copula_mi
        elif name == "ksg":
            out[name] = ksg
        else:
            raise ValueError(f"unknown estimator {name!r}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--methods", nargs="+", default=["infoatlas", "gauss-copula", "ksg"],
                   help="infoatlas, infoatlas-sliced, infoatlas-refineK, gauss-copula, ksg")
    p.add_argument("--groups", nargs="+", default=None,
                   help="families to run: gauss student additive spiral indep wide (default all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="n = 1000 only")
    p.add_argument("--out", default="outputs/heldout")
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    fams = [f for f in families() if a.groups is None or f.group in a.groups]
    rows = run(make_estimators(a.methods, a.weights), [1000] if a.quick else a.n, a.seeds, fams)
    table = summary(rows)
    print(table)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    cmd = "python -m benchmarks.heldout " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "results.md").write_text("# Held-out closed-form families, mean |error| (nats)\n\n"
                                    f"`{cmd}`\n\n{table}\n")


if __name__ == "__main__":
    main()
