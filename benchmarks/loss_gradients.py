"""Gradient quality of MI losses: per-minibatch gradients against the closed-form gradient.

    python -m benchmarks.loss_gradients            # full run (see results/loss_gradients)
    python -m benchmarks.loss_gradients --quick    # a few seconds

Setting: x ~ N(0, I_8), y = B x + sigma * eps in R^3 (B with orthonormal rows), and a linear
encoder z = W x with W of shape (3, 8).  I(Wx; y) and its gradient in W are closed form
(jointly Gaussian).  For a fixed W and sigma set so that I(Wx; y) is 0.1 / 0.5 / 1 / 2 nats,
each method's gradient in W on a minibatch of n rows is compared with the true gradient:
mean cosine over minibatches, its spread, and the cosine of the mean gradient (bias).
Then gradient ascent from a random W at batch n for a fixed number of Adam steps: the
largest principal angle (degrees) between W's row space and B's (0 = recovered).

Methods: ``ours`` (``sliced_mi``), ``ours-debias`` (``debias=True``), ``gauss`` (plug-in
Gaussian MI of the sample covariance: knows the family, a ceiling for this setting),
``copula`` (the same on the normal scores: Gaussian-copula MI, a common fast estimator),
``infonce`` and ``mine`` (a separable / concatenated critic trained at the current W, as
in a training loop where the critic follows the encoder), ``hsic`` (Gaussian kernels,
median heuristic; not MI, its direction is what a user would follow).  Times are forward +
backward per step (plus one critic update for the neural methods).
"""
from __future__ import annotations

import argparse
import json
import sys
import math
import time
from pathlib import Path

import torch
from torch import nn

from infoatlas_loss import load_pretrained, load_weights, normal_scores, sliced_mi

DX, DZ = 8, 3


# ----------------------------------------------------------------------------- closed form
def gauss_mi(w: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """I(Wx; Bx + sigma eps) in nats for x ~ N(0, I), differentiable in w."""
    szz, syy = w @ w.T, b @ b.T + sigma ** 2 * torch.eye(b.shape[0], dtype=b.dtype)
    szy = w @ b.T
    joint = torch.cat([torch.cat([szz, szy], 1), torch.cat([szy.T, syy], 1)], 0)
    return 0.5 * (torch.logdet(szz) + torch.logdet(syy) - torch.logdet(joint))


def sigma_for(w, b, target: float) -> float:
    """Noise level giving I(Wx; y) = target (bisection in log sigma; MI falls with sigma)."""
    lo, hi = -6.0, 6.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if float(gauss_mi(w, b, math.exp(mid))) > target else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def sample(b, sigma, batch, n, g):
    x = torch.randn(batch, n, DX, generator=g, dtype=torch.float64)
    y = x @ b.T + sigma * torch.randn(batch, n, b.shape[0], generator=g, dtype=torch.float64)
    return x.float(), y.float()


def principal_angle(w: torch.Tensor, b: torch.Tensor) -> float:
    """Largest principal angle (degrees) between the row spaces of w and b."""
    qw, _ = torch.linalg.qr(w.T.double())
    qb, _ = torch.linalg.qr(b.T.double())
    s = torch.linalg.svdvals(qw.T @ qb).clamp(max=1.0)
    return math.degrees(math.acos(float(s.min())))


# ----------------------------------------------------------------------------- methods
def gauss_plugin(z, y):
    """Gaussian MI of the sample covariance, (B, n, dz), (B, n, dy) -> (B,)."""
    v = torch.cat([z, y], -1)
    v = v - v.mean(1, keepdim=True)
    c = v.transpose(1, 2) @ v / (v.shape[1] - 1)  # (B, d, d)
    k = z.shape[-1]
    return 0.5 * (torch.logdet(c[:, :k, :k]) + torch.logdet(c[:, k:, k:]) - torch.logdet(c))


def hsic(z, y):
    """Biased HSIC with Gaussian kernels at the median-distance bandwidth, (B,)."""
    def gram(v):
        d2 = torch.cdist(v, v).pow(2)  # (B, n, n)
        med = d2.detach().flatten(1).median(1).values.clamp_min(1e-12)
        return torch.exp(-d2 / med[:, None, None])
    n = z.shape[1]
    h = torch.eye(n) - 1.0 / n
    kz, ky = h @ gram(z) @ h, gram(y)
    return (kz * ky).sum((1, 2)) / (n - 1) ** 2


class Critic(nn.Module):
    """Separable (InfoNCE) or concatenated (MINE) critic of one minibatch."""

    def __init__(self, kind: str, hidden: int = 64):
        super().__init__()
        self.kind = kind
        mlp = lambda i, o: nn.Sequential(nn.Linear(i, hidden), nn.ReLU(),  # noqa: E731
                                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, o))
        if kind == "infonce":
            self.f, self.g = mlp(DZ, 32), mlp(DZ, 32)
        else:
            self.f = mlp(2 * DZ, 1)

    def bound(self, z, y):  # z, y (n, d) -> the method's MI lower bound in nats
        n = z.shape[0]
        if self.kind == "infonce":
            s = self.f(z) @ self.g(y).T  # (n, n): row i = z_i against every y_j
            return (s.diagonal() - s.logsumexp(1)).mean() + math.log(n)
        # DV bound, the product of marginals from 16 cyclic shifts of y (O(n), as in MINE)
        shifts = [torch.roll(y, k, 0) for k in range(1, min(17, n))]
        joint = self.f(torch.cat([z, y], -1)).mean()
        prod = self.f(torch.cat([z.repeat(len(shifts), 1), torch.cat(shifts)], -1)).squeeze(-1)
        return joint - (prod.logsumexp(0) - math.log(prod.numel()))


