"""Power and size of permutation tests of independence: ``mi_test`` vs HSIC, dCor and KSG.

    python -m benchmarks.power --quick
    python -m benchmarks.power --out benchmarks/results/power

Tests (each a permutation test with the +1-corrected p-value, rejecting at ``--alpha``):

* ``InfoAtlas``: ``infoatlas_loss.independence.mi_test`` (every permutation scored in one
  batched pass; ``--num-slices`` slices when a variable is wider than the model's max_dim);
* ``HSIC``, ``Dcorr``: ``hyppo.independence.Hsic`` / ``Dcorr``, ``.test(x, y, reps=P,
  workers=1, auto=False)`` (``auto=False``: a true permutation test, not the chi-square
  approximation hyppo switches to above 20 samples);
* ``KSG``: the KSG estimate (k = 10, ``benchmarks.baselines.ksg``) on the observed pairing
  and on P row permutations of y, in a loop.

Data: the three high-dimensional settings of ``benchmarks.independence`` (``one_feature``,
``two_features``, ``indep_coords``; X, Y both d-dimensional, ``--dims``) and three
non-monotone one-dimensional pairs with noise level ``--noise`` (default 1):
``quadratic`` (X ~ U(-1, 1), Y = X^2 + 0.3 s e), ``circle`` (T ~ U(0, 2 pi), X = cos T + 0.3 s e1,
Y = sin T + 0.3 s e2) and ``sinusoid`` (X ~ U(-1, 1), Y = sin(4 pi X) + 0.5 s e), with e
standard normal and s = ``--noise``.  None of them has a linear correlation.  The size
(false-positive rate) uses independent pairs with the same marginals: the setting's Y with
a fresh independent copy of X.

Per cell, ``--reps`` datasets; power is the rejection rate, its standard error
sqrt(p (1 - p) / reps).  P = ``--perms`` permutations, ``--perms-large`` from
``--large-n`` samples on (all tests alike).  KSG runs up to ``--ksg-max-n`` samples and
``--ksg-max-dim`` dimensions, hyppo up to ``--hyppo-max-n``; skipped cells are blank.

hyppo (optional): ``pip install hyppo==0.5.2 'numba<0.61'`` keeps numpy < 2.
Writes ``results.json``, ``results.md`` and ``power.png`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .baselines import ksg
from .common import env_info, fmt_table, log, pyplot, write_outputs
from .independence import SETTINGS as HIGH_DIM, goldfeld_pair

LOW_DIM = ("quadratic", "circle", "sinusoid")
METHODS = ("InfoAtlas", "HSIC", "Dcorr", "KSG")


# ----------------------------------------------------------------------------- data
def low_dim_pair(setting: str, n: int, noise: float, dependent: bool,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One non-monotone dataset: x (n, 1), y (n, 1); see the module docstring.

    With ``dependent=False`` x is replaced by an independent copy from its own marginal.
    """
    def draw():
        if setting == "quadratic":
            x = rng.uniform(-1, 1, n)
            return x, x ** 2 + 0.3 * noise * rng.standard_normal(n)
        if setting == "circle":
            t = rng.uniform(0, 2 * np.pi, n)
            e = 0.3 * noise * rng.standard_normal((2, n))
            return np.cos(t) + e[0], np.sin(t) + e[1]
        if setting == "sinusoid":
            x = rng.uniform(-1, 1, n)
            return x, np.sin(4 * np.pi * x) + 0.5 * noise * rng.standard_normal(n)
        raise ValueError(f"unknown setting {setting!r}; choose from {LOW_DIM + HIGH_DIM}")

    x, y = draw()
    if not dependent:
        x = draw()[0]
    return x[:, None], y[:, None]


