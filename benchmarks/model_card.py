"""Measure a weights file and write its model card (pretrained/README.md + JSON beside it).

    python -m benchmarks.model_card                       # the shipped infoatlas-base
    python -m benchmarks.model_card --weights runs/x.safetensors --out /tmp/card

Every number in the card comes from this script: closed-form Gaussian grid (random
rotations within x and y, equal canonical correlations), independent data, and the eight
Table-1 tasks of the bmi benchmark (``benchmarks/bmi_tasks.py``), all in nats.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from infoatlas_loss import estimate_mi, load_pretrained, load_weights
from infoatlas_loss.atlas import gaussian_task
from infoatlas_loss.pretrained import REGISTRY, read_header, sha256_file, weights_path

GRID_DIMS = [(1, 1), (2, 2), (3, 3), (5, 5), (1, 3), (2, 5)]
GRID_MI = [0.0, 0.5, 1.0, 2.0]


def gaussian_grid(model, n: int, seeds: list[int]) -> list[dict]:
    rows = []
    for dx, dy in GRID_DIMS:
        for mi in GRID_MI:
            ests = []
            for s in seeds:
                x, y, _ = gaussian_task(1, n, dx, dy, mi, generator=torch.Generator().manual_seed(s))
                ests.append(estimate_mi(x[0], y[0], model=model, seed=s).mi)
            rows.append({"task": f"gauss {dx}x{dy}", "true": mi, "mean": float(np.mean(ests)),
                         "std": float(np.std(ests)), "abs_err": abs(float(np.mean(ests)) - mi)})
    return rows


def table1(model, n: int, seeds: list[int]) -> list[dict]:
    from benchmarks.bmi_tasks import TABLE1, TASKS
    rows = []
    for name in TABLE1:
        task = TASKS[name]
        ests, secs = [], []
        for s in seeds:
            x, y = task.sample(n, np.random.default_rng(s))
            r = estimate_mi(x, y, model=model, seed=s)
            ests.append(r.mi)
            secs.append(r.seconds)
        rows.append({"task": name, "true": task.mi, "mean": float(np.mean(ests)),
                     "std": float(np.std(ests)), "abs_err": abs(float(np.mean(ests)) - task.mi),
                     "seconds": float(np.mean(secs))})
    return rows


def _md(rows: list[dict]) -> str:
    out = ["| task | true | estimate (mean ± std) | abs error |", "|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['task']} | {r['true']:.4f} | {r['mean']:.3f} ± {r['std']:.3f} | "
                   f"{r['abs_err']:.3f} |")
    out.append(f"| **mean** | | | **{np.mean([r['abs_err'] for r in rows]):.3f}** |")
    return "\n".join(out)


SUITE = Path(__file__).resolve().parent / "results" / "accuracy" / "results.json"


def _suite() -> str:
    """The 40-task bmi suite's group means from the saved accuracy run, with its command."""
    if not SUITE.exists():
        return "Baselines on the same tasks: `python -m benchmarks.accuracy`."
    res = json.loads(SUITE.read_text())
    groups = res["groups"]
    methods = res["config"]["methods"]
    out = ["### Full 40-task bmi suite, with baselines on the same samples", "",
           f"From `{res['config']['command']}`; per-task tables at every n in "
           "[`benchmarks/results/accuracy/results.md`](../benchmarks/results/accuracy/results.md).",
           "", "| n | group | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for n, g in groups.items():
        for name, row in g.items():
            cells = [f"{row[m]['mean_abs_err']:.3f}" if m in row else "" for m in methods]
            out.append(f"| {n} | {name}, {row['tasks']} tasks | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="safetensors file (default: shipped infoatlas-base)")
    p.add_argument("--out", default=None,
                   help="folder for README.md and card JSON (default: pretrained, quick: outputs/model_card)")
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--quick", action="store_true", help="n = 1000, seed 0, written to outputs/model_card")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.seeds = min(args.n, 1000), args.seeds[:1]
    if args.out is None:  # a quick card never overwrites the shipped one
        args.out = "outputs/model_card" if args.quick else "pretrained"
    torch.set_num_threads(1)
    path = Path(args.weights) if args.weights else weights_path(REGISTRY["infoatlas-base"][0])
    model = load_weights(path) if args.weights else load_pretrained("infoatlas-base")
    config, info = read_header(path)
    t0 = time.time()
    grid = gaussian_grid(model, args.n, args.seeds)
    bmi = table1(model, args.n, args.seeds)
    card = {"file": path.name, "sha256": sha256_file(path), "config": config.to_dict(),
            "training": info, "n": args.n, "seeds": args.seeds,
            "gaussian_mae": float(np.mean([r["abs_err"] for r in grid])),
            "independent_max_abs": float(max(r["mean"] for r in grid if r["true"] == 0.0)),
            "table1_mae": float(np.mean([r["abs_err"] for r in bmi])),
            "gaussian_grid": grid, "table1": bmi, "eval_seconds": round(time.time() - t0, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{path.stem}.card.json").write_text(json.dumps(card, indent=1))
    setup = (f", {info['processes']} process(es) x {info['batch_per_process']} synthetic distributions"
             f" per step, n in {info['n_range']} samples per distribution" if "processes" in info else "")
    text = f"""# {path.stem}

Weights of the InfoAtlas hypernetwork, safetensors with the config in the header.
sha256 `{card['sha256']}`.

## Training
Trained with `python -m infoatlas_loss.train`: {info.get('steps', '?')} steps,
{info.get('train_minutes', '?')} minutes{setup}.
{info.get('note', '')}

Config: `{json.dumps(config.to_dict())}`

## Measured accuracy (nats; n = {args.n}; seeds {args.seeds})
Produced by `python -m benchmarks.model_card`; every estimate is one call of
`estimate_mi` with the shipped weights.

### Closed-form Gaussians (random rotations within x and y)
Mean absolute error **{card['gaussian_mae']:.3f}**.

{_md(grid)}

### bmi benchmark, the paper's Table-1 tasks
Mean absolute error **{card['table1_mae']:.3f}**
(mean time per estimate {np.mean([r['seconds'] for r in bmi]):.3f} s on one thread).

{_md(bmi)}

{_suite()}
"""
    (out / "README.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
