"""Figures for the ManiSkill example: state features with key states, error vs wall time,
success-rate bars.  matplotlib (the ``bench`` extra) is imported inside each function."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import Normalizer
from .env import get_task
from .keystates import key_state_error


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_key_states(task: str, demos, keys: dict[str, np.ndarray], path: Path, num_demos: int = 3):
    """A few demos: z-scored state features over time, physical events (dashed black) and
    each method's key states (coloured)."""
    plt = _plt()
    fig, axes = plt.subplots(num_demos, 1, figsize=(9, 2.4 * num_demos), sharex=False)
    norm = Normalizer.fit(np.concatenate([d.states for d in demos]), floor=1e-8)
    colors = dict(zip(keys, ["tab:red", "tab:blue", "tab:green"]))
    styles = dict(zip(keys, ["-", ":", "-."]))
    for i, ax in enumerate(np.atleast_1d(axes)):
        d = demos[i]
        ax.plot(norm(d.states), color="0.75", lw=0.6)
        for e, step in d.events.items():
            ax.axvline(step, color="k", ls="--", lw=1)
            ax.text(step, ax.get_ylim()[1], e, fontsize=7, va="top")
        for name, idx in keys.items():
            for k in idx[i]:
                ax.axvline(int(k), color=colors[name], ls=styles[name], lw=2.5, alpha=0.8, label=name)
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), fontsize=7, loc="lower right")
        ax.set_ylabel(f"demo seed {d.seed}")
    np.atleast_1d(axes)[-1].set_xlabel("step")
    fig.suptitle(f"{task}: state features (grey), events (dashed), key states")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_key_state_time(task: str, demos, results: dict, path: Path):
    """Key-state error (steps) against wall time of discovery, per estimator."""
    plt = _plt()
    events = get_task(task).events
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, r in results.items():
        t = [s for s, _ in r.trace]
        err = [key_state_error(demos, idx, events)["mean"] for _, idx in r.trace]
        ax.plot(t, err, label=name)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("wall time of key-state discovery (s)")
    ax.set_ylabel("mean key-state error (steps)")
    ax.set_title(task)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_success(results: list[dict], path: Path):
    """Success rate per task and method, seen and unseen seeds."""
    plt = _plt()
    methods = list(results[0]["methods"])
    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.5), squeeze=False)
    for ax, r in zip(axes[0], results):
        x = np.arange(len(methods))
        for j, split in enumerate(("seen", "unseen")):
            ax.bar(x + (j - 0.5) * 0.38, [r["methods"][m][split] for m in methods], 0.38, label=split)
        ax.set_xticks(x, [m.replace(" key states", "\nkey states") for m in methods], fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(f"{r['task']} ({r['episodes_per_split']} episodes per bar)")
        ax.set_ylabel("success rate")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
