"""Tasks of the benchmark-mi ("bmi") suite (Czyż et al., NeurIPS 2023) with known MI (nats).

All 40 tasks of bmi's ``BENCHMARK_TASKS`` list, in its order and with its ids:
``get_tasks("all")``.  Groups: ``"narrow"`` (the 33 tasks with at most 5 dimensions per
variable), ``"wide"`` (the 7 tasks with 25 or 50 dimensions per variable) and
``"table1"`` (the eight tasks of the paper's Table 1).

Base distributions (closed-form MI):

* ``1v1-normal-0.75``: bivariate normal, correlation 0.75: MI = -log(1 - 0.75^2) / 2.
* ``multinormal-dense-d-d-0.5``: all 2d coordinates equicorrelated (a = 0.5), within X and
  Y too.  An m x m equicorrelation matrix has determinant (1 - a)^(m-1) (1 + (m-1) a), so
  MI = 1/2 log[(1 + (d-1) a)^2 / ((1 - a)(1 + (2d-1) a))]: 1.2922 for d = 25, 1.6243 for 50.
* ``multinormal-sparse-dx-dy-k-s``: bmi's latent-variable model with ``k`` interacting
  pairs: X_i = Z_i + E_i, Y_i = Z_i + F_i with Var Z_i = s^2 for i < k, all other
  coordinates independent; so Corr(X_i, Y_i) = s^2 / (1 + s^2) = 0.8 for s = 2 and
  MI = -k/2 log(1 - 0.8^2) = 1.0217 for k = 2, whatever the width.
* ``student-identity-dx-dy-nu``: multivariate Student-t, identity dispersion, nu d.o.f.
  MI = h(dx) + h(dy) - h(dx + dy) with the entropy
  h(d) = log G(nu/2) - log G((nu+d)/2) + d/2 log(nu pi) + (nu+d)/2 [psi((nu+d)/2) - psi(nu/2)].
* ``1v1-additive-eps``: X ~ U(0,1), Y = X + N, N ~ U(-eps, eps): I = h(Y) - log(2 eps)
  with the trapezoid density of Y, giving eps - log(2 eps) for eps <= 1/2, 1/(4 eps) else.

Transformed tasks apply injective maps (``benchmarks.bmi_transforms``) to X and Y, so MI
equals the base task's: normal_cdf, half_cube, asinh, wiggly, spiral, the bimodal mixture
quantiles (``1v1-bimodal-0.75`` = mixture quantiles of normal_cdf of the binormal), and the
swiss-roll embedding of X.  The spiral follows bmi: X rotates in its coordinate plane
(0, 1), Y in (1, 2), by the angle |v|^2 / d (speed normalised by the width d of the
variable, so about one radian at every width).

How the ground truths were checked: the eight Table-1 values of the bmi paper are
reproduced to 4 decimals and the wide tasks' values match the closed forms above
(``tests/test_benchmarks.py``); and for every task ``python -m benchmarks.verify_truth``
draws 200k samples from the task's own sampler, inverts its transforms (checking the
round trip), and averages the exact pointwise log density ratio log p(x,y) / (p(x) p(y))
of the base distribution (scipy densities); the Monte-Carlo means agree with the closed
forms within 4 standard errors (see that module).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import stats
from scipy.special import digamma, gammaln

from . import bmi_transforms as T

Array = np.ndarray
Sampler = Callable[[int, np.random.Generator], tuple[Array, Array]]


@dataclass(frozen=True)
class Task:
    """One benchmark task.

    Attributes:
        name: bmi task id.
        dim_x, dim_y: columns of X and Y.
        mi: ground-truth I(X; Y) in nats.
        sampler: ``sampler(n, rng) -> (x (n, dim_x), y (n, dim_y))``.
        base: id of the untransformed task whose MI this one inherits (None for a base).
        transforms: (map of X, map of Y) pairs applied in order to the base samples.
        pmi: for a base task, the pointwise log density ratio (x, y) -> (n,) in nats.
    """

    name: str
    dim_x: int
    dim_y: int
    mi: float
    sampler: Sampler
    base: str | None = None
    transforms: tuple = field(default=(), repr=False)
    pmi: Callable[[Array, Array], Array] | None = field(default=None, repr=False)

    def sample(self, n: int, rng: np.random.Generator | int) -> tuple[Array, Array]:
        """n samples; ``rng`` a Generator or an int seed (deterministic either way)."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return self.sampler(int(n), rng)


# --- closed forms ---------------------------------------------------------------------

def gaussian_mi(cov: Array, dim_x: int) -> float:
    """MI (nats) of a Gaussian with covariance ``cov`` (d, d) split after ``dim_x`` columns."""
    ld = lambda m: np.linalg.slogdet(m)[1]  # noqa: E731
    return 0.5 * (ld(cov[:dim_x, :dim_x]) + ld(cov[dim_x:, dim_x:]) - ld(cov))


