"""Shared helpers of the benchmarks: model loading, tables, output files, plots,
random k-dim slices shared by InfoAtlas and KSG, and peak-memory sampling.

All MI values are in nats, all times in seconds, all memory in MiB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from .baselines import ksg


def load_model(weights: str | None):
    """The InfoAtlas model: from ``weights`` (safetensors) or the shipped base weights."""
    from infoatlas_loss import load_pretrained, load_weights

    return load_weights(weights) if weights else load_pretrained("infoatlas-base")


# ----------------------------------------------------------------------------- output
def fmt_table(head: list, rows: list[list], md: bool = False) -> str:
    """A plain-text (or Markdown) table; cells are converted with ``str``."""
    rows = [[str(c) for c in r] for r in rows]
    head = [str(h) for h in head]
    if md:
        esc = lambda r: "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |"  # noqa: E731
        return "\n".join([esc(head), "|" + "---|" * len(head)] + [esc(r) for r in rows])
    w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i])  # noqa: E731
                               for i, c in enumerate(r))
    return "\n".join([line(head), "-" * (sum(w) + 2 * len(w))] + [line(r) for r in rows])


def write_outputs(out: str | Path, name: str, result: dict, md: str) -> Path:
    """Write ``<out>/<name>.json`` and ``<out>/<name>.md``; returns the folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1, default=_json_default))
    (out / f"{name}.md").write_text(md.rstrip() + "\n")
    return out


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def env_info() -> dict:
    """Threads and hardware facts to store next to timings."""
    return dict(torch_threads=torch.get_num_threads(), cpu_count=os.cpu_count(),
                torch=torch.__version__, numpy=np.__version__)


# ----------------------------------------------------------------------------- slices
def zscore(v: torch.Tensor) -> torch.Tensor:
    """Column z-scores of (..., n, d) over the sample axis (constant columns left centred)."""
    mu, sd = v.mean(dim=-2, keepdim=True), v.std(dim=-2, keepdim=True)
    return (v - mu) / torch.where(sd > 0, sd, torch.ones_like(sd))


def random_slices(x: torch.Tensor, y: torch.Tensor, num_slices: int, k: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same k-dim projections for every batch item, like ``sliced_mi``.

    x (B, n, dx), y (B, n, dy) -> (B, S, n, kx), (B, S, n, ky).  Each variable is z-scored
    and projected onto ``num_slices`` Haar-random d x k orthonormal frames (independent
    frames for x and y); a variable with d <= k is kept whole (repeated S times).
    """
    from infoatlas_loss.slicing import project, stiefel

    def one(v):
        b, n, d = v.shape
        if d <= k:
            return v.unsqueeze(1).expand(b, num_slices, n, d)
        return project(zscore(v), stiefel(num_slices, d, k, generator=generator, like=v))

    return one(x), one(y)


@torch.no_grad()
def infoatlas_on_slices(model, xs: torch.Tensor, ys: torch.Tensor, seed: int = 0,
                        chunk_size: int = 64) -> np.ndarray:
    """InfoAtlas MI (nats) of every slice: xs (B, S, n, k) -> (B, S), one batched pass.

    Slices have k <= max_dim, so ``sliced_mi`` runs them whole (noise padding only).
    """
    from infoatlas_loss import sliced_mi

    b, s, n, _ = xs.shape
    est = sliced_mi(xs.reshape(b * s, n, -1), ys.reshape(b * s, n, -1), model=model,
                    reduction="none", chunk_size=chunk_size,
                    generator=torch.Generator().manual_seed(seed))
    return est.view(b, s).double().numpy()


def ksg_on_slices(xs: torch.Tensor, ys: torch.Tensor, k: int = 10) -> np.ndarray:
    """KSG MI (nats) of every slice: xs (B, S, n, k) -> (B, S) (a Python loop)."""
    b, s = xs.shape[:2]
    xn, yn = xs.double().numpy(), ys.double().numpy()
    return np.array([[ksg(xn[i, j], yn[i, j], k=k) for j in range(s)] for i in range(b)])


# ----------------------------------------------------------------------------- memory
def rss_mib() -> float:
    """Resident set size of this process in MiB, from /proc/self/statm (Linux)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):  # not Linux: lifetime peak, coarse
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRSS:
    """Context manager: peak RSS growth (MiB) over the block, sampled every ``every`` s
    by a background thread reading /proc/self/statm.  ``.peak`` = max RSS - RSS at entry;
    short allocations between samples can be missed, so it is a lower bound."""

    def __init__(self, every: float = 0.002):
        self.every, self.peak, self._stop = every, 0.0, threading.Event()

    def _loop(self):
        while not self._stop.is_set():
            self._max = max(self._max, rss_mib())
            time.sleep(self.every)

    def __enter__(self):
        self.base = self._max = rss_mib()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._max = max(self._max, rss_mib())
        self.peak = self._max - self.base
        return False


def base_parser(name: str, doc: str, quick_help: str) -> argparse.ArgumentParser:
    """The options every benchmark script shares: --weights, --out, --quick, --threads."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--weights", default=None, help="safetensors file (default: shipped weights)")
    p.add_argument("--out", default=f"outputs/{name}")
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: keep)")
    return p


def setup(a):
    """Apply --threads and load the estimator named by --weights."""
    if a.threads:
        torch.set_num_threads(a.threads)
    return load_model(a.weights)