def dataset(setting: str, d: int, n: int, noise: float, dependent: bool, seed: int):
    """(x, y) of one repetition: (n, d) twice for the high-dimensional settings, else (n, 1)."""
    rng = np.random.default_rng(seed)
    if setting in HIGH_DIM:
        return goldfeld_pair(setting, n, d, dependent, rng)
    return low_dim_pair(setting, n, noise, dependent, rng)


# ----------------------------------------------------------------------------- tests
def ksg_test(x: np.ndarray, y: np.ndarray, perms: int, seed: int) -> float:
    """p-value of the KSG permutation test: (1 + #{perm >= observed}) / (1 + perms)."""
    rng = np.random.default_rng(seed)
    obs = ksg(x, y)
    null = np.array([ksg(x, y[rng.permutation(len(y))]) for _ in range(perms)])
    return float((1 + (null >= obs).sum()) / (1 + perms))


def hyppo_tests(threads: int) -> dict:
    """{"HSIC": Hsic, "Dcorr": Dcorr} from hyppo (imported here: an optional dependency)."""
    try:
        import numba
        from hyppo.independence import Dcorr, Hsic
    except ImportError as e:
        raise ImportError("HSIC/Dcorr need hyppo: pip install hyppo==0.5.2 'numba<0.61' "
                          "(or pass --methods InfoAtlas KSG)") from e
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return {"HSIC": Hsic, "Dcorr": Dcorr}


def make_tests(model, a) -> dict:
    """method -> f(x, y, perms, seed) returning the p-value."""
    from infoatlas_loss.independence import mi_test

    tests = {"InfoAtlas": lambda x, y, p, s: mi_test(x, y, num_permutations=p, model=model,
                                                     num_slices=a.num_slices, seed=s).p_value,
             "KSG": ksg_test}
    if {"HSIC", "Dcorr"} & set(a.methods):
        for name, cls in hyppo_tests(a.threads).items():
            def run(x, y, p, s, cls=cls):
                with warnings.catch_warnings():  # hyppo warns below 1 000 permutations
                    warnings.simplefilter("ignore")
                    return float(cls().test(x, y, reps=p, workers=1, auto=False,
                                            random_state=s)[1])
            tests[name] = run
    return {m: tests[m] for m in a.methods}


def applies(method: str, d: int, n: int, a) -> bool:
    """Whether ``method`` runs at dimension d and n samples (the cost caps)."""
    if method == "KSG":
        return n <= a.ksg_max_n and d <= a.ksg_max_dim
    if method in ("HSIC", "Dcorr"):
        return n <= a.hyppo_max_n
    return True


# ----------------------------------------------------------------------------- run
def cells(a) -> list[tuple[str, int, int, bool]]:
    """(setting, d, n, dependent) of every cell: power cells, then size cells."""
    power = [(s, d, n, True) for s in a.settings for d in (a.dims if s in HIGH_DIM else [1])
             for n in a.ns]
    size = [(s, d, n, False) for s in a.size_settings
            for d in (a.dims if s in HIGH_DIM else [1]) for n in a.ns]
    return power + size


def run_cell(tests: dict, cell, a) -> list[dict]:
    """One row per applicable method: rejection rate, its standard error, seconds per test."""
    setting, d, n, dependent = cell
    perms = a.perms_large if n >= a.large_n else a.perms
    key = (sum(map(ord, setting)) * 1009 + d * 101 + n * 7 + int(dependent)) * 10007
    data = [dataset(setting, d, n, a.noise, dependent, a.seed + key + r) for r in range(a.reps)]
    rows = []
    for m, test in tests.items():
        if not applies(m, d, n, a):
            continue
        t0 = time.perf_counter()
        p = np.array([test(x, y, perms, a.seed + r) for r, (x, y) in enumerate(data)])
        secs = (time.perf_counter() - t0) / a.reps
        rate = float(np.mean(p <= a.alpha))
        rows.append(dict(setting=setting, dim=d, n=n, dependent=dependent, method=m, perms=perms,
                         reps=a.reps, rate=rate, se=math.sqrt(rate * (1 - rate) / a.reps),
                         seconds=secs))
    return rows