def student_entropy(d: int, df: float) -> float:
    """Differential entropy (nats) of the d-dim Student-t with identity dispersion."""
    a, b = 0.5 * df, 0.5 * (df + d)
    return gammaln(a) - gammaln(b) + 0.5 * d * np.log(df * np.pi) + b * (digamma(b) - digamma(a))


def student_mi(dim_x: int, dim_y: int, df: float) -> float:
    """MI (nats) between the blocks of a Student-t with identity dispersion."""
    return student_entropy(dim_x, df) + student_entropy(dim_y, df) - student_entropy(dim_x + dim_y, df)


def additive_mi(eps: float) -> float:
    """MI (nats) of X ~ U(0,1), Y = X + U(-eps, eps)."""
    return eps - np.log(2 * eps) if eps <= 0.5 else 1.0 / (4 * eps)


def dense_cov(d: int, off: float = 0.5) -> Array:
    """The (d, d) equicorrelation matrix with off-diagonal ``off``."""
    return np.full((d, d), off) + (1 - off) * np.eye(d)


def dense_mi(d: int, off: float = 0.5) -> float:
    """MI (nats) of ``multinormal-dense-d-d-off`` from the equicorrelation determinant."""
    return 0.5 * np.log((1 + (d - 1) * off) ** 2 / ((1 - off) * (1 + (2 * d - 1) * off)))


def sparse_cov(dim_x: int, dim_y: int, k: int, strength: float) -> Array:
    """bmi's sparse LVM correlation: Corr(X_i, Y_i) = s^2 / (1 + s^2) for i < k, else 0."""
    cov = np.eye(dim_x + dim_y)
    r = strength**2 / (1 + strength**2)
    for i in range(k):
        cov[i, dim_x + i] = cov[dim_x + i, i] = r
    return cov


# --- base tasks -----------------------------------------------------------------------