def neural_method(kind: str, critic_steps: int):
    """A per-batch MI surrogate whose critic is trained at the current encoder first."""
    def fn(z, y, state):
        critic = state.get(kind)
        if critic is None:
            critic = state[kind] = Critic(kind)
            state[kind + "-opt"] = torch.optim.Adam(critic.parameters(), lr=1e-3)
        opt = state[kind + "-opt"]
        # the critic follows the encoder on fresh minibatches: warm-up steps at a new W, then
        # one step per encoder step, as in a training loop
        for _ in range(state.pop("warm", 1)):
            zf, yf = state["fresh"]()
            opt.zero_grad()
            (-critic.bound(zf, yf)).backward()
            opt.step()
        return torch.stack([critic.bound(z[i], y[i]) for i in range(z.shape[0])])
    fn.critic_steps = critic_steps
    return fn


def make_methods(net, names, critic_steps):
    ours = lambda debias: (lambda z, y, s: sliced_mi(  # noqa: E731
        z, y, model=net, reduction="none", debias=debias, generator=s["g"]))
    table = {"ours": ours(False), "ours-debias": ours(True), "gauss": lambda z, y, s: gauss_plugin(z, y),
             "copula": lambda z, y, s: gauss_plugin(normal_scores(z), normal_scores(y)),
             "hsic": lambda z, y, s: hsic(z, y), "infonce": neural_method("infonce", critic_steps),
             "mine": neural_method("mine", critic_steps)}
    return {k: table[k] for k in names}


# ----------------------------------------------------------------------------- experiments
def gradient_cosines(fn, w, b, sigma, n, batches, g, state, warm):
    true = torch.autograd.grad(gauss_mi(w.double(), b, sigma), w)[0].double().flatten()
    x, y = sample(b, sigma, batches, n, g)
    wb = w.detach().float().expand(batches, DZ, DX).clone().requires_grad_(True)
    state["fresh"] = lambda: _fresh(w, b, sigma, n, g)
    if warm and hasattr(fn, "critic_steps"):  # bring the critic to this W before timing
        state["warm"] = warm
        fn(x[:1].detach() @ w.detach().float().T, y[:1], state)
    state["warm"] = batches  # then one critic update per measured minibatch, as in training
    z = torch.einsum("bnd,bkd->bnk", x, wb)  # (B, n, DZ): each minibatch its own copy of W
    t0 = time.perf_counter()
    est = fn(z, y, state)
    grads = torch.autograd.grad(est.sum(), wb)[0].double().flatten(1)  # (B, DZ*DX)
    sec = (time.perf_counter() - t0) / batches
    cos = torch.nn.functional.cosine_similarity(grads, true[None], dim=1)
    mean_cos = float(torch.nn.functional.cosine_similarity(grads.mean(0), true, dim=0))
    return dict(cos=float(cos.mean()), cos_sd=float(cos.std()), cos_of_mean=mean_cos, seconds=sec)


def _fresh(w, b, sigma, n, g):
    x, y = sample(b, sigma, 1, n, g)
    return (x[0] @ w.detach().float().T), y[0]


