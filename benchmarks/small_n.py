"""The estimator at loss-sized batches: bias on independent data and error on Gaussians.

    python -m benchmarks.small_n              # 64 datasets per cell
    python -m benchmarks.small_n --quick      # 16 datasets per cell

Independent 5 x 5 Gaussians at n = 64 / 128 / 256 and dependent 5 x 5 Gaussians with MI
0.25 / 0.5 / 1.0 nats at n = 256 (random canonical rotations, ``atlas.gaussian_task``),
``sliced_mi`` with and without ``debias`` (the permutation-null estimate subtracted in the
same pass).  Prints the mean estimate, its standard error and the spread, in nats.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from infoatlas_loss import load_pretrained, load_weights, sliced_mi
from infoatlas_loss.atlas import gaussian_task


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=64, help="datasets per cell")
    p.add_argument("--weights", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="16 datasets per cell")
    p.add_argument("--out", default="outputs/small_n")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    reps = 16 if a.quick else a.reps
    net = load_weights(a.weights) if a.weights else load_pretrained()
    cells = [(n, 0.0) for n in (64, 128, 256)] + [(256, mi) for mi in (0.25, 0.5, 1.0)]
    lines = ["| n | true MI | debias | mean estimate | std error | spread |", "|---|---|---|---|---|---|"]
    for n, mi in cells:
        x, y, _ = gaussian_task(reps, n, 5, 5, mi, generator=torch.Generator().manual_seed(n + int(100 * mi)))
        for debias in (False, True):
            e = sliced_mi(x, y, model=net, reduction="none", debias=debias,
                          generator=torch.Generator().manual_seed(0))
            lines.append(f"| {n} | {mi:.2f} | {debias} | {e.mean():.4f} | "
                         f"{e.std() / math.sqrt(reps):.4f} | {e.std():.4f} |")
    table = "\n".join(lines)
    print(table)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(f"# Loss-sized n (nats, {reps} datasets per cell)\n\n"
                                    f"`python -m benchmarks.small_n {' '.join(argv or [])}`\n\n{table}\n")


if __name__ == "__main__":
    main()
