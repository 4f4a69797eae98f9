"""Is the hypernetwork or the critic the accuracy bottleneck?  (diagnosis, nats)

    python -m benchmarks.critic_capacity --quick             # Table-1 tasks, n = 1000, 50 steps
    python -m benchmarks.critic_capacity                     # Table-1 tasks, n = 5000, seed 0
    python -m benchmarks.critic_capacity --hidden 32,32 64,64 --steps 3000

For each task one sample is drawn (same generator as ``benchmarks.accuracy``) and run
through the estimator's own preprocessing (normal scores, noise padding to ``max_dim``).
Then the *critic* of the shipped architecture (and of wider ones, ``--hidden``) is trained
directly on that sample by gradient ascent on the DV bound, MINE-style, starting either
from a fresh ``nn.Linear``-like init or (same widths as shipped) from the critic the
hypernetwork generated (from the first half of the rows).  Training uses the first half
of the rows, early stopping the third quarter, and the bound is reported on the held-out
last quarter, so it is an honest lower bound, not memorisation (the hypernetwork column
is scored on the same last quarter).

If a directly trained critic of the shipped widths reaches the truth where the
hypernetwork's critic does not, the hypernetwork (or its training) is the bottleneck; if
it does not either, the critic's capacity is.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from infoatlas_loss.critic import GaussianStats, critic_init, dv_bound
from infoatlas_loss.estimator import prepare

from .accuracy import load_model, task_rng
from .bmi_tasks import get_tasks
from .common import fmt_table


def _bound(theta, cfg, x, y, stats, gen):
    order = torch.stack([torch.randperm(x.shape[1], generator=gen)])
    return dv_bound(theta, cfg, x, y, stats=stats, order=order)[0]


def train_critic(theta0: torch.Tensor, cfg, x, y, *, steps: int, lr: float, seed: int,
                 every: int = 100) -> float:
    """Ascend the DV bound on the first half of (x, y) (1, n, k), keep the parameters that
    score best on the third quarter (early stopping), return their bound on the last quarter."""
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[1]
    a, b = n // 2, (3 * n) // 4
    xt, yt, xs, ys, xv, yv = x[:, :a], y[:, :a], x[:, a:b], y[:, a:b], x[:, b:], y[:, b:]
    stats = GaussianStats(xt, yt) if cfg.gaussian_critic else None
    theta = theta0.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    best, best_theta = -float("inf"), theta0.clone()
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            with torch.no_grad():
                score = float(_bound(theta, cfg, xs, ys, stats, gen))
            if score > best:
                best, best_theta = score, theta.detach().clone()
        if step == steps:
            break
        idx = torch.randperm(a, generator=gen)[:512]
        loss = -_bound(theta, cfg, xt[:, idx], yt[:, idx], stats, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        return float(_bound(best_theta, cfg, xv, yv, stats, gen))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="table1")
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", nargs="+", default=["32,32", "128,128"],
                   help="critic hidden widths to train from scratch, e.g. 32,32 64,64")
    p.add_argument("--weights", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="n = 1000, 50 steps, one scratch width (32,32)")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.steps, a.hidden = min(a.n, 1000), min(a.steps, 50), a.hidden[:1]
    torch.set_num_threads(a.threads)
    model = load_model(a.weights)
    cfg = model.config
    widths = [tuple(int(w) for w in h.split(",")) for h in a.hidden]
    head = ["task", "GT", "hypernet", "hypernet+tune"] + [f"scratch {w}" for w in widths]
    rows, errs = [], {h: [] for h in head[2:]}
    t0 = time.perf_counter()
    for task in get_tasks(a.tasks):
        xs, ys = task.sample(a.n, task_rng(task, a.seed))
        x = torch.as_tensor(xs, dtype=torch.float32)[None]
        y = torch.as_tensor(ys, dtype=torch.float32)[None]
        zx, zy, _, _ = prepare(x, y, cfg.max_dim, seeds=[a.seed])
        with torch.no_grad():
            theta = model(zx[:, : a.n // 2], zy[:, : a.n // 2])
        res = {"hypernet": train_critic(theta[0:1], cfg, zx, zy, steps=0, lr=a.lr, seed=a.seed),
               "hypernet+tune": train_critic(theta[0:1], cfg, zx, zy, steps=a.steps,
                                             lr=a.lr / 10, seed=a.seed)}
        for w in widths:
            c = dataclasses.replace(cfg, critic_hidden=w)
            torch.manual_seed(a.seed)
            res[f"scratch {w}"] = train_critic(critic_init(c)[None], c, zx, zy,
                                               steps=a.steps, lr=a.lr, seed=a.seed)
        for k, v in res.items():
            errs[k].append(abs(v - task.mi))
        rows.append([task.name, f"{task.mi:.3f}"] + [f"{res[k]:.3f}" for k in head[2:]])
        print(f"{task.name}: " + "  ".join(f"{k} {v:.3f}" for k, v in res.items()), flush=True)
    rows.append(["mean |error|", ""] + [f"{sum(errs[k]) / len(errs[k]):.3f}" for k in head[2:]])
    print(f"\nn = {a.n}, seed {a.seed}, {a.steps} Adam steps (batch 512, lr {a.lr}; tune lr "
          f"{a.lr / 10:g}), held-out DV bound in nats; {time.perf_counter() - t0:.0f} s")
    print(fmt_table(head, rows))


if __name__ == "__main__":
    main()
