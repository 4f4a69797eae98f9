"""InfoMax on scikit-learn digits: self-supervised features from two augmented views.

    python examples/infomax_digits.py                       # a few minutes on 2 CPU cores
    python examples/infomax_digits.py --weights my.safetensors --steps 600 --threads 1
    python examples/infomax_digits.py --quick               # smoke run (seconds)

An MLP encoder (64 -> 128 -> d) sees two random augmentations of the same 8x8 digit
(shift by up to +-1 pixel in each direction, Gaussian pixel noise sd 0.1, pixel dropout
p = 0.1; pixels in [0, 1]) and is trained without labels, with one of two losses and the
same architecture, initialisation, batches and number of steps:

* InfoMax: ``InfoMax(a, b) = -I(enc(view1); enc(view2))`` in nats from the frozen
  InfoAtlas estimator (whole for d <= 5, k-sliced MI with 5-dim random slices above);
* InfoNCE: the standard symmetric cosine-similarity InfoNCE with temperature 0.2 (the
  other images of the batch are the negatives).

This runs for d = 5 (no slicing) and d = 16 (sliced) by default.  The frozen features are
then scored by a linear probe (scikit-learn LogisticRegression on standardised features,
fit on the training split, accuracy on the test split), next to an untrained (random)
encoder of the same architecture and the raw 64 pixels.  Also reported: the effective rank
of the features (exp of the entropy of the PCA spectrum; a collapse onto a few directions
shows here), the estimator's I(view1; view2) on the test images, and the time per training
step (forward, backward, optimiser step) of both losses.

Writes results.json, results.md, probe_accuracy.png, training.png and embeddings.png to
``--out`` (default outputs/infomax_digits).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from infoatlas_loss import InfoMax, estimate_mi, load_pretrained, load_weights

def make_data(seed: int, n: int | None = None) -> dict:
    """Digits (pixels / 16), split 75/25 stratified; float32 (n, 64) and int labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x, y = d.data.astype(np.float32) / 16.0, d.target
    if n is not None:
        x, y = x[:n], y[:n]
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random view of images x (n, 64): shift (+-1 px), noise (sd 0.1), dropout (p 0.1)."""
    n = x.shape[0]
    pad = nn.functional.pad(x.view(n, 8, 8), (1, 1, 1, 1))  # (n, 10, 10), zero border
    dy, dx = torch.randint(0, 3, (2, n), generator=g)
    rows = (dy[:, None] + torch.arange(8))[:, :, None].expand(n, 8, 8)
    cols = (dx[:, None] + torch.arange(8))[:, None, :].expand(n, 8, 8)
    v = pad[torch.arange(n)[:, None, None], rows, cols].reshape(n, 64)
    v = v + 0.1 * torch.randn(v.shape, generator=g)
    return v * (torch.rand(v.shape, generator=g) > 0.1).to(v.dtype)


def make_encoder(seed: int, z_dim: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, z_dim))


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE (nats) on cosine similarities; row i of a and b is a positive pair."""
    a, b = nn.functional.normalize(a, dim=1), nn.functional.normalize(b, dim=1)
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0])
    return 0.5 * (nn.functional.cross_entropy(logits, target)
                  + nn.functional.cross_entropy(logits.T, target))


