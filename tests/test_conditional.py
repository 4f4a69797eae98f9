"""Conditional MI I(X; Y | Z) by the chain rule and its local-permutation test."""
import numpy as np
import pytest
import torch

from benchmarks import conditional as bench
from benchmarks.conditional import gaussian_cmi, gaussian_task, markov_gaussian
from infoatlas_loss import InfoAtlas, InfoAtlasConfig, load_pretrained, save_weights
from infoatlas_loss.conditional import (_mid_ranks, conditional_mi, conditional_mi_test,
                                        local_permutations)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)  # the test's own model; library code takes generators
    return InfoAtlas(InfoAtlasConfig.preset("tiny")).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def shipped():
    return load_pretrained()


# ------------------------------------------------------------------ closed forms
def test_closed_form_of_the_generators():
    rng = np.random.default_rng(0)
    for dz in (1, 4):
        for target, (dx, dy) in ((0.3, (1, 1)), (0.8, (2, 3))):
            assert gaussian_task(20, dz, target, rng, dx, dy)[3] == pytest.approx(target, abs=1e-9)
        assert gaussian_cmi(markov_gaussian(20, dz, rng)[3], 1, 1) == pytest.approx(0.0, abs=1e-9)
    # the closed form against the sample covariance of a large draw
    x, y, z, truth = gaussian_task(200_000, 3, 0.5, rng)
    assert gaussian_cmi(np.cov(np.hstack([x, y, z]).T), 1, 1) == pytest.approx(truth, abs=0.01)


@pytest.mark.parametrize("dz, method", [(2, "whole"), (6, "projected")])
def test_gaussian_cmi_with_the_shipped_model(shipped, dz, method):
    x, y, z, truth = gaussian_task(2000, dz, 0.5, np.random.default_rng(dz))
    res = conditional_mi(x, y, z, model=shipped)
    assert res.method == method and res.anchor == "x"
    assert res.cmi == pytest.approx(truth, abs=0.1)
    assert res.cmi == pytest.approx(res.mi_joint - res.mi_z, abs=1e-6)
    assert res.mi_z > 0.2  # X depends on Z: the chain rule subtracts a real term


def test_markov_chain_is_near_zero(shipped):
    for dz in (3, 7):
        x, y, z, _ = markov_gaussian(2000, dz, np.random.default_rng(dz))
        res = conditional_mi(x, y, z, model=shipped)
        assert abs(res.cmi) < 0.04, (dz, res)
        assert res.mi_z > 0.1  # X and Y are dependent through Z
        assert conditional_mi_test(x, y, z, num_permutations=19, model=shipped).p_value > 0.05


def test_test_detects_conditional_dependence(shipped):
    x, y, z, _ = gaussian_task(400, 3, 0.3, np.random.default_rng(5))
    res = conditional_mi_test(x, y, z, num_permutations=19, model=shipped)
    assert res.p_value == pytest.approx(1 / 20) and res.cmi > res.null_mean + 3 * res.null_std


# ------------------------------------------------------------------ the test's null
def test_size_holds_for_discrete_z(tiny):
    # X and Y independent given a 3-level Z that drives both: the local permutations stay
    # within the levels, so rejections at alpha = 0.05 (19 permutations) stay near 5 %
    r = np.random.default_rng(3)
    rejections = 0
    for rep in range(300):
        z = r.integers(0, 3, 40).astype(float)
        x, y = z + r.standard_normal(40), z ** 2 + r.standard_normal(40)
        rejections += conditional_mi_test(x, y, z, num_permutations=19, model=tiny, seed=rep).p_value <= 0.05
    assert 0.02 <= rejections / 300 <= 0.09, rejections


def test_local_permutations_stay_in_neighbourhoods():
    z = torch.randn(60, 2, generator=torch.Generator().manual_seed(0))
    perm = local_permutations(z, 8, 5, generator=torch.Generator().manual_seed(1))
    d = torch.cdist(_mid_ranks(z), _mid_ranks(z))  # distances the neighbourhoods use
    fifth = d.sort(dim=1).values[:, 4]  # radius of each row's 5 nearest (itself included)
    assert perm.shape == (8, 60)
    assert bool((torch.gather(d, 1, perm.T) <= fifth.unsqueeze(1) + 1e-12).all())
    assert np.mean([len(set(row.tolist())) for row in perm]) >= 0.85 * 60  # mostly without reuse
    assert (perm != torch.arange(60)).float().mean() > 0.5  # rows do move


