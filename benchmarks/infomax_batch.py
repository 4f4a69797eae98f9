"""Two-view InfoMax on digits at batch sizes 64-512, against InfoNCE, VICReg, Barlow Twins and MINE.

    python -m benchmarks.infomax_batch               # reported run: 4 batch sizes x 5 methods x 3 seeds
    python -m benchmarks.infomax_batch --ablation    # held-out configuration: InfoMax settings
    python -m benchmarks.infomax_batch --quick       # smoke run (seconds)

Data: scikit-learn digits (8x8, pixels / 16), a stratified 75 / 25 split.  Views: shift by
up to ``--shift`` pixels in each direction (zero border), Gaussian pixel noise (sd
``--noise``) and pixel masking (probability ``--mask``), all drawn from a torch.Generator.
Every method trains the same MLP encoder (64 -> 128 -> ``--z-dim``, GELU, same
initialisation per seed) on the same batches and views for the same number of steps with
Adam; only the loss differs (MINE also trains its critic, a second set of parameters, with
the same optimiser).  The frozen features of the clean images are scored by a linear probe
(standardised features, LogisticRegression; fit on the training split, accuracy on the
test split).  Also reported: the time per step (forward, backward, Adam step; one thread
unless ``--threads``), the training wall time, the effective rank of the test features
(exp of the PCA-spectrum entropy) and the MI bound or estimate each MI method ends at
(nats, mean of the last 20 steps; InfoNCE's is at most log n).

``--ablation`` runs a held-out configuration (other seeds, another split, stronger
augmentation) at n = 64 and 128 with InfoMax variants (debias, slices, whitening, learning
rate) and InfoNCE temperatures, away from the reported seeds, split and augmentation; the
reported run keeps the defaults (16 slices, whitening, lr 1e-3, temperature 0.2).  Runs
split over seeds (``--seeds 1 --out A``, ...) are tabulated together with ``--merge
A/runs_so_far.json ...``; a (seed, batch, method) run gives the same probe accuracy in any
invocation on the same machine.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from infoatlas_loss.integrations.representation import InfoMax

from .common import env_info, fmt_table, load_model, log, pyplot
from .infomax_anchors import MINE, BarlowTwins, InfoNCE, VICReg

METHODS = ("InfoMax", "InfoNCE", "VICReg", "Barlow", "MINE")


@dataclass(frozen=True)
class Setting:
    """One trainable configuration: the loss and its knobs (InfoMax's apply to InfoMax only)."""

    method: str
    label: str = ""
    lr: float = 1e-3
    num_slices: int = 16
    whiten: bool = True
    debias: bool = False
    temperature: float = 0.2


@dataclass(frozen=True)
class Run:
    """One trained encoder: probe accuracy (fraction), timings (ms, s), bound (nats or None)."""

    label: str
    batch: int
    seed: int
    probe_acc: float
    effective_rank: float
    ms_per_step: float
    wall_s: float
    final_bound: float | None


def load_split(split_seed: int, limit: int | None = None) -> dict:
    """Digits as float32 (n, 64) in [0, 1], split 75 / 25 stratified by ``split_seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x, y = d.data.astype(np.float32)[:limit] / 16.0, d.target[:limit]
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=split_seed, stratify=y)
    return {"x_train": torch.from_numpy(xtr), "y_train": ytr, "x_test": torch.from_numpy(xte),
            "y_test": yte}


def augment(x: torch.Tensor, shift: int, noise: float, mask: float, g: torch.Generator) -> torch.Tensor:
    """A random view of images x (n, 64): shift, Gaussian noise, pixel masking -> (n, 64)."""
    n = x.shape[0]
    img = nn.functional.pad(x.view(n, 8, 8), (shift,) * 4)  # (n, 8 + 2s, 8 + 2s), zero border
    off = torch.randint(0, 2 * shift + 1, (n, 2), generator=g)  # top-left corner of the crop
    r = (off[:, :1] + torch.arange(8))[:, :, None]  # (n, 8, 1)
    c = (off[:, 1:] + torch.arange(8))[:, None, :]  # (n, 1, 8)
    v = img[torch.arange(n)[:, None, None], r, c].reshape(n, 64)
    v = v + noise * torch.randn(v.shape, generator=g)
    return v * (torch.rand(v.shape, generator=g) >= mask).to(v.dtype)


def make_encoder(seed: int, z_dim: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    enc = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, z_dim))
    with torch.no_grad():  # nn.Linear's default init, drawn from a seeded generator
        for m in (enc[0], enc[2]):
            bound = 1 / math.sqrt(m.in_features)
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 2 * bound - bound)
            m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 2 * bound - bound)
    return enc


def make_loss(s: Setting, z_dim: int, model, seed: int) -> nn.Module:
    if s.method == "InfoMax":
        loss = InfoMax(model, num_slices=s.num_slices, whiten=s.whiten,
                       generator=torch.Generator().manual_seed(seed + 7))
        loss.mi.debias = s.debias  # the permutation-null estimate subtracted in the same pass
        return loss
    if s.method == "MINE":
        with torch.random.fork_rng():  # ConcatCritic takes no generator; keep the global RNG
            torch.manual_seed(seed + 7)
            return MINE(z_dim, generator=torch.Generator().manual_seed(seed + 7))
    plain = {"InfoNCE": lambda: InfoNCE(s.temperature), "VICReg": VICReg, "Barlow": BarlowTwins}
    if s.method not in plain:
        raise ValueError(f"unknown method {s.method!r}; expected one of {METHODS}")
    return plain[s.method]()


def effective_rank(f: np.ndarray) -> float:
    """exp(entropy) of the normalised PCA spectrum of features f (n, d): 1 to d."""
    ev = np.linalg.svd(f - f.mean(0), compute_uv=False) ** 2
    p = ev[ev > 0] / ev.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def probe(enc: nn.Module, data: dict, max_iter: int) -> tuple[float, float]:
    """Linear-probe test accuracy (fraction) and effective rank of the frozen test features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with torch.no_grad():
        ftr, fte = enc(data["x_train"]).numpy(), enc(data["x_test"]).numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    return float(clf.fit(ftr, data["y_train"]).score(fte, data["y_test"])), effective_rank(fte)


def train(s: Setting, batch: int, seed: int, data: dict, model, a) -> Run:
    """Train one encoder for ``a.steps`` steps; the views depend on (seed, batch) only."""
    enc = make_encoder(seed, a.z_dim)
    loss_fn = make_loss(s, a.z_dim, model, seed)
    opt = torch.optim.Adam(list(enc.parameters()) + list(loss_fn.parameters()), lr=s.lr)
    g = torch.Generator().manual_seed(1000 * seed + batch)  # same batches and views for all
    x, times, bounds = data["x_train"], [], []
    t_start = time.perf_counter()
    for _ in range(a.steps):
        xb = x[torch.randperm(len(x), generator=g)[:batch]]
        v1, v2 = (augment(xb, a.shift, a.noise, a.mask, g) for _ in range(2))
        t0 = time.perf_counter()
        loss = loss_fn(enc(v1), enc(v2))
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        b = float(loss_fn.last_mi) if s.method == "InfoMax" else loss_fn.last_bound
        bounds.append(b)
    wall = time.perf_counter() - t_start
    acc, rank = probe(enc.eval(), data, 200 if a.quick else 2000)
    tail = [b for b in bounds[-20:] if b is not None]
    return Run(s.label or s.method, batch, seed, acc, rank, 1000 * float(np.median(times)), wall,
               float(np.mean(tail)) if tail else None)


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean (nan for a single value)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def summarise(runs: list[Run], labels: list[str], batches: list[int]) -> list[dict]:
    """Mean and standard error over seeds for every (label, batch)."""
    rows = []
    for lab in labels:
        for n in batches:
            rs = [r for r in runs if r.label == lab and r.batch == n]
            acc, se = mean_se([100 * r.probe_acc for r in rs])
            fb = [r.final_bound for r in rs if r.final_bound is not None]
            rows.append({"method": lab, "batch": n, "seeds": len(rs), "probe_acc": acc,
                         "probe_se": se, "effective_rank": float(np.mean([r.effective_rank for r in rs])),
                         "ms_per_step": float(np.mean([r.ms_per_step for r in rs])),
                         "wall_s": float(np.mean([r.wall_s for r in rs])),
                         "final_bound": float(np.mean(fb)) if fb else None})
    return rows


def table(rows: list[dict]) -> str:
    head = ["method", "batch n", "probe acc (%)", "± se", "eff. rank", "ms / step",
            "train wall (s)", "MI bound / estimate at end (nats)", "log n"]
    body = [[r["method"], r["batch"], f"{r['probe_acc']:.1f}", f"{r['probe_se']:.1f}",
             f"{r['effective_rank']:.1f}", f"{r['ms_per_step']:.1f}", f"{r['wall_s']:.1f}",
             "–" if r["final_bound"] is None else f"{r['final_bound']:.2f}",
             f"{math.log(r['batch']):.2f}"] for r in rows]
    return fmt_table(head, body, md=True)


def plot(rows: list[dict], labels: list[str], path: Path, title: str, untrained: float) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.8, 4))
    for lab in labels:
        rs = [r for r in rows if r["method"] == lab]
        ax.errorbar([r["batch"] for r in rs], [r["probe_acc"] for r in rs],
                    yerr=[r["probe_se"] for r in rs], marker="o", capsize=3, label=lab)
    ax.axhline(untrained, color="k", ls="--", lw=0.8, label="untrained encoder")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({r["batch"] for r in rows}), [str(n) for n in sorted({r["batch"] for r in rows})])
    ax.set(xlabel="batch size n", ylabel="linear-probe test accuracy (%)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def settings(a) -> list[Setting]:
    """The reported run's methods, or the held-out ablation's variants."""
    if not a.ablation:
        return [Setting(m, lr=a.lr, num_slices=a.num_slices, whiten=not a.no_whiten,
                        debias=a.debias, temperature=a.temperature) for m in METHODS]
    base = Setting("InfoMax", "InfoMax (16 slices, lr 1e-3)")
    return [base, replace(base, label="InfoMax debias", debias=True),
            replace(base, label="InfoMax 64 slices", num_slices=64),
            replace(base, label="InfoMax no whitening", whiten=False),
            replace(base, label="InfoMax lr 3e-3", lr=3e-3)] + [
        Setting("InfoNCE", f"InfoNCE t={t}", temperature=t) for t in (0.1, 0.2, 0.5)]


def merged(paths: list[str]) -> tuple[list[Run], list[str]]:
    """Runs saved by separate invocations (their runs_so_far.json), first of each kept."""
    runs, cmds, seen = [], [], set()
    for p in paths:
        saved = json.loads(Path(p).read_text())
        cmds.append(saved["cmd"])
        for r in map(lambda d: Run(**d), saved["runs"]):
            if (r.label, r.batch, r.seed) not in seen:
                seen.add((r.label, r.batch, r.seed))
                runs.append(r)
    return runs, cmds


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="estimator safetensors (default: shipped)")
    p.add_argument("--out", default=None, help="default outputs/infomax_batch[_ablation]")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke run: 3 steps, 300 images, 1 seed")
    p.add_argument("--ablation", action="store_true", help="held-out configuration, variants")
    p.add_argument("--merge", nargs="+", default=None,
                   help="no training: tabulate the runs_so_far.json of runs split over seeds")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batches", type=int, nargs="+", default=None, help="default 64 128 256 512")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2")
    p.add_argument("--z-dim", type=int, default=16)
    p.add_argument("--shift", type=int, default=1, help="pixels (views)")
    for flag, what in (("--noise", "pixel noise sd"), ("--mask", "pixel masking probability")):
        p.add_argument(flag, type=float, default=0.1, help=f"{what} (views)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--num-slices", type=int, default=16, help="InfoMax slices per step")
    p.add_argument("--no-whiten", action="store_true", help="InfoMax without whitening")
    p.add_argument("--debias", action="store_true", help="InfoMax with debias")
    p.add_argument("--temperature", type=float, default=0.2, help="InfoNCE temperature")
    a = p.parse_args(argv)
    if a.ablation:  # the held-out configuration: other seeds, split and augmentation strength
        a.seeds, a.split_seed, a.noise, a.mask = a.seeds or [100, 101], 1, 0.2, 0.2
        a.batches = a.batches or [64, 128]
    a.seeds, a.batches = a.seeds or [0, 1, 2], a.batches or [64, 128, 256, 512]
    if a.quick:
        a.steps, a.seeds, a.batches, a.num_slices = 3, a.seeds[:1], [32, 64], min(a.num_slices, 4)
    a.out = a.out or ("outputs/infomax_batch_ablation" if a.ablation else "outputs/infomax_batch")
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    torch.set_num_threads(a.threads)
    model = load_model(a.weights)
    data = load_split(a.split_seed, limit=300 if a.quick else None)
    todo, t0 = settings(a), time.perf_counter()
    cmd = "python -m benchmarks.infomax_batch " + " ".join(sys.argv[1:] if argv is None else argv)
    runs, cmds = merged(a.merge) if a.merge else ([], [cmd.strip()])
    for seed, n, s in [(seed, n, s) for seed in a.seeds for n in a.batches for s in todo] * (not a.merge):
        runs.append(train(s, n, seed, data, model, a))
        Path(a.out).mkdir(parents=True, exist_ok=True)  # progress, kept if interrupted
        (Path(a.out) / "runs_so_far.json").write_text(json.dumps(
            {"cmd": cmd.strip(), "runs": [asdict(r) for r in runs]}))
        log(f"seed {seed} n {n} {runs[-1].label}: probe {100 * runs[-1].probe_acc:.1f}%")
    if a.merge:
        a.seeds, a.batches = sorted({r.seed for r in runs}), sorted({r.batch for r in runs})
        cmds.append(cmd.strip())
    labels = [s.label or s.method for s in todo]
    rows = summarise(runs, labels, a.batches)
    untrained = [100 * probe(make_encoder(seed, a.z_dim).eval(), data, 200 if a.quick else 2000)[0]
                 for seed in a.seeds]  # reference: the same encoders before training
    ref = mean_se(untrained)
    md = table(rows) + "\n\n" + fmt_table(["reference", "probe acc (%)", "± se"], [
        ["untrained encoder", f"{ref[0]:.1f}", f"{ref[1]:.1f}"]], md=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "ablation" if a.ablation else "results"
    title = "held-out configuration" if a.ablation else f"digits, {a.steps} steps per encoder"
    plot(rows, labels, out / ("ablation.png" if a.ablation else "probe_vs_batch.png"), title, ref[0])
    (out / f"{name}.md").write_text(f"# Probe accuracy vs batch size ({title})\n\n"
                                    + "".join(f"`{c}`\n\n" for c in cmds) + f"{md}\n")
    result = {"args": vars(a), "commands": cmds, "env": env_info(), "total_s": time.perf_counter() - t0,
              "n_train": len(data["x_train"]), "n_test": len(data["x_test"]),
              "settings": [asdict(s) for s in todo], "rows": rows, "untrained_probe_acc": untrained,
              "runs": [asdict(r) for r in runs]}
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    print(md)
    return result


if __name__ == "__main__":
    main()
