"""Fast checks of the benchmark scripts (speed, independence, noise consistency, motion,
MINE / InfoNCE): every script's ``main`` runs end to end in seconds on a tiny random-weight
model and writes its JSON / Markdown / PNG; the data generators and the neural baselines
are checked on their own."""
import json
import math
import mmap
import time

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn", reason="the benchmarks need the bench extra")
pytest.importorskip("matplotlib", reason="the benchmarks need the bench extra")

from benchmarks import independence, motion, noise_consistency, speed
from benchmarks.baselines_neural import ConcatCritic, infonce, mine, train_estimator
from benchmarks.common import PeakRSS, infoatlas_on_slices, ksg_on_slices, random_slices
from infoatlas_loss import InfoAtlas, InfoAtlasConfig, load_weights, save_weights


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _outputs(out, name):
    for ext in ("json", "md", "png"):
        f = out / f"{name}.{ext}"
        assert f.is_file() and f.stat().st_size > 0, f
    return json.loads((out / f"{name}.json").read_text())


# ------------------------------------------------------------------ scripts end to end
def test_speed_main(tiny_path, tmp_path):
    res = speed.main(["--quick", "--weights", tiny_path, "--out", str(tmp_path), "--n", "300",
                      "--dims", "1", "2", "--ns", "200", "400", "--ksg-max-n", "400",
                      "--slice-dims", "6", "--slice-n", "200", "--num-slices", "2",
                      "--batches", "32", "--emb-dims", "2", "6", "--loss-slices", "2",
                      "--neural-epochs", "1", "--neural-patience", "1"])
    js = _outputs(tmp_path, "speed")
    assert {r["method"] for r in js["a"]} == {"InfoAtlas", "KSG", "CCA", "MINE", "InfoNCE"}
    assert set(res["ratios"]) == {"speedup_vs_MINE", "speedup_vs_InfoNCE", "InfoAtlas_over_KSG"}
    assert [r["n"] for r in js["b"]["by_n"]] == [200, 400]
    assert all("ksg_seconds" in r and r["peak_mib"] >= 0 for r in js["b"]["by_n"])
    assert js["b"]["by_dim"][0]["num_slices"] == 2
    assert [(r["batch"], r["dim"]) for r in js["c"]] == [(32, 2), (32, 6)]
    assert all(r["loss_ms"] > 0 and r["mlp_ms"] > 0 for r in js["c"])


def test_independence_main(tiny_path, tmp_path):
    res = independence.main(["--quick", "--weights", tiny_path, "--out", str(tmp_path),
                             "--dims", "8", "--ns", "60", "--trials", "3", "--num-slices", "2"])
    js = _outputs(tmp_path, "independence")
    assert {(r["setting"], r["method"]) for r in js["rows"]} == {
        (s, m) for s in independence.SETTINGS for m in ("InfoAtlas", "KSG")}
    assert all(0 < r["auprc"] <= 1 for r in res["rows"])


def test_independence_mine_on_slices(tiny_path, tmp_path):
    res = independence.main(["--weights", tiny_path, "--out", str(tmp_path), "--settings",
                             "indep_coords", "--dims", "6", "--ns", "60", "--trials", "2",
                             "--num-slices", "2", "--mine-slices", "1", "--mine-epochs", "2",
                             "--mine-patience", "2"])
    assert {r["method"] for r in res["rows"]} == {"InfoAtlas", "KSG", "MINE"}


def test_noise_consistency_main(tiny_path, tmp_path):
    res = noise_consistency.main(["--quick", "--weights", tiny_path, "--out", str(tmp_path),
                                  "--n", "150", "--repeats", "2", "--num-slices", "2",
                                  "--sigmas", "3", "0.1", "1"])
    js = _outputs(tmp_path, "noise_consistency")
    s = js["summary"]["InfoAtlas"]
    assert s["sigmas"] == [0.1, 1.0, 3.0] and len(s["mean"]) == 3 and s["repeats"] == 2
    assert np.array(res["values"]["KSG"]).shape == (2, 3)


def test_motion_main(tiny_path, tmp_path):
    res = motion.main(["--quick", "--weights", tiny_path, "--out", str(tmp_path),
                       "--objects", "2", "--points", "6", "--frames", "60"])
    js = _outputs(tmp_path, "motion")
    sc = js["scenes"][0]
    assert sc["pairs"] == 11 and sc["n"] == 59
    assert set(res["mean_auc"]) == {"InfoAtlas", "KSG"}
    assert all(0 <= v <= 1 for v in res["mean_auc"].values())


