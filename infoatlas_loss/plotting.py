"""Plots of estimator results (matplotlib, imported on use)."""
from __future__ import annotations

import numpy as np

from .matrix import MIMatrix


def plot_mi_matrix(result: MIMatrix, ax=None, *, cmap: str = "viridis", vmax: float | None = None,
                   annotate: bool | None = None, alpha: float | None = None,
                   title: str | None = None):
    """Heatmap of a :class:`~infoatlas_loss.matrix.MIMatrix` (MI in nats, diagonal blank).

    Args:
        result: the output of ``mi_matrix``.
        ax: matplotlib Axes to draw on (default: a new figure's).
        cmap: colour map of the MI values; the colour scale starts at 0 nats (negative
            estimates of independent pairs are drawn as 0).
        vmax: top of the colour scale in nats (default: the largest estimate).
        annotate: write each value in its cell (default: up to 15 variables).
        alpha: with p-values in ``result``, mark pairs with ``p_value <= alpha`` by a red
            dot in the cell's corner.
        title: Axes title.

    Returns:
        The matplotlib Axes.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plot_mi_matrix needs matplotlib: pip install matplotlib "
                          "(or pip install 'infoatlas-loss[bench]')") from e
    if not isinstance(result, MIMatrix):
        raise ValueError(f"plot_mi_matrix expects an MIMatrix, got {type(result).__name__}")
    if alpha is not None and result.p_value is None:
        raise ValueError("alpha needs p-values: call mi_matrix(..., p_values=True)")
    mi = np.ma.masked_invalid(result.mi)
    p = mi.shape[0]
    if ax is None:
        size = min(12.0, 2.0 + 0.35 * p)
        _, ax = plt.subplots(figsize=(size + 1.2, size))
    top = vmax if vmax is not None else float(mi.max()) if mi.count() else 1.0
    image = ax.imshow(np.ma.maximum(mi, 0.0), cmap=cmap, vmin=0.0, vmax=max(top, 1e-9))
    ax.figure.colorbar(image, ax=ax, label="MI (nats)")
    ticks = np.arange(p)
    ax.set_xticks(ticks, labels=result.names, rotation=90)
    ax.set_yticks(ticks, labels=result.names)
    if annotate if annotate is not None else p <= 15:
        for i, j in zip(*np.nonzero(~np.ma.getmaskarray(mi))):
            light = mi[i, j] > 0.6 * top  # dark text on the light end of the colour map
            ax.text(j, i, f"{mi[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="k" if light else "w")
    if alpha is not None:
        i, j = np.nonzero(result.p_value <= alpha)
        # a red dot in the cell's top-right corner, clear of the value
        ax.scatter(j + 0.32, i - 0.32, s=10, c="r", marker="o", label=f"p <= {alpha}")
    ax.set_title(title if title is not None else f"pairwise MI, n = {result.n}")
    return ax
