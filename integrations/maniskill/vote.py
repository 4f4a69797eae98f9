"""How the restarts of a key-state discovery become one key state per demo and concept.

Each restart (an independently initialised locator) gives hard key states (R, N, K); a vote
combines them, and :func:`phase_guard` re-places the few that sit at an outlying phase of
their demo.
"""
from __future__ import annotations

import numpy as np
import torch
from einops import rearrange


def consensus(indices: torch.Tensor) -> torch.Tensor:
    """Per-demo, per-concept median over restarts (the lower one for an even count):
    (R, N, K) -> (N, K).  A restart whose concept did not lock onto one event scatters its
    steps; the median follows the restarts that agree.  Order is kept: if every restart has
    concept k before concept k + 1, so do their medians."""
    return indices.sort(dim=0).values[(indices.shape[0] - 1) // 2]


def agreeing_consensus(indices: torch.Tensor, within: float = 3.0) -> torch.Tensor:
    """Per concept, the median over the restarts that agree: (R, N, K) -> (N, K).  The two
    restarts whose key states are closest (mean |difference| over demos, in steps) and every
    restart at most ``within`` steps further from both; the result is sorted per demo
    (concepts may draw on different restarts).  Why: a restart that locks onto an event puts
    its key state at the same offset from it in every demo, so two locked restarts agree
    closely, while restarts that miss it scatter or lock onto other events; when those are
    the majority (StackCube, 100 demos: 3 of 5), the plain median returns their mixture."""
    r = indices.shape[0]
    if r < 3:
        return consensus(indices)  # no majority to outvote: the median is all there is
    out = []
    for k, track in enumerate(rearrange(indices, "r n k -> k r n").float()):  # (R, N) per concept
        dist = (track[:, None] - track[None]).abs().mean(-1)  # (R, R)
        pair = dist + torch.diag(torch.full((r,), float("inf")))
        a, b = divmod(int(pair.argmin()), r)
        keep = torch.maximum(dist[:, a], dist[:, b]) <= dist[a, b] + within
        out.append(consensus(indices[keep][..., k]))  # (N,)
    return torch.stack(out, dim=-1).sort(dim=-1).values


def phase_guard(indices: np.ndarray, probs: np.ndarray, lengths: np.ndarray, mads: float = 4.0
                ) -> np.ndarray:
    """Re-place key states at an outlying phase of their demo: (N, K) -> (N, K).

    A concept happens at a similar fraction of every demo.  A key state whose fraction
    t / length (``lengths`` (N,): each demo's last state index) lies more than ``mads``
    median absolute deviations from its concept's median over the demos (a window of at
    least 0.02 of the demo) has locked onto a look-alike event (StackCube: the pause before
    the release instead of the grasp, in a demo that holds the cube longer).  It moves to
    the most probable step inside the window, by ``probs`` (N, K, T) (the restarts' mean
    assignment).  Rows stay sorted (temporal order)."""
    steps = np.arange(probs.shape[-1])
    rel = indices / lengths[:, None]  # (N, K) phase of each key state
    med = np.median(rel, axis=0)
    width = mads * np.maximum(np.median(np.abs(rel - med), axis=0), 0.02 / mads)  # (K,)
    out = indices.copy()
    for n, k in zip(*np.nonzero(np.abs(rel - med) > width)):
        inside = (np.abs(steps / lengths[n] - med[k]) <= width[k]) & (steps <= lengths[n])
        if inside.any():
            out[n, k] = int(np.argmax(np.where(inside, probs[n, k], -1.0)))
    return np.sort(out, axis=1)