def warm_up(tests: dict, a) -> None:
    """One small call per test, so compilation (numba) is not timed."""
    x, y = dataset(LOW_DIM[0], 1, 40, a.noise, True, 0)
    for test in tests.values():
        test(x, y, 9, 0)


# ----------------------------------------------------------------------------- report
def power_table(rows: list[dict], dependent: bool, md: bool = False) -> str:
    """Rejection rate (standard error) per cell and method."""
    meths = [m for m in METHODS if any(r["method"] == m for r in rows)]
    key = {(r["setting"], r["dim"], r["n"], r["method"]): r for r in rows
           if r["dependent"] == dependent}
    cl = list(dict.fromkeys((r["setting"], r["dim"], r["n"]) for r in rows
                            if r["dependent"] == dependent))
    fmt = lambda r: "" if r is None else f"{r['rate']:.2f} ({r['se']:.2f})"  # noqa: E731
    body = [[s, d, n, next(key[s, d, n, m]["perms"] for m in meths if (s, d, n, m) in key)]
            + [fmt(key.get((s, d, n, m))) for m in meths] for s, d, n in cl]
    return fmt_table(["setting", "dim", "n", "perms"] + meths, body, md)


def time_table(rows: list[dict], md: bool = False) -> str:
    """Mean seconds per test by (dim, n) over all cells, per method."""
    meths = [m for m in METHODS if any(r["method"] == m for r in rows)]
    body = []
    for d, n in sorted({(r["dim"], r["n"]) for r in rows}):
        cell = lambda m: [r["seconds"] for r in rows  # noqa: E731
                          if r["dim"] == d and r["n"] == n and r["method"] == m]
        body.append([d, n] + [f"{np.mean(cell(m)):.3f}" if cell(m) else "" for m in meths])
    return fmt_table(["dim", "n"] + [f"{m} s/test" for m in meths], body, md)


