"""Cost of one training step of each MI regulariser: forward + backward, as ratios in one run.

    python -m benchmarks.step_cost --quick
    python -m benchmarks.step_cost --threads 1 --out benchmarks/results/step_cost
    python -m benchmarks.step_cost --device cuda --out benchmarks/results/step_cost_cuda

Two settings, each at batch n in ``--ns`` and width d in ``--dims``:

* **InfoMin** (remove information): penalty(z, s) with z (n, d) and a binary sensitive
  attribute s.  Ours: ``InfoMin`` with 8 and 64 slices (``benchmarks.fairness`` uses 8);
  anchors from ``benchmarks.infomin_anchors``: adversary (gradient reversal, its Adam step
  included), HSIC, distance correlation, Pearson, vCLUB and MINE (5 inner steps each, as in
  the fairness benchmark), slice-based InfoMin (16 slices).
* **InfoMax** (two views): loss(a, b) with a, b (n, d).  Ours: ``InfoMax`` with 16 and 64
  slices; anchors from ``benchmarks.infomax_anchors``: InfoNCE, VICReg, Barlow Twins, MINE
  (its critic's gradients included; the optimiser step is not timed for any method).

A step is: penalty (with the method's inner loop, if any), backward into z (a leaf tensor,
standing in for the encoder output), and the method's own optimiser step.  Time = median
over ``--repeats`` steps after ``--warmup``; the ratio column divides by ours with its
default slice count.  On the CPU the clock is the process's CPU time (all its threads; with
``--threads 1`` it is unaffected by other jobs on the machine); on CUDA it is wall time,
every step synchronised before the clock is read.
"""
from __future__ import annotations

import statistics
import time

import torch

from infoatlas_loss.integrations.representation import InfoMax, InfoMin

from . import infomax_anchors as mx
from . import infomin_anchors as mn
from .common import base_parser, env_info, fmt_table, log, setup, write_outputs


def infomin_methods(model, d: int, g: torch.Generator) -> dict:
    return {
        "InfoMin (ours, 8 slices)": lambda: InfoMin(model, num_slices=8, generator=g, num_classes=2),
        "InfoMin (ours, 64 slices)": lambda: InfoMin(model, num_slices=64, generator=g, num_classes=2),
        "adversary (GRL)": lambda: mn.Adversary(d, 2, generator=g),
        "HSIC": mn.HSIC,
        "distance correlation": mn.DistanceCorrelation,
        "Pearson": mn.PearsonDecorrelation,
        "vCLUB (5 inner)": lambda: mn.VCLUB(d, 2, inner_steps=5, generator=g),
        "MINE (5 inner)": lambda: mn.MINEInner(d, 2, inner_steps=5, generator=g),
        "slice InfoMin (16)": lambda: mn.SliceInfoMin(num_slices=16, generator=g),
    }


def infomax_methods(model, d: int, g: torch.Generator) -> dict:
    return {
        "InfoMax (ours, 16 slices)": lambda: InfoMax(model, num_slices=16, generator=g),
        "InfoMax (ours, 64 slices)": lambda: InfoMax(model, num_slices=64, generator=g),
        "InfoNCE": lambda: mx.InfoNCE(0.2),
        "VICReg": mx.VICReg,
        "Barlow Twins": mx.BarlowTwins,
        "MINE": lambda: mx.MINE(d, generator=g),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(reg, kind: str, n: int, d: int, device: torch.device, warmup: int, repeats: int,
              g: torch.Generator) -> float:
    """Median seconds of one step of ``reg`` on fresh random inputs of shape (n, d)."""
    z = torch.randn(n, d, generator=g).to(device).requires_grad_(True)
    if kind == "infomin":
        labels = torch.randint(0, 2, (n,), generator=g).to(device)
        s = labels if isinstance(reg, InfoMin) else torch.nn.functional.one_hot(labels, 2).float()
        other = (s,)
    else:
        other = (torch.randn(n, d, generator=g).to(device).requires_grad_(True),)
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    times = []
    for i in range(warmup + repeats):
        _sync(device)
        t0 = clock()
        if kind == "infomin" and isinstance(reg, mn.Regulariser):
            reg.fit(z.detach(), other[0])
        loss = reg(z, *other)
        loss.backward()
        if isinstance(reg, mn.Regulariser):
            reg.after_backward()
        _sync(device)
        if i >= warmup:
            times.append(clock() - t0)
        z.grad = None
    return statistics.median(times)


def main(argv=None):
    p = base_parser("step_cost", __doc__, "n = 64, d = 8, 2 steps")
    p.add_argument("--ns", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--dims", type=int, nargs="+", default=[16, 128, 512])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.quick:
        a.ns, a.dims, a.warmup, a.repeats = [64], [8], 1, 2
    device = torch.device(a.device)
    model = setup(a).to(device)
    rows = []
    for kind, table in (("infomin", infomin_methods), ("infomax", infomax_methods)):
        for n in a.ns:
            for d in a.dims:
                g = torch.Generator().manual_seed(a.seed)
                for name, make in table(model, d, g).items():
                    reg = make().to(device)
                    sec = time_step(reg, kind, n, d, device, a.warmup, a.repeats, g)
                    rows.append(dict(setting=kind, method=name, n=n, d=d, ms=1e3 * sec))
                    log(f"{kind} n {n} d {d} {name}: {1e3 * sec:.2f} ms")
    ref = {"infomin": "InfoMin (ours, 8 slices)", "infomax": "InfoMax (ours, 16 slices)"}
    for r in rows:
        base = next(q["ms"] for q in rows if q["setting"] == r["setting"] and q["n"] == r["n"]
                    and q["d"] == r["d"] and q["method"] == ref[r["setting"]])
        r["ratio"] = r["ms"] / base
    cmd = "python -m benchmarks.step_cost " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    parts = [f"# Step cost of MI regularisers (forward + backward, ms)\n\n`{cmd.strip()}`\n\n"
             f"device {device}, torch threads {torch.get_num_threads()}; "
             f"{'wall' if device.type == 'cuda' else 'CPU'} time, median of {a.repeats} "
             f"steps; ratio = time / ours at its default slice count (same n, d, this run)\n"]
    for kind in ("infomin", "infomax"):
        names = list(dict.fromkeys(r["method"] for r in rows if r["setting"] == kind))
        cells = [(n, d) for n in a.ns for d in a.dims]
        body = [[name] + [next(f"{r['ms']:.1f} ({r['ratio']:.2g}x)" for r in rows
                               if r["setting"] == kind and r["method"] == name and (r["n"], r["d"]) == c)
                          for c in cells] for name in names]
        parts.append(f"\n## {kind}\n\n" + fmt_table(["method"] + [f"n={n}, d={d}" for n, d in cells],
                                                     body, md=True) + "\n")
    write_outputs(a.out, "results", dict(rows=rows, env=env_info(), device=str(device)), "".join(parts))
    return dict(rows=rows)


if __name__ == "__main__":
    main()