def ascent(fn, b, sigma, n, steps, lr, g, state, warm):
    w = torch.randn(DZ, DX, generator=g).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    state["warm"] = warm
    state["fresh"] = lambda: _fresh(w, b, sigma, n, g)
    for _ in range(steps):
        x, y = sample(b, sigma, 1, n, g)
        opt.zero_grad()
        (-fn(x @ w.T, y, state).sum()).backward()
        opt.step()
        state["warm"] = 1
    return principal_angle(w.detach(), b)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ns", type=int, nargs="+", default=[64, 128, 256, 1024])
    p.add_argument("--mis", type=float, nargs="+", default=[0.1, 0.5, 1.0, 2.0])
    p.add_argument("--methods", nargs="+", default=["ours", "ours-debias", "gauss", "copula", "infonce", "mine", "hsic"])
    p.add_argument("--batches", type=int, default=32, help="minibatches per cosine cell")
    p.add_argument("--critic-warmup", type=int, default=300, help="critic steps at W before measuring")
    p.add_argument("--ascent-steps", type=int, default=150)
    p.add_argument("--ascent-lr", type=float, default=0.05)
    p.add_argument("--ascent-mi", type=float, default=0.5, help="MI of y with the whole informative subspace")
    p.add_argument("--weights", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="outputs/loss_gradients")
    a = p.parse_args(argv)
    if a.quick:
        a.ns, a.mis, a.batches, a.critic_warmup, a.ascent_steps = [64], [0.5], 4, 5, 3
    torch.set_num_threads(a.threads)
    net = load_weights(a.weights) if a.weights else load_pretrained()
    methods = make_methods(net, a.methods, a.critic_warmup)
    g0 = torch.Generator().manual_seed(a.seed)
    b = torch.linalg.qr(torch.randn(DX, DZ, generator=g0, dtype=torch.float64))[0].T  # (DZ, DX)
    w = torch.randn(DZ, DX, generator=g0).double().requires_grad_(True)
    rows = []
    for mi in a.mis:
        sigma = sigma_for(w.detach(), b, mi)
        for n in a.ns:
            for name, fn in methods.items():
                state = {"g": torch.Generator().manual_seed(a.seed + 1)}
                r = gradient_cosines(fn, w, b, sigma, n, a.batches,
                                     torch.Generator().manual_seed(a.seed + n), state, a.critic_warmup)
                rows.append(dict(mi=mi, n=n, method=name, **r))
                print(f"MI {mi:.2f} n {n:5d} {name:12s} cos {r['cos']:.3f} ± {r['cos_sd']:.3f} "
                      f"mean-grad cos {r['cos_of_mean']:.3f}  {1e3 * r['seconds']:.1f} ms/step", flush=True)
    sigma_all = sigma_for(b, b, a.ascent_mi)  # the whole informative subspace carries ascent_mi nats
    asc = []
    for n in a.ns:
        for name, fn in methods.items():
            state = {"g": torch.Generator().manual_seed(a.seed + 2)}
            ang = ascent(fn, b, sigma_all, n, a.ascent_steps, a.ascent_lr,
                         torch.Generator().manual_seed(a.seed + 3), state, a.critic_warmup)
            asc.append(dict(n=n, method=name, angle=ang))
            print(f"ascent n {n:5d} {name:12s} largest principal angle {ang:.1f} deg", flush=True)
    _write(a, argv, rows, asc)
    return dict(rows=rows, ascent=asc)


def _write(a, argv, rows, asc):
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(dict(rows=rows, ascent=asc, args=vars(a)), indent=1))
    names = list(dict.fromkeys(r["method"] for r in rows))
    head = "| MI | n | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names)
    cells = {}
    for r in rows:
        cells.setdefault((r["mi"], r["n"]), {})[r["method"]] = r
    body = "\n".join(f"| {mi:.2f} | {n} | " + " | ".join(
        f"{c[m]['cos']:.2f} ± {c[m]['cos_sd']:.2f} ({c[m]['cos_of_mean']:.2f})" for m in names) + " |"
        for (mi, n), c in cells.items())
    tcells = {}
    for r in rows:
        tcells.setdefault(r["n"], {}).setdefault(r["method"], []).append(1e3 * r["seconds"])
    times = "\n".join(f"| {n} | " + " | ".join(f"{sum(v[m]) / len(v[m]):.1f}" for m in names) + " |"
                      for n, v in tcells.items())
    acells = {}
    for r in asc:
        acells.setdefault(r["n"], {})[r["method"]] = r["angle"]
    angles = "\n".join(f"| {n} | " + " | ".join(f"{v[m]:.1f}" for m in names) + " |" for n, v in acells.items())
    cmd = "python -m benchmarks.loss_gradients " + " ".join(sys.argv[1:] if argv is None else argv)
    (out / "results.md").write_text(
        f"# Gradient quality: linear encoder 8 -> 3 on Gaussians\n\n`{cmd.strip()}`\n\n"
        f"Per-minibatch cosine with the closed-form gradient of I(Wx; y): mean ± sd over "
        f"{a.batches} minibatches (cosine of the mean gradient in brackets).\n\n{head}\n{body}\n\n"
        f"Time per step (ms, forward + backward; neural methods include one critic update):\n\n"
        f"| n | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + f"\n{times}\n\n"
        f"Largest principal angle (degrees) between W and the informative subspace after "
        f"{a.ascent_steps} Adam steps (lr {a.ascent_lr}) from a random W, y carrying "
        f"{a.ascent_mi} nats:\n\n| n | " + " | ".join(names) + " |\n|---|" + "---|" * len(names)
        + f"\n{angles}\n")


if __name__ == "__main__":
    main()
