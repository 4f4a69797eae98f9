"""``mi_interval``: standard error and confidence interval of ``estimate_mi`` by half-sampling."""
import math

import numpy as np
import pytest
import torch

from infoatlas_loss import InfoAtlas, InfoAtlasConfig, estimate_mi
from infoatlas_loss.uncertainty import MIInterval, mi_interval, scaled_stderr, subsample_indices


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)  # the test's own model; library code takes generators
    return InfoAtlas(InfoAtlasConfig.preset("tiny")).eval().requires_grad_(False)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _gaussian(n, d, rho, seed):
    """d independent pairs with correlation rho: MI = -d/2 log(1 - rho^2) nats."""
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, d))
    return x, rho * x + math.sqrt(1 - rho ** 2) * r.standard_normal((n, d))


def test_subsamples_are_without_replacement_and_complementary():
    idx = subsample_indices(101, 50, 7, torch.Generator().manual_seed(0))
    assert idx.shape == (7, 50)
    assert all(len(set(row.tolist())) == 50 for row in idx)  # no tied rows
    assert not set(idx[0].tolist()) & set(idx[1].tolist())  # the halves of one split
    odd = subsample_indices(10, 7, 3, torch.Generator().manual_seed(0))  # 2 m > n: no pairs
    assert odd.shape == (3, 7) and all(len(set(row.tolist())) == 7 for row in odd)


@pytest.mark.parametrize("fraction", [0.5, 0.25, 0.8])
def test_rate_correction_recovers_the_stderr_of_a_mean(fraction):
    # closed form: the sample mean of n values has standard error sd / sqrt(n); the spread
    # of subsample means, rescaled by m / (n - m), must give it back (2 000 subsamples:
    # the variance estimate is within a few per cent)
    n = 400
    v = torch.from_numpy(np.random.default_rng(0).standard_normal(n) * 3.0)
    m = round(fraction * n)
    idx = subsample_indices(n, m, 2000, torch.Generator().manual_seed(1))
    se = scaled_stderr(v[idx].mean(dim=1), n, m)
    assert se == pytest.approx(float(v.std()) / math.sqrt(n), rel=0.06)


def test_interval_fields_and_point_estimate(tiny):
    x, y = _gaussian(200, 2, 0.6, 0)
    r = mi_interval(x, y, model=tiny, num_resamples=8, seed=3)
    assert isinstance(r, MIInterval)
    assert r.mi == pytest.approx(estimate_mi(x, y, model=tiny, seed=3).mi, abs=1e-6)
    assert r.stderr > 0 and r.low < r.mi < r.high
    z = 1.959964
    assert r.high - r.mi == pytest.approx(z * r.stderr, rel=1e-5)
    assert r.mi - r.low == pytest.approx(z * r.stderr, rel=1e-5)
    assert (r.level, r.n, r.subsample_size, r.num_resamples) == (0.95, 200, 100, 8)
    assert (r.method, r.estimate) == ("half-sampling", "whole")
    assert float(r) == r.mi and r.seconds > 0
    narrow = mi_interval(x, y, model=tiny, num_resamples=8, seed=3, level=0.9)
    assert narrow.stderr == pytest.approx(r.stderr) and narrow.high < r.high


def test_deterministic_for_a_seed(tiny):
    x, y = _gaussian(120, 1, 0.5, 1)
    a, b = (mi_interval(x, y, model=tiny, num_resamples=6, seed=5) for _ in range(2))
    assert (a.mi, a.stderr, a.resample_mean) == (b.mi, b.stderr, b.resample_mean)
    c = mi_interval(x, y, model=tiny, num_resamples=6, seed=6)
    assert c.stderr != a.stderr