def train(method: str, z_dim: int, data, model, args, bar) -> dict:
    enc = make_encoder(args.seed, z_dim)
    opt = torch.optim.Adam(enc.parameters(), lr=args.lr)
    infomax = InfoMax(model, weight=1.0, num_slices=args.num_slices, whiten=not args.no_whiten,
                      generator=torch.Generator().manual_seed(args.seed))
    x = torch.from_numpy(data["x_train"])
    g = torch.Generator().manual_seed(args.seed + 1)  # same batches and views for both losses
    curve, times = [], []
    for _ in range(args.steps):
        i = torch.randperm(len(x), generator=g)[:args.batch]
        v1, v2 = augment(x[i], g), augment(x[i], g)
        t0 = time.perf_counter()
        za, zb = enc(v1), enc(v2)
        loss = infomax(za, zb) if method == "InfoMax" else info_nce(za, zb, args.temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        curve.append(float(loss.detach()))
        bar.set_postfix(z=z_dim, method=method, loss=f"{curve[-1]:.3f}")
        bar.update(1)
    warm = times[min(5, len(times) - 1):]  # drop warm-up steps
    return {"enc": enc.eval(), "curve": curve, "ms_per_step": 1000 * float(np.mean(warm))}


def effective_rank(f: np.ndarray) -> float:
    """exp(entropy) of the normalised PCA spectrum: 1 = one direction, d = isotropic."""
    sv = np.linalg.svd(f - f.mean(0), compute_uv=False) ** 2
    p = sv[sv > 0] / sv.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def linear_probe(f_tr, y_tr, f_te, y_te, quick: bool) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200 if quick else 3000))
    return float(clf.fit(f_tr, y_tr).score(f_te, y_te))


