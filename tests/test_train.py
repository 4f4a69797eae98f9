"""Pretraining entry point: 2-process torchrun (gloo) smoke test, checkpoint, resume, export."""
import json
import os
import subprocess
import sys

import torch

from infoatlas_loss import load_weights
from infoatlas_loss.atlas import gaussian_task, sample_atlas, spiral, swiss_roll


def _run(args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "infoatlas_loss.train",
           "--config", "tiny", "--batch", "4", "--n-min", "32", "--n-max", "48", "--warmup", "2",
           "--out", str(tmp_path / "run"), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_torchrun_gloo_smoke_resume_export(tmp_path):
    _run(["--max-steps", "3"], tmp_path)
    state = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)
    assert state["step"] == 3
    w = tmp_path / "w.safetensors"
    _run(["--max-steps", "5", "--resume", "--export", str(w)], tmp_path)
    assert torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)["step"] == 5
    model = load_weights(w)
    assert model.config.max_dim == 3
    final = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl") if "final" in line]
    assert final[-1]["final"]["steps"] == 5
    # warm restart: weights and step count carry on, the schedule starts again
    _run(["--max-steps", "7", "--resume", "--restart"], tmp_path)
    state = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)
    assert state["step"] == 7 and state["step0"] == 5 and state["prior"] > 0


def test_atlas_shapes_and_determinism():
    a = sample_atlas(4, 100, 2, 3, generator=torch.Generator().manual_seed(0))
    b = sample_atlas(4, 100, 2, 3, generator=torch.Generator().manual_seed(0))
    assert a[0].shape == (4, 100, 2) and a[1].shape == (4, 100, 3)
    torch.testing.assert_close(a, b)
    for seed in range(20):  # every family and flow stays finite
        x, y = sample_atlas(3, 64, 3, 2, generator=torch.Generator().manual_seed(seed))
        assert torch.isfinite(x).all() and torch.isfinite(y).all()


def test_gaussian_task_has_stated_mi():
    x, y, mi = gaussian_task(1, 200_000, 2, 3, 1.0, generator=torch.Generator().manual_seed(0))
    v = torch.cat([x[0], y[0]], dim=1).double().T
    c = torch.corrcoef(v)
    est = 0.5 * (torch.logdet(c[:2, :2]) + torch.logdet(c[2:, 2:]) - torch.logdet(c))
    assert abs(est.item() - mi) < 0.02


def test_spiral_and_swiss_roll_keep_the_information():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, 500, 3, generator=g)
    speed = torch.tensor([[0.3], [1.0]])
    w = spiral(v, speed, g, aligned=True)
    torch.testing.assert_close(w.norm(dim=-1), v.norm(dim=-1))  # rotation keeps |v| ...
    torch.testing.assert_close(spiral(w, -speed, g, aligned=True), v, atol=1e-4, rtol=0)  # ... so it inverts
    assert (w - v).abs().max() > 0.5
    r = swiss_roll(v, g)  # (2, 500, 4): first coordinate rolled into two
    assert r.shape == (2, 500, 4)
    torch.testing.assert_close(r[..., 2:], v[..., 1:])
    radius = r[..., :2].norm(dim=-1)
    order = v[..., 0].argsort(dim=1)
    assert (torch.diff(torch.gather(radius, 1, order), dim=1) > 0).all()  # injective in v_0