def test_wide_variables_projected_and_sliced(tiny):
    # tiny has max_dim 3: five columns are wide
    x, y = _gaussian(160, 5, 0.7, 2)
    p = mi_interval(x, y, model=tiny, num_resamples=6)
    assert (p.estimate, p.method) == ("projected", "half-sampling")
    assert p.mi == pytest.approx(estimate_mi(x, y, model=tiny).mi, abs=1e-6)
    assert p.stderr > 0 and math.isfinite(p.resample_mean)
    s = mi_interval(x, y, model=tiny, num_resamples=6, wide="sliced", num_slices=8,
                    resample_slices=4, fraction=0.6)
    assert (s.estimate, s.method, s.subsample_size) == ("sliced", "subsampling+slices", 96)
    slice_se = estimate_mi(x, y, model=tiny, wide="sliced", num_slices=8).stderr
    assert s.stderr > slice_se > 0  # slice Monte-Carlo error is part of it


def test_stderr_matches_the_spread_over_fresh_samples(tiny):
    # the interval's standard error against the actual spread of the estimate over 40
    # independent datasets (sd known to about 11 %; each stderr to about 1 / sqrt(32))
    est, se = [], []
    for rep in range(40):
        x, y = _gaussian(200, 2, 0.6, 100 + rep)
        r = mi_interval(x, y, model=tiny, num_resamples=16, seed=rep)
        est.append(r.mi)
        se.append(r.stderr)
    ratio = np.mean(se) / np.std(est, ddof=1)
    assert 0.7 <= ratio <= 1.5, ratio


@pytest.mark.parametrize("kwargs, match", [
    (dict(level=1.0), "level"), (dict(level=0.0), "level"), (dict(fraction=1.0), "fraction"),
    (dict(num_resamples=1), "num_resamples"), (dict(fraction=0.05), "subsamples of 3 rows"),
    (dict(wide="random"), "wide"), (dict(resample_slices=0), "resample_slices"),
])
def test_bad_arguments(tiny, kwargs, match):
    x, y = _gaussian(60, 1, 0.5, 0)
    with pytest.raises(ValueError, match=match):
        mi_interval(x, y, model=tiny, **kwargs)


def test_projected_subsamples_need_two_halves(tiny):
    x, y = _gaussian(40, 5, 0.5, 0)  # m = 20 rows: halves of 10 < 16
    with pytest.raises(ValueError, match="two halves"):
        mi_interval(x, y, model=tiny)


@pytest.mark.slow
def test_covers_closed_form_mi_with_the_shipped_model():
    # a 1 x 1 Gaussian with MI 0.5 nats, where the shipped estimator's bias is small: the
    # 95 % interval must cover the true MI in at least 26 of 30 repetitions
    rho = math.sqrt(1 - math.exp(-1.0))
    hits = 0
    for rep in range(30):
        x, y = _gaussian(500, 1, rho, 1000 + rep)
        r = mi_interval(x, y, num_resamples=32, seed=rep)
        hits += r.low <= 0.5 <= r.high
    assert hits >= 26, hits


def test_coverage_benchmark_quick(tmp_path, tiny_path):
    pytest.importorskip("matplotlib", reason="the benchmarks need the bench extra")
    from benchmarks import coverage
    weights = tiny_path
    res = coverage.main(["--quick", "--weights", str(weights), "--out", str(tmp_path / "out")])
    assert [(r["cell"], r["n"]) for r in res["rows"]] == [
        ("gaussian-1x1-0.5", 200), ("gaussian-3x3-1", 200),
        (coverage.BMI_TASKS[0], 200), (coverage.BMI_TASKS[-1], 200)]
    for r in res["rows"]:
        assert r["reps"] == 4 and r["mean_se"] > 0 and r["width95"] > r["width90"] > 0
        assert 0 <= r["cov_true95"] <= 1 and r["cov_E90"] <= r["cov_E95"]
    for f in ("results.json", "results.md", "coverage.png"):
        assert (tmp_path / "out" / f).stat().st_size > 0
    assert "python -m benchmarks.coverage --quick" in (tmp_path / "out" / "results.md").read_text()