# ------------------------------------------------------------------ neural baselines
def _gauss(n=1000, mi=0.5, seed=0, d=1):
    rho = math.sqrt(1 - math.exp(-2 * mi / d))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    return x, rho * x + math.sqrt(1 - rho ** 2) * rng.standard_normal((n, d))


def test_mine_and_infonce_on_correlated_gaussian():
    x, y = _gauss(1000, mi=0.5)
    t0 = time.perf_counter()
    rm = mine(x, y, epochs=150, patience=40, seed=0)
    ri = infonce(x, y, epochs=25, patience=10, batch_size=100, hidden=(32, 32), seed=0)
    assert time.perf_counter() - t0 < 20
    assert abs(rm.mi - 0.5) < 0.3, rm
    assert abs(ri.mi - 0.5) < 0.3, ri
    assert rm.method == "mine" and ri.method == "infonce" and rm.seconds > 0


def test_mine_near_zero_when_independent_and_early_stops():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((600, 2)), rng.standard_normal((600, 2))
    r = mine(x, y, epochs=400, patience=15, seed=0)
    assert r.mi < 0.1
    assert r.stopped_early and r.epochs - r.best_epoch == 15


def test_pairwise_critic_matches_concatenation():
    torch.manual_seed(0)
    c = ConcatCritic(2, 3)
    x, y = torch.randn(5, 2), torch.randn(5, 3)
    full = torch.stack([torch.stack([c(x[i], y[j]) for j in range(5)]) for i in range(5)])
    torch.testing.assert_close(c.pairwise(x, y), full, rtol=1e-5, atol=1e-6)


def test_neural_rejects_unknown_method():
    with pytest.raises(ValueError):
        train_estimator(*_gauss(50), "nwj")


# ------------------------------------------------------------------ Goldfeld generators
@pytest.mark.parametrize("setting", independence.SETTINGS)
def test_goldfeld_shapes_and_marginals(setting):
    rng = np.random.default_rng(0)
    x, y = independence.goldfeld_pair(setting, 20000, 7, True, rng)
    assert x.shape == y.shape == (20000, 7)
    np.testing.assert_allclose(y.var(0), 1.0, atol=0.05)  # unit-variance coordinates
    np.testing.assert_allclose(x.var(0), 1.0, atol=0.05)
    c = np.corrcoef(x.T, y.T)[:7, 7:]
    assert np.abs(c).max() > 0.2  # the dependent population is visibly dependent


@pytest.mark.parametrize("setting", independence.SETTINGS)
def test_goldfeld_independent_population_is_independent(setting):
    x, y = independence.goldfeld_pair(setting, 40000, 6, False, np.random.default_rng(1))
    c = np.corrcoef(x.T, y.T)[:6, 6:]
    c2 = np.corrcoef((x ** 2).T, (y ** 2).T)[:6, 6:]  # also no dependence in the squares
    assert np.abs(c).max() < 0.03 and np.abs(c2).max() < 0.03
    # same y-marginal as the dependent population (y drawn from the same model)
    _, yd = independence.goldfeld_pair(setting, 40000, 6, True, np.random.default_rng(1))
    np.testing.assert_allclose(np.cov(y.T), np.cov(yd.T), atol=0.05)


def test_goldfeld_population_labels_and_determinism():
    x, y, lab = independence.population("two_features", 30, 5, 4, seed=3)
    assert x.shape == y.shape == (8, 30, 5) and lab.tolist() == [1] * 4 + [0] * 4
    x2, _, _ = independence.population("two_features", 30, 5, 4, seed=3)
    assert torch.equal(x, x2)
    with pytest.raises(ValueError):
        independence.goldfeld_pair("nope", 10, 3, True, np.random.default_rng(0))


# ------------------------------------------------------------------ motion scenes
def test_motion_scene_is_rigid_and_labelled():
    sc = motion.make_scene(objects=3, points=5, frames=40, noise=0.0, seed=2)
    pos, lab = sc["pos"], sc["label"]
    assert pos.shape == (15, 40, 3) and lab.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)  # (N, N, T)
    same = lab[:, None] == lab[None]
    assert np.ptp(dist[same], axis=-1).max() < 1e-9  # rigid: distances within a body are fixed
    assert np.ptp(dist[~same], axis=-1).min() > 1e-3  # bodies move relative to each other
    assert motion.features(pos).shape == (15, 39, 3)
    assert motion.features(pos, "position").shape == (15, 40, 3)
    sc2 = motion.make_scene(objects=3, points=5, frames=40, noise=0.0, seed=2)
    np.testing.assert_array_equal(pos, sc2["pos"])