def features(enc, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return enc(torch.from_numpy(x)).numpy()


def view_mi(enc, data, model, seed: int) -> float:
    """InfoAtlas sliced I(enc(view1); enc(view2)) on the test images, nats (reference)."""
    g = torch.Generator().manual_seed(seed + 2)
    x = torch.from_numpy(data["x_test"])
    with torch.no_grad():
        a, b = enc(augment(x, g)), enc(augment(x, g))
    return float(estimate_mi(a, b, model=model, seed=seed).mi)


def plots(rows, runs, feats, data, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = sorted({r["z_dim"] for r in rows if r["z_dim"]})
    encs = ["random", "InfoMax", "InfoNCE"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for k, name in enumerate(encs):
        acc = [100 * r["probe_acc"] for d in dims for r in rows
               if r["z_dim"] == d and r["encoder"] == name]
        xs = np.arange(len(dims)) + (k - 1) * 0.27
        ax.bar(xs, acc, width=0.27, label=name, color=["0.6", "C0", "C1"][k])
        for x_, a in zip(xs, acc):
            ax.text(x_, a + 0.8, f"{a:.0f}", ha="center", fontsize=8)
    raw = [r for r in rows if r["encoder"].startswith("raw")][0]["probe_acc"]
    ax.axhline(100 * raw, color="k", ls="--", lw=0.8, label="raw pixels")
    ax.set_xticks(range(len(dims)), [f"{d}-d features" for d in dims])
    ax.set(ylabel="linear-probe test accuracy (%)", ylim=(0, 105), title="digits, frozen features")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "probe_accuracy.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for (method, d), run in runs.items():
        ax = axes[0] if method == "InfoMax" else axes[1]
        ax.plot(run["curve"], lw=0.8, label=f"{d}-d")
    axes[0].set(xlabel="step", ylabel="InfoMax loss = -I(view1; view2), nats", title="InfoMax")
    axes[1].set(xlabel="step", ylabel="InfoNCE loss, nats", title="InfoNCE")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(feats), figsize=(3.3 * len(feats), 3.3), squeeze=False)
    for ax, (name, f) in zip(axes[0], feats.items()):
        f = f - f.mean(0)
        pc = f @ np.linalg.svd(f, full_matrices=False)[2][:2].T
        sc = ax.scatter(pc[:, 0], pc[:, 1], c=data["y_test"], cmap="tab10", s=5)
        ax.set(title=f"{name} (test, PCA)", xticks=[], yticks=[])
    fig.colorbar(sc, ax=axes[0].tolist(), label="digit")
    fig.savefig(out / "embeddings.png", dpi=120)
    plt.close(fig)


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="estimator safetensors (default: shipped)")
    p.add_argument("--out", default="outputs/infomax_digits")
    p.add_argument("--steps", type=int, default=None, help="training steps per loss (default 400)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--z-dims", type=int, nargs="+", default=[5, 16],
                   help="feature dimensions to train (default 5 16; 5 = no slicing)")
    p.add_argument("--num-slices", type=int, default=16)
    p.add_argument("--no-whiten", action="store_true",
                   help="InfoMax without batch whitening of sliced (d > 5) features")
    p.add_argument("--temperature", type=float, default=0.2, help="InfoNCE temperature")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's; 1 is faster on a busy machine)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: 3 steps, 300 images")
    a = p.parse_args(argv)
    a.steps = a.steps or (3 if a.quick else 400)
    if a.quick:
        a.batch = min(a.batch, 64)
        a.num_slices = min(a.num_slices, 4)
    return a


def main(argv=None) -> dict:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_weights(args.weights) if args.weights else load_pretrained("infoatlas-base")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = make_data(args.seed, n=300 if args.quick else None)
    runs = {}
    with tqdm(total=2 * args.steps * len(args.z_dims), desc="InfoMax digits") as bar:
        for d in args.z_dims:
            for method in ("InfoMax", "InfoNCE"):
                runs[method, d] = train(method, d, data, model, args, bar)
    rows, feats = [], {}
    for d in args.z_dims:
        for name in ("random", "InfoMax", "InfoNCE"):
            enc = make_encoder(args.seed, d).eval() if name == "random" else runs[name, d]["enc"]
            f_tr, f_te = features(enc, data["x_train"]), features(enc, data["x_test"])
            if d == max(args.z_dims):
                feats[f"{name} {d}-d"] = f_te
            rows.append({"z_dim": d, "encoder": name,
                         "probe_acc": linear_probe(f_tr, data["y_train"], f_te, data["y_test"],
                                                   args.quick),
                         "effective_rank": effective_rank(f_te),
                         "view_mi_nats": view_mi(enc, data, model, args.seed),
                         "ms_per_step": None if name == "random" else runs[name, d]["ms_per_step"]})
    rows.append({"z_dim": None, "encoder": "raw pixels", "effective_rank": None,
                 "view_mi_nats": None, "ms_per_step": None,
                 "probe_acc": linear_probe(data["x_train"], data["y_train"], data["x_test"],
                                           data["y_test"], args.quick)})
    plots(rows, runs, feats, data, out)
    result = {"args": vars(args), "n_train": len(data["x_train"]),
              "n_test": len(data["x_test"]), "threads": torch.get_num_threads(), "rows": rows}
    md = ["| features | encoder | linear-probe test acc (%) | effective rank "
          "| I(view1; view2), InfoAtlas (nats; sliced above 5-d) | ms / training step |",
          "|---:|---|---:|---:|---:|---:|"]
    fmt = lambda v, f: "–" if v is None else format(v, f)  # noqa: E731
    for r in rows:
        md.append(f"| {fmt(r['z_dim'], 'd') if r['z_dim'] else 64} | {r['encoder']} | "
                  f"{100 * r['probe_acc']:.1f} | {fmt(r['effective_rank'], '.1f')} | "
                  f"{fmt(r['view_mi_nats'], '.3f')} | {fmt(r['ms_per_step'], '.1f')} |")
    text = "\n".join(md)
    (out / "results.md").write_text(
        f"# InfoMax on digits ({args.steps} steps per encoder, batch {args.batch}, "
        f"{args.num_slices} slices, weights {args.weights or 'shipped'})\n\n{text}\n\n"
        "Linear probe: LogisticRegression on standardised frozen features, fit on the "
        f"training split ({len(data['x_train'])} images), scored on the test split "
        f"({len(data['x_test'])}).  Effective rank: exp(entropy) of the feature PCA spectrum. "
        "Time per step: forward + backward + Adam step, "
        f"{torch.get_num_threads()} CPU thread(s).\n")
    (out / "results.json").write_text(json.dumps(result, indent=1))
    print(text)
    print(f"wrote {out}/results.json, results.md, probe_accuracy.png, training.png, "
          "embeddings.png", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
