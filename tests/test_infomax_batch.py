"""The two-view objectives of ``benchmarks.infomax_anchors`` against closed forms, the view
augmentation, and ``benchmarks.infomax_batch --quick`` end to end on a tiny random-weight model."""
import json
import math

import pytest
import torch

pytest.importorskip("sklearn", reason="the benchmarks need the bench extra")
pytest.importorskip("matplotlib", reason="the benchmarks need the bench extra")

from benchmarks import infomax_batch
from benchmarks.infomax_anchors import MINE, BarlowTwins, InfoNCE, VICReg
from infoatlas_loss import InfoAtlas, InfoAtlasConfig, save_weights


def _hadamard_columns(n: int, d: int, scale: float) -> torch.Tensor:
    """(n, d): d orthogonal zero-mean +-scale columns (Sylvester Hadamard without its ones column)."""
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return scale * h[:, 1:d + 1]


def test_infonce_matches_closed_form_on_orthogonal_views():
    n, t = 6, 0.5
    a = torch.eye(n)  # cos(a_i, a_j) = [i == j]
    loss = InfoNCE(t)(a, a)
    want = -math.log(math.exp(1 / t) / (math.exp(1 / t) + n - 1))
    assert float(loss) == pytest.approx(want, rel=1e-6)
    nce = InfoNCE(t)
    nce(a, a)
    assert nce.last_bound == pytest.approx(math.log(n) - want, rel=1e-6)
    assert nce.last_bound < math.log(n)


def test_vicreg_zero_on_identical_decorrelated_views_and_mse_otherwise():
    a = _hadamard_columns(8, 4, 2.0)  # column sd > 1, zero covariance
    assert float(VICReg()(a, a)) == pytest.approx(0.0, abs=1e-6)
    b = a + 0.5
    assert float(VICReg()(a, b)) == pytest.approx(25 * 0.25, rel=1e-5)


def test_barlow_twins_closed_form_on_identical_decorrelated_views():
    n, d = 8, 4
    a = _hadamard_columns(n, d, 3.0)
    # unbiased column sd, divided by n: the diagonal is (n - 1) / n, off-diagonals 0
    assert float(BarlowTwins()(a, a)) == pytest.approx(d / n ** 2, rel=1e-5)
    assert float(BarlowTwins()(a, -a)) == pytest.approx(d * (1 + (n - 1) / n) ** 2, rel=1e-5)


def test_objectives_reject_mismatched_views():
    with pytest.raises(ValueError, match="same shape"):
        InfoNCE()(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="temperature"):
        InfoNCE(0.0)


def test_mine_critic_learns_a_positive_bound_on_dependent_views():
    g = torch.Generator().manual_seed(0)
    mine = MINE(2, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(mine.parameters(), lr=3e-3)
    for _ in range(150):
        a = torch.randn(128, 2, generator=g)
        loss = mine(a, a + 0.1 * torch.randn(128, 2, generator=g))  # true MI 2 * log(101) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert mine.last_bound > 1.0


def test_augment_identity_mask_and_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 64, generator=g)
    assert torch.equal(infomax_batch.augment(x, 0, 0.0, 0.0, g), x)
    assert torch.equal(infomax_batch.augment(x, 1, 0.0, 1.0, g), torch.zeros_like(x))
    img = torch.zeros(50, 8, 8)
    img[:, 4, 3] = 1.0  # one lit pixel away from the border
    v = infomax_batch.augment(img.reshape(50, 64), 1, 0.0, 0.0, g).view(50, 8, 8)
    assert torch.equal(v.sum((1, 2)), torch.ones(50))
    r, c = v.nonzero()[:, 1], v.nonzero()[:, 2]
    assert set((r - 4).tolist()) == {-1, 0, 1} and set((c - 3).tolist()) == {-1, 0, 1}


def test_quick_run_writes_table_plot_and_json(tmp_path, tiny_path):
    weights = tiny_path
    out = tmp_path / "out"
    threads = torch.get_num_threads()
    try:  # the script runs on one thread (--threads 1)
        res = infomax_batch.main(["--quick", "--weights", str(weights), "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    for f in ("results.md", "results.json", "probe_vs_batch.png"):
        assert (out / f).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in saved["rows"]} == set(infomax_batch.METHODS)
    assert len(res["runs"]) == len(infomax_batch.METHODS) * len(res["args"]["batches"])
    assert all(0.0 <= r["probe_acc"] <= 1.0 and r["ms_per_step"] > 0 for r in res["runs"])
    assert "python -m benchmarks.infomax_batch --quick" in (out / "results.md").read_text()
    merged = infomax_batch.main(["--quick", "--weights", str(weights), "--out", str(tmp_path / "m"),
                                 "--merge", str(out / "runs_so_far.json")])
    torch.set_num_threads(threads)
    assert [r["probe_acc"] for r in merged["rows"]] == [r["probe_acc"] for r in res["rows"]]
    assert len(merged["commands"]) == 2  # the training run's command and the merge's
