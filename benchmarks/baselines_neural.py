"""Trained-per-dataset neural MI baselines: MINE and InfoNCE (all estimates in nats).

Protocol (paper App. A.5): a fresh critic per dataset, trained for up to ``epochs``
epochs (paper: 2000) with Adam at a fixed learning rate (here 1e-3, stated because the
paper's value is not legible in our copy), early stopping once the held-out estimate has
not improved for ``patience`` epochs (paper: 100).  The data are split once into a
training part and a held-out part (``holdout`` fraction, default 20 %); both are z-scored
with the training statistics.  The reported estimate is the held-out estimate of the
best epoch's critic.  Choosing the best epoch on the same held-out split biases it up a
little (max of noisy values); with a few hundred held-out samples this is ~0.01-0.05 nats.

* **MINE** (Belghazi et al., 2018): Donsker-Varadhan bound
  I >= E_P[T] - log E_{P_X P_Y}[e^T], product samples by shuffling y in the minibatch.
  The gradient of the log term is bias-corrected with an exponential moving average of
  the denominator (rate ``ema``): the loss uses E[e^T] / ma with ma detached, whose
  gradient is E[grad T e^T] / ma instead of the biased minibatch ratio.
* **InfoNCE** (van den Oord et al., 2018): I >= E[T(x_i, y_i) - logsumexp_j T(x_i, y_j)]
  + log B over minibatches of B pairs (bounded by log B).

Critic: an MLP on the concatenation (x, y) -> scalar, ReLU, ``hidden`` widths (default
(64, 64); ``hidden=(128, 128)`` for the wider variant).  For the B x B score matrix the
first layer is split as W_x x + W_y y + b, the same function as the concatenated MLP,
evaluated without materialising B^2 concatenated inputs.

    python -m benchmarks.baselines_neural --n 2000 --rho 0.6 --dim 2
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from infoatlas_loss.integrations.mine import mine_bound

LR = 1e-3


class ConcatCritic(nn.Module):
    """T(x, y) = MLP([x, y]).  x (..., dx), y (..., dy) -> (...)."""

    def __init__(self, dx: int, dy: int, hidden: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.first = nn.Linear(dx + dy, hidden[0])
        layers: list[nn.Module] = []
        for a, b in zip(hidden[:-1], hidden[1:]):
            layers += [nn.ReLU(), nn.Linear(a, b)]
        self.rest = nn.Sequential(*layers, nn.ReLU(), nn.Linear(hidden[-1], 1))
        self.dx = dx

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(torch.cat([x, y], dim=-1))).squeeze(-1)

    def pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores of every pair: x (B, dx), y (B, dy) -> (B, B) with [i, j] = T(x_i, y_j)."""
        w, b = self.first.weight, self.first.bias
        hx = x @ w[:, :self.dx].T + b  # (B, h)
        hy = y @ w[:, self.dx:].T      # (B, h)
        return self.rest(hx[:, None, :] + hy[None, :, :]).squeeze(-1)


@dataclass
class NeuralResult:
    """Held-out estimate (nats), training wall time (s) and how training ended."""

    mi: float
    seconds: float
    epochs: int
    best_epoch: int
    stopped_early: bool
    method: str


def dv_estimate(critic: ConcatCritic, x: torch.Tensor, y: torch.Tensor,
                shifts: int = 8) -> torch.Tensor:
    """DV bound on a fixed sample: mean T(x, y) - log mean e^{T(x, y_shifted)}.

    Product-of-marginals pairs come from ``shifts`` cyclic shifts of y (deterministic,
    so the held-out curve is not noisy from re-shuffling).  x (n, dx), y (n, dy) -> 0-dim.
    """
    n = len(x)
    joint = critic(x, y).mean()
    offs = np.unique(np.linspace(1, n - 1, shifts).astype(int))
    marg = torch.cat([critic(x, torch.roll(y, int(s), 0)) for s in offs])
    return joint - (torch.logsumexp(marg, 0) - math.log(len(marg)))


def nce_estimate(critic: ConcatCritic, x: torch.Tensor, y: torch.Tensor,
                 batch: int) -> torch.Tensor:
    """InfoNCE on a fixed sample, averaged over consecutive blocks of ``batch`` pairs."""
    vals, weights = [], []
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        if len(xb) < 2:
            continue
        s = critic.pairwise(xb, yb)
        vals.append((s.diag() - torch.logsumexp(s, 1)).mean() + math.log(len(xb)))
        weights.append(len(xb))
    w = torch.tensor(weights, dtype=torch.float32)
    return (torch.stack(vals) * w).sum() / w.sum()


def _split(x, y, holdout: float, rng: np.random.Generator):
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    y = np.asarray(y, np.float32).reshape(len(y), -1)
    idx = rng.permutation(len(x))
    nv = max(2, int(round(holdout * len(x))))
    tr, va = idx[nv:], idx[:nv]
    mx, sx = x[tr].mean(0), x[tr].std(0) + 1e-8
    my, sy = y[tr].mean(0), y[tr].std(0) + 1e-8
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return (t((x[tr] - mx) / sx), t((y[tr] - my) / sy),
            t((x[va] - mx) / sx), t((y[va] - my) / sy))