# ------------------------------------------------------------------ helpers
def test_slices_shared_between_methods(tiny_path):
    model = load_weights(tiny_path)
    x, y = torch.randn(2, 80, 7), torch.randn(2, 80, 2)
    xs, ys = random_slices(x, y, 3, 3, torch.Generator().manual_seed(0))
    assert xs.shape == (2, 3, 80, 3) and ys.shape == (2, 3, 80, 2)
    assert infoatlas_on_slices(model, xs, ys).shape == ksg_on_slices(xs, ys).shape == (2, 3)


def test_noise_summary_flags():
    v = np.array([[3.0, 2.0, 1.0], [3.2, 1.9, 1.1]])
    s = noise_consistency.summarize(v, [0.1, 1, 3])
    assert s["strictly_decreasing"] and s["all_bars_separate"] and s["monotone_repeats"] == 2
    s = noise_consistency.summarize(np.array([[1.0, 1.2], [1.0, 0.2]]), [0.1, 1])
    assert s["monotone_repeats"] == 1 and not s["all_bars_separate"]


def test_peak_rss_sees_an_allocation():
    with PeakRSS() as m:
        # fresh anonymous pages, touched: malloc could reuse memory already resident
        a = mmap.mmap(-1, 40 * 2**20)
        a.write(b"\x01" * len(a))
        deadline = time.time() + 30.0  # on a loaded machine the sampler may wait its turn
        while m._max - m.base <= 20 and time.time() < deadline:
            time.sleep(0.01)
        a.close()
    assert m.peak > 20


def test_loss_gradients_main(tiny_path, tmp_path):
    from benchmarks import loss_gradients

    res = loss_gradients.main(["--quick", "--weights", tiny_path, "--out", str(tmp_path)])
    assert {r["method"] for r in res["rows"]} == {"ours", "ours-debias", "gauss", "copula", "infonce",
                                                  "mine", "hsic"}
    gauss = [r for r in res["rows"] if r["method"] == "gauss"][0]
    assert gauss["cos"] > 0.2  # the plug-in oracle points along the closed-form gradient
    assert all(0 <= r["angle"] <= 90 for r in res["ascent"])
    md = (tmp_path / "results.md").read_text()
    assert "--quick" in md and "principal angle" in md


def test_nonmonotone_truth_and_main(tiny_path, tmp_path):
    import numpy as np

    from benchmarks import nonmonotone
    from benchmarks.baselines import ksg

    f, sigma = nonmonotone.FAMILIES["quadratic"]
    x, y = nonmonotone.sample(f, sigma, 20000, np.random.default_rng(0))
    assert nonmonotone.true_mi(f, sigma) == pytest.approx(ksg(x, y), abs=0.06)
    # a sine over whole periods: same law of Y for one or two periods, hence the same MI
    assert nonmonotone.true_mi(*nonmonotone.FAMILIES["sine, one period"]) == pytest.approx(
        nonmonotone.true_mi(*nonmonotone.FAMILIES["sine, two periods"]), abs=1e-3)
    res = nonmonotone.main(["--quick", "--weights", tiny_path, "--out", str(tmp_path), "--critic-steps", "3"])
    assert len(res["rows"]) == 2 and all(r["truth"] > 0.3 for r in res["rows"])
    assert all(math.isfinite(r["critic trained on the sample"]) for r in res["rows"])
    assert (tmp_path / "nonmonotone.png").stat().st_size > 0 and "--quick" in (tmp_path / "results.md").read_text()


def test_step_cost_main(tiny_path, tmp_path):
    from benchmarks import step_cost

    res = step_cost.main(["--quick", "--weights", tiny_path, "--out", str(tmp_path)])
    rows = res["rows"]
    assert {r["setting"] for r in rows} == {"infomin", "infomax"}
    assert len(rows) == 9 + 6 and all(r["ms"] > 0 for r in rows)
    ours = [r for r in rows if r["method"] in ("InfoMin (ours, 8 slices)", "InfoMax (ours, 16 slices)")]
    assert all(r["ratio"] == 1 for r in ours)
    assert "## infomin" in (tmp_path / "results.md").read_text()
