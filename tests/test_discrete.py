"""Discrete and mixed data: plug-in MI of discrete pairs against exact pmfs, ordered level
codes for mixed pairs, random tie-breaking, and bounded gradients on tied inputs."""
import math

import numpy as np
import pytest
import torch

from infoatlas_loss import load_pretrained
from infoatlas_loss.discrete import (dequantise, discrete_mi, level_limit, order_levels,
                                     plugin_mi)
from infoatlas_loss.functional import estimate_mi, sliced_mi
from infoatlas_loss.softrank import soft_rank

from .conftest import gen


def _pmf_mi(p):
    p = p / p.sum()
    q = p.sum(1, keepdims=True) @ p.sum(0, keepdims=True)
    m = p > 0
    return float((p[m] * np.log(p[m] / q[m])).sum())


def _binary_pairs(rho, n, cols, seed):
    z = np.random.default_rng(seed).multivariate_normal([0, 0], [[1, rho], [rho, 1]], (n, cols))
    p11 = 0.25 + math.asin(rho) / (2 * math.pi)  # orthant probability
    exact = cols * _pmf_mi(np.array([[p11, 0.5 - p11], [0.5 - p11, p11]]))
    return (z[..., 0] > 0).astype(float), (z[..., 1] > 0).astype(float), exact


# ------------------------------------------------------------------ discrete pairs
def test_three_binarised_gaussian_pairs_match_the_pmf(tiny):
    for seed in range(3):
        x, y, exact = _binary_pairs(0.89, 2000, 3, seed)
        res = estimate_mi(x, y, model=tiny)
        assert res.method == "discrete"
        assert abs(res.mi - exact) < 0.05, (res.mi, exact)  # exact 0.808


def test_permuted_category_codes_match_the_pmf(tiny):
    k, keep, target = 6, 0.6, np.array([3, 0, 5, 1, 4, 2])
    p = np.full((k, k), (1 - keep) / k / k)
    p[np.arange(k), target] += keep / k
    r = np.random.default_rng(0)
    x = r.integers(0, k, 3000)
    y = np.where(r.random(3000) < keep, target[x], r.integers(0, k, 3000))
    assert abs(estimate_mi(x, y, model=tiny).mi - _pmf_mi(p)) < 0.03


def test_plugin_is_centred_under_independence():
    r = np.random.default_rng(1)
    est = [plugin_mi(torch.as_tensor(r.integers(0, 5, 500)), torch.as_tensor(r.integers(0, 4, 500)),
                     5, 4) for _ in range(200)]
    # plug-in bias (K_x - 1)(K_y - 1) / (2n) = 0.012 nats; Miller-Madow removes it
    assert abs(np.mean(est)) < 0.002 and np.std(est) < 0.01


def test_discrete_detection_and_continuous_data_untouched():
    r = np.random.default_rng(2)
    codes = torch.as_tensor(r.integers(0, 4, (2, 200, 2))).double()
    cont = torch.as_tensor(r.standard_normal((2, 200, 2)))
    relu = torch.relu(cont)  # many exact zeros, yet continuous
    _, found = discrete_mi(torch.cat([codes, relu]), torch.cat([codes, codes]))
    assert found.tolist() == [True, True, False, False]
    assert level_limit(200) == 20


def test_sliced_mi_on_discrete_pairs_is_the_plugin_with_zero_gradient(tiny):
    x, y, _ = _binary_pairs(0.7, 400, 2, 3)
    xt = torch.tensor(x, requires_grad=True)
    v = sliced_mi(xt, torch.tensor(y), model=tiny)
    assert v.item() == pytest.approx(estimate_mi(x, y, model=tiny).mi, abs=1e-6)
    v.backward()
    assert torch.all(xt.grad == 0)


# ------------------------------------------------------------------ mixed pairs
def test_order_levels_relabels_to_monotone_codes():
    r = np.random.default_rng(3)
    k = torch.as_tensor(r.integers(0, 4, 500))
    mu = torch.tensor([2.0, -3.0, 5.0, 0.0])  # non-monotone in the code
    y = (mu[k] + 0.1 * torch.as_tensor(r.standard_normal(500))).unsqueeze(-1)
    x = torch.stack([k.double(), torch.zeros(500, dtype=torch.float64)], -1)
    ox, oy = order_levels(x.unsqueeze(0), y.unsqueeze(0))
    torch.testing.assert_close(oy[0], y)  # the continuous side is untouched
    rank_of_mean = torch.argsort(torch.argsort(mu)).double()
    torch.testing.assert_close(ox[0, :, 0], rank_of_mean[k])  # 0..3 in the order of the means
    assert torch.all(ox[0, :, 1] == 0)


def test_mixed_classes_with_the_shipped_model():
    from scipy import integrate
    from scipy.stats import norm

    mu = np.array([1.0, -2.0, 3.0, 0.0])  # class means, non-monotone in the code
    f = lambda t: norm.pdf(t - mu).mean()  # noqa: E731
    h_y = integrate.quad(lambda t: -f(t) * math.log(f(t)), -15, 15, limit=300)[0]
    exact = h_y - 0.5 * math.log(2 * math.pi * math.e)
    r = np.random.default_rng(4)
    k = r.integers(0, 4, 2000)
    y = mu[k] + r.standard_normal(2000)
    net = load_pretrained()
    auto = estimate_mi(k, y, model=net).mi
    assert abs(auto - exact) < 0.08, (auto, exact)  # exact 0.80
    assert estimate_mi(k, y, model=net, ties="off").mi < 0.2  # unordered codes read ~0


