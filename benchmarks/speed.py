"""Wall time (s) and peak memory (MiB) of InfoAtlas against KSG, CCA, MINE and InfoNCE.

    python -m benchmarks.speed --quick
    python -m benchmarks.speed --threads 8            # full: paper protocol for MINE/InfoNCE

(a) One estimate at n=5000 on x ~ N(0, I_d), y = rho x + sqrt(1 - rho^2) e (true MI
    -d/2 log(1 - rho^2) nats), d = 1..5, every method in this process with
    ``torch.set_num_threads(--threads)``; fast methods are timed as the median of
    ``--repeats`` calls after one warm-up, MINE/InfoNCE once (their time is the whole
    training).  Ratios are computed within the run: InfoAtlas speed-up over MINE and
    InfoNCE (t_method / t_InfoAtlas) and the InfoAtlas / KSG time ratio.
(b) InfoAtlas scaling in n (d=5, n = 1000 ... 100000; KSG up to ``--ksg-max-n``) and in
    dimension through slicing (d = 16 ... 1024, ``--num-slices`` slices of k = max_dim,
    n = ``--slice-n``).  Peak memory = peak resident set size growth over the call,
    sampled every 2 ms from /proc/self/statm by a background thread (runs go in increasing
    size so memory the allocator keeps from an earlier run does not hide a later peak).
(c) One training step with the loss: forward + backward of ``SlicedMILoss`` on two
    (B, D) embedding batches (B in {256, 512}, D in {32, 128}; D > max_dim is sliced)
    against forward + backward of a small MLP encoder (D -> 256 -> 256 -> D) on the same
    batch; median of ``--repeats`` after a warm-up.

Writes ``speed.json``, ``speed.md`` and ``speed.png`` into ``--out``.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .baselines import gaussian_mi, ksg
from .baselines_neural import train_estimator
from .common import PeakRSS, env_info, fmt_table, base_parser, log, pyplot, setup, write_outputs

RHO = 0.5


def gaussian_pair(n: int, d: int, rho: float = RHO, seed: int = 0):
    """x (n, d), y (n, d) with corr(x_i, y_i) = rho, and the true MI in nats."""
    rng = np.random.default_rng([seed, d, n])
    x = rng.standard_normal((n, d))
    y = rho * x + math.sqrt(1 - rho ** 2) * rng.standard_normal((n, d))
    return x, y, -0.5 * d * math.log(1 - rho ** 2)


def timed(f, repeats: int = 1, warmup: bool = False):
    """(last value, median seconds over ``repeats`` calls)."""
    if warmup:
        f()
    ts, v = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        v = f()
        ts.append(time.perf_counter() - t0)
    return v, statistics.median(ts)


def part_a(model, a) -> list[dict]:
    """One estimate per method and dimension; rows with estimate (nats) and seconds."""
    from infoatlas_loss import estimate_mi

    methods = {
        "InfoAtlas": (lambda x, y: estimate_mi(x, y, model=model).mi, a.repeats, True),
        "KSG": (lambda x, y: ksg(x, y, k=10), a.repeats, False),
        "CCA": (lambda x, y: gaussian_mi(x, y), a.repeats, False),
    }
    for m in ("mine", "infonce") if not a.skip_neural else ():
        methods["MINE" if m == "mine" else "InfoNCE"] = (
            lambda x, y, m=m: train_estimator(x, y, m, epochs=a.neural_epochs,
                                              patience=a.neural_patience).mi, 1, False)
    if not a.skip_neural:  # warm-up: first-call costs of autograd/Adam are not training time
        xw, yw, _ = gaussian_pair(64, 1)
        for m in ("mine", "infonce"):
            train_estimator(xw, yw, m, epochs=1, patience=1)
    rows = []
    for d in tqdm(a.dims, desc="(a) dims"):
        x, y, truth = gaussian_pair(a.n, d)
        for name, (f, r, w) in methods.items():
            v, s = timed(lambda: f(x, y), r, w)
            rows.append(dict(dim=d, n=a.n, method=name, estimate=float(v), truth=truth, seconds=s))
    return rows


def ratios(rows: list[dict]) -> dict:
    """Per dim and geometric mean: t_MINE/t_IA, t_InfoNCE/t_IA, t_IA/t_KSG."""
    t = {(r["dim"], r["method"]): r["seconds"] for r in rows}
    dims = sorted({r["dim"] for r in rows})
    out = {}
    for key, (num, den) in {"speedup_vs_MINE": ("MINE", "InfoAtlas"),
                            "speedup_vs_InfoNCE": ("InfoNCE", "InfoAtlas"),
                            "InfoAtlas_over_KSG": ("InfoAtlas", "KSG")}.items():
        per = {d: t[d, num] / t[d, den] for d in dims if (d, num) in t and (d, den) in t}
        if per:
            out[key] = dict(per_dim=per, geomean=float(np.exp(np.mean(np.log(list(per.values()))))))
    return out


def part_b(model, a) -> dict:
    """Seconds and peak RSS growth (MiB) vs n (d=5) and vs d (sliced)."""
    from infoatlas_loss import estimate_mi

    d0 = min(5, model.config.max_dim)
    by_n = []
    for n in tqdm(sorted(a.ns), desc="(b) n"):
        x, y, _ = gaussian_pair(n, d0)
        with PeakRSS() as mem:
            _, s = timed(lambda: estimate_mi(x, y, model=model))
        row = dict(n=n, dim=d0, seconds=s, peak_mib=mem.peak)
        if n <= a.ksg_max_n:
            with PeakRSS() as mk:
                _, row["ksg_seconds"] = timed(lambda: ksg(x, y))
            row["ksg_peak_mib"] = mk.peak
        by_n.append(row)
    by_d = []
    for d in tqdm(sorted(a.slice_dims), desc="(b) d"):
        x, y, _ = gaussian_pair(a.slice_n, d)
        with PeakRSS() as mem:
            _, s = timed(lambda: estimate_mi(x, y, model=model, num_slices=a.num_slices))
        by_d.append(dict(dim=d, n=a.slice_n, num_slices=a.num_slices,
                         slice_dim=model.config.max_dim, seconds=s, peak_mib=mem.peak))
    return dict(by_n=by_n, by_dim=by_d)


def encoder(d: int) -> nn.Module:
    """The reference network: a small MLP encoder D -> 256 -> 256 -> D."""
    return nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, d))


def part_c(model, a) -> list[dict]:
    """Milliseconds of forward+backward: SlicedMILoss vs the MLP encoder, same batch."""
    from infoatlas_loss import SlicedMILoss

    loss_fn = SlicedMILoss(model, num_slices=a.loss_slices,
                           generator=torch.Generator().manual_seed(0))
    rows = []
    for b in a.batches:
        for d in a.emb_dims:
            g = torch.Generator().manual_seed(b * 1000 + d)
            z1 = torch.randn(b, d, generator=g)
            z2 = 0.6 * z1 + 0.8 * torch.randn(b, d, generator=g)
            enc = encoder(d)

            def step_loss():
                x, y = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
                (-loss_fn(x, y)).backward()

            def step_mlp():
                enc.zero_grad(set_to_none=True)
                enc(z1).pow(2).mean().backward()

            _, tl = timed(step_loss, a.repeats, True)
            _, tm = timed(step_mlp, a.repeats, True)
            rows.append(dict(batch=b, dim=d, num_slices=a.loss_slices if d > model.config.max_dim else 1,
                             loss_ms=1e3 * tl, mlp_ms=1e3 * tm, ratio=tl / tm))
    return rows


def plot(res: dict, path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.8))
    for m in dict.fromkeys(r["method"] for r in res["a"]):
        rs = [r for r in res["a"] if r["method"] == m]
        ax[0].plot([r["dim"] for r in rs], [r["seconds"] for r in rs], "o-", label=m)
    ax[0].set(yscale="log", xlabel="dim of x and y", ylabel="seconds / estimate",
              title=f"(a) n={res['config']['n']}, {res['env']['torch_threads']} threads")
    ax[0].legend(fontsize=7)
    bn = res["b"]["by_n"]
    ax[1].plot([r["n"] for r in bn], [r["seconds"] for r in bn], "o-", label="InfoAtlas s")
    kn = [r for r in bn if "ksg_seconds" in r]
    ax[1].plot([r["n"] for r in kn], [r["ksg_seconds"] for r in kn], "s--", label="KSG s")
    ax[1].set(xscale="log", yscale="log", xlabel="n", ylabel="seconds", title="(b) scaling in n")
    ax1b = ax[1].twinx()
    ax1b.plot([r["n"] for r in bn], [r["peak_mib"] for r in bn], "^:", c="gray", label="InfoAtlas MiB")
    ax1b.set_ylabel("peak RSS growth (MiB)")
    ax[1].legend(fontsize=7, loc="upper left")
    bd = res["b"]["by_dim"]
    ax[2].plot([r["dim"] for r in bd], [r["seconds"] for r in bd], "o-")
    ax[2].set(xscale="log", yscale="log", xlabel="d (sliced)", ylabel="seconds",
              title=f"(b) slicing, {bd[0]['num_slices'] if bd else ''} slices" if bd else "(b)")
    ax2b = ax[2].twinx()
    ax2b.plot([r["dim"] for r in bd], [r["peak_mib"] for r in bd], "^:", c="gray")
    ax2b.set_ylabel("peak RSS growth (MiB)")
    c = res["c"]
    lab = [f"B{r['batch']}/D{r['dim']}" for r in c]
    xs = np.arange(len(c))
    ax[3].bar(xs - 0.2, [r["loss_ms"] for r in c], 0.4, label="SlicedMILoss")
    ax[3].bar(xs + 0.2, [r["mlp_ms"] for r in c], 0.4, label="MLP encoder")
    ax[3].set(xticks=xs, yscale="log", ylabel="ms (fwd+bwd)", title="(c) training step")
    ax[3].set_xticklabels(lab, fontsize=7)
    ax[3].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tables(res: dict, md: bool) -> str:
    f = lambda v: f"{v:.3g}"  # noqa: E731
    meths = list(dict.fromkeys(r["method"] for r in res["a"]))
    t = {(r["dim"], r["method"]): r for r in res["a"]}
    dims = sorted({r["dim"] for r in res["a"]})
    ra = [[d, f"{t[d, meths[0]]['truth']:.3f}"] + [f"{t[d, m]['estimate']:.3f} / {f(t[d, m]['seconds'])}s"
                                                   for m in meths] for d in dims]
    out = ["(a) estimate (nats) / seconds per estimate, n=%d" % res["config"]["n"],
           fmt_table(["dim", "true MI"] + meths, ra, md)]
    rr = [[k, f"{v['geomean']:.3g}", ", ".join(f"d{d}: {f(x)}" for d, x in v["per_dim"].items())]
          for k, v in res["ratios"].items()]
    if rr:
        out += ["", "ratios within this run (geometric mean over dims)",
                fmt_table(["ratio", "geomean", "per dim"], rr, md)]
    bn = [[r["n"], f(r["seconds"]), f"{r['peak_mib']:.1f}", f(r.get("ksg_seconds", float("nan")))]
          for r in res["b"]["by_n"]]
    out += ["", "(b) InfoAtlas vs n (d=%d)" % (res["b"]["by_n"][0]["dim"] if bn else 0),
            fmt_table(["n", "seconds", "peak MiB", "KSG seconds"], bn, md)]
    bd = [[r["dim"], r["num_slices"], r["slice_dim"], r["n"], f(r["seconds"]), f"{r['peak_mib']:.1f}"]
          for r in res["b"]["by_dim"]]
    out += ["", "(b) InfoAtlas vs dimension (sliced)",
            fmt_table(["d", "slices", "k", "n", "seconds", "peak MiB"], bd, md)]
    rc = [[r["batch"], r["dim"], r["num_slices"], f(r["loss_ms"]), f(r["mlp_ms"]), f"{r['ratio']:.1f}x"]
          for r in res["c"]]
    out += ["", "(c) forward+backward per training step (ms)",
            fmt_table(["batch", "dim", "slices", "SlicedMILoss", "MLP encoder", "loss/MLP"], rc, md)]
    return "\n".join(out)


def parse(argv) -> argparse.Namespace:
    p = base_parser("speed", __doc__, "few neural epochs, n <= 10000, d <= 64")
    p.add_argument("--n", type=int, default=5000, help="(a) samples per estimate")
    p.add_argument("--dims", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--repeats", type=int, default=None, help="timing repeats (default 3, quick 1)")
    p.add_argument("--neural-epochs", type=int, default=None, help="default 2000, quick 3")
    p.add_argument("--neural-patience", type=int, default=None, help="default 100, quick 3")
    p.add_argument("--skip-neural", action="store_true", help="no MINE / InfoNCE in (a)")
    p.add_argument("--ns", type=int, nargs="+", default=None)
    p.add_argument("--ksg-max-n", type=int, default=30000)
    p.add_argument("--slice-dims", type=int, nargs="+", default=None)
    p.add_argument("--slice-n", type=int, default=None, help="default 10000, quick 5000")
    p.add_argument("--num-slices", type=int, default=None, help="(b) default 128, quick 32")
    p.add_argument("--batches", type=int, nargs="+", default=[256, 512])
    p.add_argument("--emb-dims", type=int, nargs="+", default=[32, 128])
    p.add_argument("--loss-slices", type=int, default=64, help="(c) SlicedMILoss num_slices")
    a = p.parse_args(argv)
    q = a.quick
    a.repeats = a.repeats or (1 if q else 3)
    a.neural_epochs = a.neural_epochs or (3 if q else 2000)
    a.neural_patience = a.neural_patience or (3 if q else 100)
    a.ns = a.ns or ([1000, 3000, 10000] if q else [1000, 3000, 10000, 30000, 100000])
    a.slice_dims = a.slice_dims or ([16, 64] if q else [16, 64, 256, 1024])
    a.slice_n = a.slice_n or (5000 if q else 10000)
    a.num_slices = a.num_slices or (32 if q else 128)
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    model = setup(a)
    res = dict(config={k: v for k, v in vars(a).items()}, env=env_info())
    log(f"speed: torch threads {torch.get_num_threads()}, max_dim {model.config.max_dim}")
    res["a"] = part_a(model, a)
    res["ratios"] = ratios(res["a"])
    res["b"] = part_b(model, a)
    res["c"] = part_c(model, a)
    text = tables(res, md=False)
    print(text)
    md = (f"# Speed (torch threads = {res['env']['torch_threads']}, "
          f"{res['env']['cpu_count']} CPUs; seconds, MiB, nats)\n\n" + tables(res, md=True))
    out = write_outputs(a.out, "speed", res, md)
    plot(res, out / "speed.png")
    log(f"wrote {out}/speed.json, speed.md, speed.png")
    return res


if __name__ == "__main__":
    main()
