"""The dependence penalties of ``benchmarks.infomin_anchors`` against closed forms, and
``benchmarks.fairness --quick --synthetic`` end to end on a tiny random-weight model."""
import json
import math

import pytest
import torch

pytest.importorskip("sklearn", reason="the benchmarks need the bench extra")
pytest.importorskip("matplotlib", reason="the benchmarks need the bench extra")

from benchmarks import fairness
from benchmarks import infomin_anchors as anchors
from infoatlas_loss import InfoAtlas, InfoAtlasConfig, save_weights


def _binary_pair(n: int = 64):
    """s one-hot (n, 2) alternating classes; z1 = class code (fully dependent), z0 = a
    column orthogonal to it (the other Hadamard sign pattern: independent in the sample)."""
    c = torch.arange(n) % 2
    s = torch.nn.functional.one_hot(c, 2).float()
    z_dep = c.float()[:, None]
    z_ind = ((torch.arange(n) // 2) % 2).float()[:, None]
    return s, z_dep, z_ind


def test_pearson_closed_form():
    s, z_dep, z_ind = _binary_pair()
    reg = anchors.PearsonDecorrelation()
    assert float(reg(z_dep, s)) == pytest.approx(1.0, abs=1e-4)  # |corr| = 1 with both columns
    assert float(reg(z_ind, s)) == pytest.approx(0.0, abs=1e-6)


def test_distance_correlation_and_hsic_closed_forms():
    s, z_dep, z_ind = _binary_pair()
    dcor = anchors.DistanceCorrelation()
    assert float(dcor(z_dep, s)) == pytest.approx(1.0, abs=1e-3)  # z is a scaled copy of s
    assert float(dcor(z_ind, s)) == pytest.approx(0.0, abs=1e-3)
    assert float(anchors.HSIC()(z_ind, s)) == pytest.approx(0.0, abs=1e-6)
    # both Gram matrices: 1 within a class, e^-1/2 across (median heuristic), classes balanced
    b, n = math.exp(-0.5), 64
    assert float(anchors.HSIC()(z_dep, s)) == pytest.approx(n ** 2 * (1 - b) ** 2 / 4 / (n - 1) ** 2, rel=1e-4)


def test_slice_finds_a_nonlinear_dependence_linear_penalty_misses():
    g = torch.Generator().manual_seed(0)
    n = 512
    c = (torch.rand(n, generator=g) < 0.5).long()
    s = torch.nn.functional.one_hot(c, 2).float()
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    z = (sign * (1.0 + 2.0 * c.float()))[:, None]  # |z| reveals s, the sign hides it linearly
    assert float(anchors.PearsonDecorrelation()(z, s)) < 0.02
    assert float(anchors.SliceInfoMin(num_slices=4, generator=g)(z, s)) > 0.9


def test_inner_loop_methods_learn_a_positive_bound():
    g = torch.Generator().manual_seed(0)
    c = (torch.rand(256, generator=g) < 0.5).long()
    s = torch.nn.functional.one_hot(c, 2).float()
    z = c.float()[:, None] + 0.1 * torch.randn(256, 1, generator=g)
    for reg in (anchors.VCLUB(1, 2, inner_steps=50, lr=1e-2, generator=g),
                anchors.MINEInner(1, 2, inner_steps=50, lr=1e-2, generator=g)):
        reg.fit(z, s)
        assert float(reg(z, s).detach()) > 0.3  # true MI log 2 = 0.69 nats


def test_adversary_reverses_the_gradient():
    g = torch.Generator().manual_seed(0)
    s, z_dep, _ = _binary_pair()
    z = z_dep.clone().requires_grad_(True)
    adv = anchors.Adversary(1, 2, generator=g)
    adv(z, s).backward()
    zz = z.detach().requires_grad_(True)
    torch.nn.functional.cross_entropy(adv.net(zz), s.argmax(1)).backward()
    assert torch.allclose(z.grad, -zz.grad) and float(zz.grad.abs().sum()) > 0


def test_anchors_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="same n"):
        anchors.HSIC()(torch.zeros(8, 2), torch.zeros(9, 2))


def test_missing_package_exits_2(monkeypatch):
    monkeypatch.setattr(fairness.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit) as e:
        fairness.package_dir()
    assert e.value.code == 2


def test_quick_synthetic_run_writes_table_plot_and_json(tmp_path, tiny_path):
    weights = tiny_path
    out = tmp_path / "out"
    threads = torch.get_num_threads()
    try:  # the script runs on one thread (--threads 1)
        res = fairness.main(["--quick", "--synthetic", "--tasks", "adult-sex", "adult-race",
                             "--weights", str(weights), "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    for f in ("results.md", "results.json", "pareto.png"):
        assert (out / f).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    methods = {r["method"] for r in saved["rows"] if r["task"] == "adult-race"}
    assert methods == {"none", *fairness.GRIDS}
    assert "InfoMin one-hot" not in {r["method"] for r in saved["rows"] if r["task"] == "adult-sex"}
    assert all(0.0 <= r["adv_bal_acc"] <= 1.0 and 0.0 <= r["target_acc"] <= 1.0
               and r["ms_per_step"] > 0 for r in res["runs"])
    assert "python -m benchmarks.fairness --quick" in (out / "results.md").read_text()