# ------------------------------------------------------------------ tie-breaking
def test_dequantise_keeps_levels_and_untied_values():
    v = torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0, 2.5, 4.0, 4.0]]).unsqueeze(-1)  # (1, 8, 1)
    rank = torch.arange(8).unsqueeze(0)
    out = dequantise(v, torch.tensor([5]), rank, stream=2)
    assert out[0, 5, 0] == 2.5  # untied: unchanged
    gap = torch.tensor([1.0, 1.0, 1.5, 1.5, 1.5, 0.0, 1.5, 1.5])  # to the next level (top: below)
    d = (out - v)[0, :, 0]
    assert torch.all(d >= 0) and torch.all(d < gap + (gap == 0))
    assert torch.all(d[gap > 0] > 0)
    again = dequantise(v, torch.tensor([5]), rank, stream=2)
    assert torch.equal(out, again)
    assert not torch.equal(out, dequantise(v, torch.tensor([6]), rank, stream=2))


@pytest.mark.parametrize("ties", ["auto", "jitter"])
def test_deterministic_and_batched_equals_looped(tiny, ties):
    r = np.random.default_rng(5)
    n = 200
    k = r.integers(0, 3, (n, 1)).astype(float)
    z = r.standard_normal((n, 2))
    pairs = [(k, k[:, [0, 0]] + (r.random((n, 2)) < 0.3)),  # discrete pair
             (k, z + k),  # mixed
             (np.maximum(z[:, :1], 0.3), z[:, :1] + r.standard_normal((n, 1)))]  # ReLU-like
    xs = torch.tensor(np.stack([np.pad(p[0], ((0, 0), (0, 1))) for p in pairs]))  # (3, n, 2)
    ys = torch.tensor(np.stack([np.pad(p[1], ((0, 0), (0, 2 - p[1].shape[1]))) for p in pairs]))
    batched = sliced_mi(xs, ys, model=tiny, generator=gen(7), reduction="none", ties=ties)
    looped = torch.stack([sliced_mi(xs[i], ys[i], model=tiny, generator=gen(7), ties=ties)
                          for i in range(3)])
    torch.testing.assert_close(batched, looped, atol=1e-6, rtol=0)
    again = sliced_mi(xs, ys, model=tiny, generator=gen(7), reduction="none", ties=ties)
    assert torch.equal(batched, again)
    assert estimate_mi(xs[1], ys[1], model=tiny, ties=ties, seed=3).mi == \
        estimate_mi(xs[1], ys[1], model=tiny, ties=ties, seed=3).mi


def test_bad_ties_option_is_named(tiny):
    x = torch.randn(32, 1)
    with pytest.raises(ValueError, match="ties must be one of"):
        sliced_mi(x, x, model=tiny, ties="round")
    with pytest.raises(ValueError, match="ties must be one of"):
        estimate_mi(x, x, model=tiny, ties=None)


# ------------------------------------------------------------------ gradients
def test_soft_rank_slope_on_ties_is_bounded():
    w = torch.randn(200, 1, generator=gen(0))

    def max_grad(x, ties):
        x = x.clone().requires_grad_(True)
        (soft_rank(x, ties=ties) * w).sum().backward()
        return x.grad.abs().max().item()

    binary = torch.cat([torch.zeros(100), torch.ones(100)]).unsqueeze(-1)
    ref = max_grad(torch.randn(200, 1, generator=gen(1)), True)
    # the level gap (1) sets the bandwidth of the tied anchors, as the spacing does for
    # continuous data; the plain rule leaves the floor (1e-3 of the scale): 400 x steeper
    assert max_grad(binary, True) < 2 * ref
    assert max_grad(binary, False) > 100 * ref


@pytest.mark.parametrize("kind", ["relu x", "binary y", "binary x"])
def test_finite_normal_size_gradients_on_tied_inputs(tiny, kind):
    g = gen(8)
    z = torch.randn(256, 3, generator=g)
    y = z + torch.randn(256, 3, generator=g)

    def grad_norm(x, y):
        x = x.clone().requires_grad_(True)
        sliced_mi(x, y, model=tiny, generator=gen(9)).backward()
        assert torch.isfinite(x.grad).all()
        return x.grad.norm().item()

    ref = grad_norm(z, y)
    if kind == "relu x":
        got = grad_norm(torch.relu(z - 0.5), y)
    elif kind == "binary y":
        got = grad_norm(z, (y > 0).double().float())
    else:
        got = grad_norm((z > 0).float(), y)
    assert got < 30 * ref, (got, ref)


def test_benchmark_quick_runs(tmp_path, tiny_path):
    pytest.importorskip("scipy")
    from benchmarks import discrete

    res = discrete.main(["--quick", "--weights", tiny_path, "--out", str(tmp_path), "--ns", "300"])
    assert (tmp_path / "results.md").is_file() and (tmp_path / "results.json").is_file()
    assert len(res["rows"]) == len(discrete.CASES) and len(res["gradients"]) == 6
    disc = [r for r in res["rows"] if r["case"] == "3 binary pairs rho=0.89"][0]
    assert abs(disc["auto"] - disc["truth"]) < 0.2  # plug-in: model-free
