"""Segmenting rigid objects by the MI of point trajectories (paper Sec. 5.2, Fig. 5).

    python -m benchmarks.motion --quick
    python -m benchmarks.motion --scenes 5 --frames 500

A synthetic stand-in for PointOdyssey: each scene has ``--objects`` rigid bodies (random
ellipsoids, ``--points`` surface points each) moving independently over T frames.  Every
body's linear and angular velocity follow independent AR(1) processes (lag-1 correlation
``--rate`` 0.8; std ``--lin-std`` 0.05 units and ``--ang-std`` 0.1 rad per frame), so
p_i(t) = R(t) q_i + c(t) + noise (std ``--noise``).

The samples of one MI estimate are the frames: for the reference point r and another
point j, frame t gives the pair (u_r(t), u_j(t)) of 3-D vectors, so n = T - 1 samples of
dx = dy = 3 (no slicing).  u is the per-frame **velocity** p(t+1) - p(t) by default:
positions are integrated random walks, non-stationary and strongly autocorrelated, and
two independent random walks look dependent when frames are treated as i.i.d. samples
(spurious correlation); their increments are stationary, close to independent across
frames, independent across bodies, and shared (translation + rotation) within a body.
``--feature position`` uses the raw positions instead, for comparison.

For each scene one reference point is picked at random; every other point is scored by
its MI (nats) with the reference, and the segmentation AUC is the ROC AUC
(``sklearn.metrics.roc_auc_score``) of "same body as the reference" against that score.
InfoAtlas scores all pairs in one batched ``sliced_mi(..., reduction="none")`` call under
``torch.no_grad``; KSG (k=10) loops over the pairs.  Wall time is for all pairs of a scene.

Writes ``motion.json``, ``motion.md`` and ``motion.png`` (first frame of the first scene,
top view: ground-truth bodies, and points coloured by each method's MI).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from .baselines import ksg
from .common import env_info, fmt_table, base_parser, log, pyplot, setup, write_outputs


def _rotation(w: np.ndarray) -> np.ndarray:
    """Rodrigues: the rotation by |w| radians about w / |w|, (3,) -> (3, 3)."""
    th = np.linalg.norm(w)
    if th < 1e-12:
        return np.eye(3)
    k = w / th
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * kx + (1 - np.cos(th)) * kx @ kx


def _ar1(frames: int, std: float, rng: np.random.Generator, rate: float = 0.9) -> np.ndarray:
    """(frames, 3) stationary AR(1) with marginal std ``std``."""
    v = np.empty((frames, 3))
    v[0] = std * rng.standard_normal(3)
    for t in range(1, frames):
        v[t] = rate * v[t - 1] + std * np.sqrt(1 - rate ** 2) * rng.standard_normal(3)
    return v


def make_scene(objects: int = 5, points: int = 40, frames: int = 300, noise: float = 0.005,
               lin_std: float = 0.05, ang_std: float = 0.1, rate: float = 0.8,
               seed: int = 0) -> dict:
    """A scene of independently moving rigid bodies.

    Returns dict with ``pos`` (N, T, 3) point positions (N = objects * points), ``label``
    (N,) body index of every point, and ``shape`` (N, 3) body-frame coordinates.
    ``lin_std`` (units / frame) and ``ang_std`` (rad / frame) are the marginal stds of the
    AR(1) linear and angular velocities; ``rate`` their lag-1 autocorrelation.
    """
    rng = np.random.default_rng(seed)
    pos, label, shape = [], [], []
    for o in range(objects):
        radii = rng.uniform(0.3, 1.0, 3)
        u = rng.standard_normal((points, 3))
        q = radii * u / np.linalg.norm(u, axis=1, keepdims=True)  # on the ellipsoid surface
        c = rng.uniform(-4, 4, 3) + np.cumsum(_ar1(frames, lin_std, rng, rate), 0)
        om = _ar1(frames, ang_std, rng, rate)
        r = _rotation(rng.standard_normal(3) * np.pi)
        traj = np.empty((points, frames, 3))
        for t in range(frames):
            r = _rotation(om[t]) @ r
            traj[:, t] = q @ r.T + c[t]
        pos.append(traj + noise * rng.standard_normal(traj.shape))
        label += [o] * points
        shape.append(q)
    return dict(pos=np.concatenate(pos), label=np.array(label), shape=np.concatenate(shape))


def features(pos: np.ndarray, kind: str = "velocity") -> np.ndarray:
    """(N, T, 3) positions -> (N, n, 3) samples: velocities (n = T-1) or positions (n = T)."""
    if kind == "velocity":
        return np.diff(pos, axis=1)
    if kind == "position":
        return pos
    raise ValueError(f"feature must be 'velocity' or 'position', got {kind!r}")


@torch.no_grad()
def infoatlas_scores(model, feats: np.ndarray, ref: int, seed: int = 0) -> np.ndarray:
    """MI (nats) of point ``ref`` with every other point, one batched call -> (N-1,)."""
    from infoatlas_loss import sliced_mi

    others = np.delete(feats, ref, axis=0)
    y = torch.from_numpy(others).float()
    x = torch.from_numpy(feats[ref]).float().expand_as(y)
    return sliced_mi(x, y, model=model, reduction="none",
                     generator=torch.Generator().manual_seed(seed)).double().numpy()


def ksg_scores(feats: np.ndarray, ref: int) -> np.ndarray:
    return np.array([ksg(feats[ref], feats[j]) for j in range(len(feats)) if j != ref])


def run_scene(model, a, s: int) -> dict:
    scene = make_scene(a.objects, a.points, a.frames, a.noise, a.lin_std, a.ang_std, a.rate,
                       seed=a.seed + s)
    feats = features(scene["pos"], a.feature)
    ref = int(np.random.default_rng([a.seed, s]).integers(len(feats)))
    same = np.delete(scene["label"] == scene["label"][ref], ref)
    out = dict(scene=s, ref=ref, n=int(feats.shape[1]), pairs=int(len(same)), methods={})
    for name, f in (("InfoAtlas", lambda: infoatlas_scores(model, feats, ref, seed=s)),
                    ("KSG", lambda: ksg_scores(feats, ref))):
        t0 = time.perf_counter()
        sc = f()
        out["methods"][name] = dict(auc=float(roc_auc_score(same, sc)), seconds=time.perf_counter() - t0,
                                    same_mean=float(sc[same].mean()), other_mean=float(sc[~same].mean()),
                                    scores=sc)
    out["scene_data"] = scene
    return out


def plot(res: dict, path) -> None:
    """First frame (top view x-y): ground-truth bodies, then each method's MI colouring."""
    plt = pyplot()
    scene, ref = res["scene_data"], res["ref"]
    xy = scene["pos"][:, 0, :2]
    meths = list(res["methods"])
    fig, ax = plt.subplots(1, 1 + len(meths), figsize=(4.2 * (1 + len(meths)), 4))
    ax[0].scatter(xy[:, 0], xy[:, 1], c=scene["label"], cmap="tab10", s=10)
    ax[0].set_title("ground-truth bodies (frame 0)")
    others = np.delete(np.arange(len(xy)), ref)
    for axi, m in zip(ax[1:], meths):
        r = res["methods"][m]
        sc = axi.scatter(xy[others, 0], xy[others, 1], c=r["scores"], cmap="viridis", s=10)
        fig.colorbar(sc, ax=axi, label="MI with reference (nats)")
        axi.set_title(f"{m}: AUC {r['auc']:.3f}, {r['seconds']:.2f} s")
    for axi in ax:
        axi.scatter(*xy[ref], marker="*", s=250, c="red", edgecolors="k")
        axi.set(xlabel="x", ylabel="y  (red star: reference point)", aspect="equal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(scenes: list[dict], md: bool = False) -> str:
    meths = list(scenes[0]["methods"])
    rows = [[s["scene"], s["pairs"], s["n"]] + [
        f"{s['methods'][m]['auc']:.3f} / {s['methods'][m]['seconds']:.3g}s "
        f"({s['methods'][m]['same_mean']:.3f} vs {s['methods'][m]['other_mean']:.3f})" for m in meths]
        for s in scenes]
    rows.append(["mean", "", ""] + [
        f"{np.mean([s['methods'][m]['auc'] for s in scenes]):.3f} / "
        f"{np.mean([s['methods'][m]['seconds'] for s in scenes]):.3g}s" for m in meths])
    return fmt_table(["scene", "pairs", "n (frames)"] +
                     [f"{m} AUC / time (MI same vs other)" for m in meths], rows, md)


def parse(argv) -> argparse.Namespace:
    p = base_parser("motion", __doc__, "1 scene, 200 frames")
    p.add_argument("--scenes", type=int, default=None, help="default 3, quick 1")
    p.add_argument("--objects", type=int, default=5)
    p.add_argument("--points", type=int, default=40, help="points per object")
    p.add_argument("--frames", type=int, default=None, help="T; default 300, quick 200")
    p.add_argument("--noise", type=float, default=0.005, help="position noise std")
    p.add_argument("--lin-std", type=float, default=0.05, help="linear velocity std / frame")
    p.add_argument("--ang-std", type=float, default=0.1, help="angular velocity std (rad) / frame")
    p.add_argument("--rate", type=float, default=0.8, help="AR(1) lag-1 correlation of velocities")
    p.add_argument("--feature", choices=["velocity", "position"], default="velocity")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    a.scenes = a.scenes or (1 if a.quick else 3)
    a.frames = a.frames or (200 if a.quick else 300)
    return a


def main(argv=None) -> dict:
    a = parse(argv)
    model = setup(a)
    log(f"motion: {a.scenes} scenes x {a.objects} bodies x {a.points} points, T={a.frames}, "
        f"feature={a.feature}")
    scenes = [run_scene(model, a, s) for s in tqdm(range(a.scenes), desc="scenes")]
    print(table(scenes))
    md = (f"# Motion segmentation by MI ({a.feature}; {a.objects} bodies x {a.points} points, "
          f"T={a.frames})\n\nROC AUC of same-body vs MI with the reference point, wall time "
          f"for all pairs, and mean MI (nats) of same-body vs other points.\n\n" + table(scenes, md=True))
    strip = lambda s: {k: v for k, v in s.items() if k != "scene_data"}  # noqa: E731
    res = dict(config=vars(a), env=env_info(), scenes=[strip(s) for s in scenes],
               mean_auc={m: float(np.mean([s["methods"][m]["auc"] for s in scenes]))
                         for m in scenes[0]["methods"]})
    out = write_outputs(a.out, "motion", res, md)
    plot(scenes[0], out / "motion.png")
    log(f"wrote {out}/motion.json, motion.md, motion.png")
    return res


if __name__ == "__main__":
    main()
