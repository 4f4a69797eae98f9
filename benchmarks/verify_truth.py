"""Monte-Carlo check of every bmi ground truth: ``python -m benchmarks.verify_truth``.

For each task: draw n samples from the task's own sampler, undo its transforms (last
first) and check the round trip ``forward(inverse(v)) == v`` (injectivity on the sample,
which is what MI invariance needs), then average the base distribution's exact pointwise
log density ratio log p(x, y) / (p(x) p(y)) (nats).  I(X; Y) is its expectation, so the
mean must match the closed-form value within a few standard errors.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from .bmi_tasks import BASES, GROUPS, Task, get_tasks


@dataclass(frozen=True)
class TruthCheck:
    """Outcome for one task; all values in nats except ``roundtrip_err`` (max abs error)."""

    name: str
    mi: float
    mc_mean: float
    mc_stderr: float
    roundtrip_err: float

    @property
    def z(self) -> float:
        return (self.mc_mean - self.mi) / max(self.mc_stderr, 1e-12)

    def ok(self, z_max: float = 4.0, tol: float = 1e-6) -> bool:
        return abs(self.z) <= z_max and self.roundtrip_err <= tol


def check_task(task: Task, n: int = 200_000, seed: int = 0) -> TruthCheck:
    """Monte-Carlo estimate of E[log p(x,y)/(p(x)p(y))] on n samples of ``task``."""
    x, y = task.sample(n, np.random.default_rng(seed))
    err = 0.0
    for tx, ty in reversed(task.transforms):
        bx, by = tx.inverse(x), ty.inverse(y)
        scale = 1.0 + max(np.abs(x).max(), np.abs(y).max())
        err = max(err, np.abs(tx.forward(bx) - x).max() / scale,
                  np.abs(ty.forward(by) - y).max() / scale)
        x, y = bx, by
    base = BASES[task.base] if task.base else task
    pmi = base.pmi(x, y)
    return TruthCheck(task.name, task.mi, float(pmi.mean()),
                      float(pmi.std(ddof=1) / np.sqrt(len(pmi))), float(err))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tasks", default="all", choices=sorted(GROUPS))
    p.add_argument("--quick", action="store_true", help="n = 20000")
    a = p.parse_args(argv)
    if a.quick:
        a.n = min(a.n, 20_000)
    bad = 0
    print(f"{'task':48s} {'GT':>7s} {'MC mean':>8s} {'stderr':>7s} {'z':>6s} {'roundtrip':>9s}")
    for t in get_tasks(a.tasks):
        c = check_task(t, a.n, a.seed)
        bad += not c.ok()
        print(f"{c.name:48s} {c.mi:7.4f} {c.mc_mean:8.4f} {c.mc_stderr:7.4f} {c.z:6.2f} "
              f"{c.roundtrip_err:9.1e} {'ok' if c.ok() else 'FAIL'}")
    return int(bad > 0)


if __name__ == "__main__":
    raise SystemExit(main())