def plot(rows: list[dict], path: Path) -> None:
    """Power vs n: one panel per (setting, dim), one line per method, +-1 standard error."""
    plt = pyplot()
    panels = list(dict.fromkeys((r["setting"], r["dim"]) for r in rows if r["dependent"]))
    cols = min(3, len(panels))
    nrow = math.ceil(len(panels) / cols)
    fig, ax = plt.subplots(nrow, cols, figsize=(3.6 * cols, 2.9 * nrow), squeeze=False)
    for i, (s, d) in enumerate(panels):
        a = ax[i // cols][i % cols]
        for m in METHODS:
            rs = sorted((r for r in rows if r["dependent"] and r["setting"] == s
                         and r["dim"] == d and r["method"] == m), key=lambda r: r["n"])
            if rs:
                a.errorbar([r["n"] for r in rs], [r["rate"] for r in rs],
                           yerr=[r["se"] for r in rs], marker="o", ms=3, capsize=2, label=m)
        ns = sorted({r["n"] for r in rows})
        a.set(title=f"{s}, d={d}", xlabel="n", ylabel="power", ylim=(-0.03, 1.03), xscale="log")
        a.minorticks_off()
        a.set_xticks(ns, [str(n) for n in ns])
    for j in range(len(panels), nrow * cols):
        ax[j // cols][j % cols].axis("off")
    ax[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="safetensors file (default: shipped weights)")
    p.add_argument("--out", default="outputs/power")
    p.add_argument("--quick", action="store_true",
                   help="quadratic and one_feature d=16, n in {50, 100}, 4 reps, 19 perms")
    p.add_argument("--threads", type=int, default=1, help="torch, numba and BLAS/OpenMP threads")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--settings", nargs="+", choices=LOW_DIM + HIGH_DIM, default=None)
    p.add_argument("--size-settings", nargs="+", choices=LOW_DIM + HIGH_DIM, default=None,
                   help="settings whose independent version measures the size")
    p.add_argument("--dims", type=int, nargs="+", default=None, help="default 16 64 128")
    p.add_argument("--ns", type=int, nargs="+", default=None, help="default 50 100 200 500 1000")
    p.add_argument("--reps", type=int, default=None, help="datasets per cell (default 30)")
    p.add_argument("--perms", type=int, default=None, help="permutations (default 199)")
    p.add_argument("--perms-large", type=int, default=99, help="permutations from --large-n on")
    p.add_argument("--large-n", type=int, default=500)
    p.add_argument("--num-slices", type=int, default=8, help="mi_test slices for wide variables")
    p.add_argument("--ksg-max-n", type=int, default=500)
    p.add_argument("--ksg-max-dim", type=int, default=16)
    p.add_argument("--hyppo-max-n", type=int, default=1000)
    p.add_argument("--noise", type=float, default=1.0, help="noise scale of the 1-d settings")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="skip the cells already in --out/cells.json")
    a = p.parse_args(argv)
    a.settings = a.settings or (["quadratic", "one_feature"] if a.quick else list(LOW_DIM + HIGH_DIM))
    a.size_settings = a.size_settings or (["quadratic"] if a.quick else ["circle", "one_feature"])
    a.dims = a.dims or ([16] if a.quick else [16, 64, 128])
    a.ns = a.ns or ([50, 100] if a.quick else [50, 100, 200, 500, 1000])
    a.reps = (4 if a.quick else 30) if a.reps is None else a.reps
    a.perms = (19 if a.quick else 199) if a.perms is None else a.perms
    for name in ("reps", "perms", "perms_large", "num_slices"):
        if getattr(a, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if not 0 < a.alpha < 1:
        raise ValueError(f"--alpha must be in (0, 1), got {a.alpha}")
    return a


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse(argv)
    torch.set_num_threads(a.threads)
    # numpy's BLAS and OpenMP pools default to every core; left so, their idle workers
    # compete with torch's and the seconds per test stop being comparable
    from threadpoolctl import threadpool_limits

    threadpool_limits(a.threads)
    from .common import load_model

    model = load_model(a.weights)
    tests = make_tests(model, a)
    warm_up(tests, a)
    todo = cells(a)
    log(f"power: {len(todo)} cells x {a.reps} reps, methods {list(tests)}")
    rows, t0 = [], time.perf_counter()
    command = "python -m benchmarks.power " + " ".join(x for x in argv if x != "--resume")
    part = Path(a.out) / "cells.json"  # finished cells, so that --resume skips them
    done = json.loads(part.read_text()) if a.resume and part.is_file() else {}
    for i, cell in enumerate(todo):
        key = repr(cell)
        if key not in done:
            done[key] = run_cell(tests, cell, a)
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_text(json.dumps(done, default=float))
        rows += done[key]
        log(f"[{i + 1}/{len(todo)}] {cell} {time.perf_counter() - t0:.0f}s")
        res = _write(a, command, rows, t0, f"{i + 1} of {len(todo)} cells")
    return res


def _write(a, command: str, rows: list, t0: float, progress: str) -> dict:
    md = (f"# Power and size of independence tests (alpha = {a.alpha})\n\n`{command}`\n\n"
          f"{progress} (an interrupted run finishes with the same command and `--resume`)\n\n"
          f"## Power (rejection rate, standard error)\n\n{power_table(rows, True, md=True)}\n\n"
          f"## Size (rejection rate under independence)\n\n{power_table(rows, False, md=True)}"
          f"\n\n## Seconds per test\n\n{time_table(rows, md=True)}\n")
    res = dict(command=command, config=vars(a), env=env_info(), rows=rows,
               total_seconds=time.perf_counter() - t0)
    out = write_outputs(a.out, "results", res, md)
    plot(rows, out / "power.png")
    return res


if __name__ == "__main__":
    main()