def test_discrete_z_permutes_within_levels():
    z = torch.repeat_interleave(torch.tensor([0.0, 5.0, 9.0]), 20).unsqueeze(-1)
    perm = local_permutations(z, 4, 5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(z[perm], z.expand(4, 60, 1))  # every row keeps its level
    # ties broken at random: little reuse (a fixed tie order would reuse 5 rows per level)
    assert min(len(set(row.tolist())) for row in perm) >= 45


# ------------------------------------------------------------------ shapes, errors, results
def test_p_value_bounds_and_fields(tiny):
    r = np.random.default_rng(4)
    x, y, z = r.standard_normal((50, 2)), r.standard_normal(50), r.standard_normal((50, 3))
    res = conditional_mi_test(x, y, z, num_permutations=9, model=tiny, seed=1)
    assert res.p_value in [k / 10 for k in range(1, 11)]
    assert (res.num_permutations, res.num_neighbors, res.n) == (9, 5, 50)
    assert res.null_std >= 0 and res.seconds > 0


def test_wide_inputs_and_anchor(tiny):
    r = np.random.default_rng(6)
    z = r.standard_normal((80, 4))
    x = np.hstack([z[:, :2], r.standard_normal((80, 5))])  # 7 columns
    y = z[:, :1] + r.standard_normal((80, 1))
    res = conditional_mi(x, y, z, model=tiny)
    assert (res.anchor, res.method) == ("y", "projected") and np.isfinite(res.cmi)
    assert res.stderr >= 0
    t = conditional_mi_test(x, y, z, num_permutations=4, model=tiny)
    assert t.method == "projected" and 0 < t.p_value <= 1


def test_deterministic_and_input_types(tiny):
    r = np.random.default_rng(7)
    x, y, z = r.standard_normal((60, 1)), r.standard_normal((60, 1)), r.standard_normal((60, 2))
    a = conditional_mi(x, y, z, model=tiny, seed=3)
    b = conditional_mi(torch.as_tensor(x), torch.as_tensor(y[:, 0]), torch.as_tensor(z), model=tiny, seed=3)
    assert (a.cmi, a.mi_joint, a.mi_z) == pytest.approx((b.cmi, b.mi_joint, b.mi_z), abs=1e-6)
    s1 = conditional_mi_test(x, y, z, num_permutations=9, model=tiny, seed=2)
    s2 = conditional_mi_test(x, y, z, num_permutations=9, model=tiny, seed=2)
    assert (s1.cmi, s1.p_value, s1.null_mean) == (s2.cmi, s2.p_value, s2.null_mean)


def test_bad_input_is_named(tiny):
    x = np.random.default_rng(8).standard_normal((30, 2))
    with pytest.raises(ValueError, match="same number of rows"):
        conditional_mi(x, x, x[:20], model=tiny)
    with pytest.raises(ValueError, match="Z has no columns"):
        conditional_mi(x, x, np.zeros((30, 0)), model=tiny)
    with pytest.raises(ValueError, match="Y contains NaN"):
        conditional_mi(x, np.full(30, np.nan), x, model=tiny)
    with pytest.raises(ValueError, match="too few samples"):
        conditional_mi(x[:8], x[:8], x[:8], model=tiny)
    with pytest.raises(ValueError, match="X of shape"):
        conditional_mi(x[None], x, x, model=tiny)
    with pytest.raises(ValueError, match="num_permutations"):
        conditional_mi_test(x, x, x, num_permutations=0, model=tiny)
    with pytest.raises(ValueError, match="num_neighbors"):
        conditional_mi_test(x, x, x, num_neighbors=1, model=tiny)


# ------------------------------------------------------------------ benchmark script
def test_benchmark_quick(tiny, tmp_path):
    weights = tmp_path / "tiny.safetensors"
    save_weights(tiny, weights)
    threads = torch.get_num_threads()
    try:  # the script sets its --threads (default 1) for the process
        res = bench.main(["--quick", "--weights", str(weights), "--out", str(tmp_path), "--test-n", "60"])
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / "results.md").is_file() and (tmp_path / "results.json").is_file()
    assert {r["method"] for r in res["gaussian"]} == {"whole", "projected"}
    assert all(0 <= r["rate"] <= 1 for r in res["null"] + res["power"])