def _gaussian(name: str, cov: Array, dim_x: int) -> Task:
    chol = np.linalg.cholesky(cov)
    joint = stats.multivariate_normal(np.zeros(len(cov)), cov)
    mx = stats.multivariate_normal(np.zeros(dim_x), cov[:dim_x, :dim_x])
    my = stats.multivariate_normal(np.zeros(len(cov) - dim_x), cov[dim_x:, dim_x:])

    def sampler(n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        z = rng.standard_normal((n, len(cov))) @ chol.T
        return z[:, :dim_x], z[:, dim_x:]

    def pmi(x: Array, y: Array) -> Array:
        return (joint.logpdf(np.hstack([x, y])).reshape(-1) - mx.logpdf(x).reshape(-1)
                - my.logpdf(y).reshape(-1))

    return Task(name, dim_x, len(cov) - dim_x, gaussian_mi(cov, dim_x), sampler, pmi=pmi)


def _student(dim_x: int, dim_y: int, df: int) -> Task:
    d = dim_x + dim_y
    dens = {k: stats.multivariate_t(np.zeros(k), np.eye(k), df=df) for k in {dim_x, dim_y, d}}

    def sampler(n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        z = rng.standard_normal((n, d))
        u = rng.chisquare(df, size=(n, 1))
        t = z * np.sqrt(df / u)
        return t[:, :dim_x], t[:, dim_x:]

    def pmi(x: Array, y: Array) -> Array:
        lp = lambda k, v: np.atleast_1d(dens[k].logpdf(v)).reshape(-1)  # noqa: E731
        return lp(d, np.hstack([x, y])) - lp(dim_x, x) - lp(dim_y, y)

    return Task(f"student-identity-{dim_x}-{dim_y}-{df}", dim_x, dim_y,
                student_mi(dim_x, dim_y, df), sampler, pmi=pmi)


def _additive(eps: float) -> Task:
    def sampler(n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        x = rng.uniform(0.0, 1.0, size=(n, 1))
        return x, x + rng.uniform(-eps, eps, size=(n, 1))

    def pmi(x: Array, y: Array) -> Array:
        # p(y|x) = 1/(2 eps) on |y-x| <= eps; p(y) = |[0,1] & [y-eps, y+eps]| / (2 eps)
        y = y[:, 0]
        overlap = np.clip(np.minimum(1.0, y + eps) - np.maximum(0.0, y - eps), 1e-300, None)
        return -np.log(overlap)

    return Task(f"1v1-additive-{eps}", 1, 1, additive_mi(eps), sampler, pmi=pmi)


def transformed(base: Task, name: str, tx: T.Transform, ty: T.Transform,
                dim_x: int | None = None) -> Task:
    """``base`` with X -> tx(X), Y -> ty(Y); same MI (injective maps)."""
    def sampler(n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        x, y = base.sampler(n, rng)
        return tx.forward(x), ty.forward(y)

    return Task(name, dim_x or base.dim_x, base.dim_y, base.mi, sampler, base=base.base or base.name,
                transforms=base.transforms + ((tx, ty),))


IDENTITY = T.Transform("identity", lambda v: v, lambda v: v)


def _both(base: Task, tr: T.Transform) -> Task:
    return transformed(base, f"{tr.name}-{base.name}", tr, tr)


def _spiral(base: Task) -> Task:
    """bmi's spiral (speed normalised by the width: 1/d): X rotates in plane (0, 1), Y in
    plane (1, 2), each by |v|^2 / d radians."""
    tx = T.spiral(0, 1, 1.0 / base.dim_x)
    ty = T.spiral(1, 2, 1.0 / base.dim_y)
    return transformed(base, f"spiral-{base.name}", tx, ty)


def _build() -> tuple[dict[str, Task], dict[str, Task]]:
    """Every task in the order of bmi's ``BENCHMARK_TASKS`` list."""
    bases: dict[str, Task] = {}
    tasks: list[Task] = []

    def add_base(t: Task) -> Task:
        bases[t.name] = t
        tasks.append(t)
        return t

    # one-dimensional tasks
    binormal = add_base(_gaussian("1v1-normal-0.75", np.array([[1, 0.75], [0.75, 1]]), 1))
    uniform = _both(binormal, T.NORMAL_CDF)
    tasks.append(uniform)
    add_base(_additive(0.1))
    add_base(_additive(0.75))
    tasks.append(transformed(uniform, "1v1-bimodal-0.75", T.BIMODAL_QX, T.BIMODAL_QY))
    tasks.append(transformed(binormal, "wiggly-1v1-normal-0.75", T.WIGGLY_X, T.WIGGLY_Y))
    tasks.append(_both(binormal, T.HALF_CUBE))
    bistudent = add_base(_student(1, 1, 1))
    tasks.append(_both(bistudent, T.ASINH))
    # embedding
    tasks.append(transformed(uniform, f"swissroll_x-{uniform.name}", T.SWISSROLL, IDENTITY,
                             dim_x=2))
    # multinormal
    for d in (2, 3, 5, 25, 50):
        add_base(_gaussian(f"multinormal-dense-{d}-{d}-0.5", dense_cov(2 * d), d))
    sparse = {d: add_base(_gaussian(f"multinormal-sparse-{d}-{d}-2-2.0",
                                    sparse_cov(d, d, 2, 2.0), d)) for d in (2, 3, 5, 25)}
    # Student-t
    students = {(dx, df): add_base(_student(dx, dx, df))
                for dx, df in [(2, 1), (2, 2), (3, 2), (3, 3), (5, 2), (5, 3)]}
    # transformed multinormal and Student-t
    dims = (3, 5, 25)
    tasks += [_both(sparse[d], T.NORMAL_CDF) for d in dims]
    tasks += [_both(sparse[d], T.HALF_CUBE) for d in dims]
    tasks += [_spiral(sparse[d]) for d in dims]
    tasks += [_spiral(_both(sparse[d], T.NORMAL_CDF)) for d in dims]
    tasks += [_both(students[k], T.ASINH) for k in [(2, 1), (3, 2), (5, 2)]]
    return {t.name: t for t in tasks}, bases


TASKS, BASES = _build()
"""``TASKS``: every task by id; ``BASES``: the untransformed ones (with ``pmi``)."""

TABLE1 = (
    "multinormal-dense-5-5-0.5",
    "spiral-multinormal-sparse-3-3-2-2.0",
    "asinh-student-identity-5-5-2",
    "student-identity-3-3-3",
    "normal_cdf-multinormal-sparse-3-3-2-2.0",
    "half_cube-multinormal-sparse-5-5-2-2.0",
    "1v1-additive-0.1",
    "1v1-bimodal-0.75",
)
"""The eight tasks of Table 1 (the paper's headline comparison)."""

WIDE = tuple(n for n, t in TASKS.items() if max(t.dim_x, t.dim_y) > 5)
"""The 7 tasks with 25 or 50 dimensions per variable."""

NARROW = tuple(n for n in TASKS if n not in WIDE)
"""The 33 tasks with at most 5 dimensions per variable."""

GROUPS = {"all": tuple(TASKS), "narrow": NARROW, "wide": WIDE, "table1": TABLE1}
"""Task-id groups by name; ``get_tasks(which)`` returns ``GROUPS[which]``."""


def get_tasks(which: str = "all", names=None) -> list[Task]:
    """``which`` one of ``GROUPS`` ("all", "narrow", "wide", "table1"); ``names``
    (iterable of ids) overrides it."""
    if names:
        missing = [n for n in names if n not in TASKS]
        if missing:
            raise KeyError(f"unknown task(s) {missing}; known: {sorted(TASKS)}")
        return [TASKS[n] for n in names]
    if which not in GROUPS:
        raise ValueError(f"which must be one of {sorted(GROUPS)}, got {which!r}")
    return [TASKS[n] for n in GROUPS[which]]