def train_estimator(x, y, method: str = "mine", *, epochs: int = 2000, patience: int = 100,
                    lr: float = LR, batch_size: int | None = None,
                    hidden: tuple[int, ...] = (64, 64), holdout: float = 0.2,
                    ema: float = 0.01, seed: int = 0, progress: bool = False
                    ) -> NeuralResult:
    """Train a fresh critic on (x, y) and return its held-out MI estimate in nats.

    Args:
        x: (n, dx) samples; y: (n, dy) samples (numpy or torch).
        method: ``"mine"`` or ``"infonce"``.
        epochs: maximum passes over the training split (paper: 2000).
        patience: stop after this many epochs without a better held-out estimate (paper: 100).
        lr: Adam learning rate (fixed; default 1e-3).
        batch_size: minibatch size (default 256 for MINE, 128 for InfoNCE).
        hidden: critic hidden widths.
        holdout: fraction of samples held out for early stopping and the estimate.
        ema: moving-average rate of MINE's bias-corrected gradient.
        seed: seeds the split, the initialisation and the minibatch order.

    Returns:
        ``NeuralResult``: held-out estimate at the best epoch, seconds (whole training).
    """
    if method not in ("mine", "infonce"):
        raise ValueError(f"method must be 'mine' or 'infonce', got {method!r}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    xt, yt, xv, yv = _split(x, y, holdout, rng)
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        critic = ConcatCritic(xt.shape[1], yt.shape[1], tuple(hidden))
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    bs = min(batch_size or (256 if method == "mine" else 128), len(xt))
    log_ma = None  # log of MINE's moving average of E[e^T]

    def heldout() -> float:
        with torch.no_grad():
            v = dv_estimate(critic, xv, yv) if method == "mine" else nce_estimate(critic, xv, yv, bs)
        return float(v)

    best, best_epoch, best_state, ep = -math.inf, 0, None, 0
    bar = tqdm(range(1, epochs + 1), desc=method, leave=False, disable=not progress)
    for ep in bar:
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt) - bs + 1, bs):
            xb, yb = xt[perm[i:i + bs]], yt[perm[i:i + bs]]
            if method == "mine":
                bound, log_ma = mine_bound(critic(xb, yb), critic(xb, yb[torch.randperm(bs, generator=g)]),
                                           log_ma, ema)
                loss = -bound
            else:
                s = critic.pairwise(xb, yb)
                loss = -(s.diag() - torch.logsumexp(s, 1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        v = heldout()
        if v > best:
            best, best_epoch = v, ep
            best_state = {k: t.clone() for k, t in critic.state_dict().items()}
        bar.set_postfix(heldout=f"{v:.3f}", best=f"{best:.3f}")
        if ep - best_epoch >= patience:
            break
    if best_state is not None:
        critic.load_state_dict(best_state)
    return NeuralResult(mi=heldout(), seconds=time.perf_counter() - t0, epochs=ep,
                        best_epoch=best_epoch, stopped_early=ep < epochs, method=method)


def mine(x, y, **kw) -> NeuralResult:
    """MINE (DV bound, moving-average gradient correction); see ``train_estimator``."""
    return train_estimator(x, y, "mine", **kw)


def infonce(x, y, **kw) -> NeuralResult:
    """InfoNCE; see ``train_estimator``."""
    return train_estimator(x, y, "infonce", **kw)


def main(argv=None) -> list[dict]:
    """Demo on a correlated Gaussian with known MI: prints MINE and InfoNCE estimates."""
    p = argparse.ArgumentParser(description="MINE / InfoNCE on a correlated Gaussian")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--dim", type=int, default=1, help="pairs of correlated coordinates")
    p.add_argument("--rho", type=float, default=0.6)
    p.add_argument("--epochs", type=int, default=2000)
    p.add_argument("--patience", type=int, default=100)
    p.add_argument("--lr", type=float, default=LR)
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="critic widths")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="n = 500, at most 20 epochs, patience 5")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.epochs, a.patience = min(a.n, 500), min(a.epochs, 20), min(a.patience, 5)
    if a.threads:
        torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    x = rng.standard_normal((a.n, a.dim))
    y = a.rho * x + math.sqrt(1 - a.rho ** 2) * rng.standard_normal((a.n, a.dim))
    truth = -0.5 * a.dim * math.log(1 - a.rho ** 2)
    rows = []
    for m in ("mine", "infonce"):
        r = train_estimator(x, y, m, epochs=a.epochs, patience=a.patience, lr=a.lr,
                            hidden=tuple(a.hidden), seed=a.seed, progress=True)
        rows.append(asdict(r) | {"truth": truth})
        print(f"{m:8s} estimate {r.mi:.3f}  truth {truth:.3f}  {r.seconds:.1f}s  "
              f"epochs {r.epochs} (best {r.best_epoch})")
    return rows


if __name__ == "__main__":
    main()
