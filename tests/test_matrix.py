"""``mi_matrix``: every pair of variables of a table in batched passes, and its heatmap."""
import math

import numpy as np
import pytest
import torch

from infoatlas_loss import load_pretrained
from infoatlas_loss.matrix import MIMatrix, mi_matrix


def _table(n=120, p=5, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, p))
    x[:, 1] = x[:, 0] + 0.5 * r.standard_normal(n)
    return x


def _off_diagonal(m):
    return m[~np.eye(m.shape[0], dtype=bool)]


def test_symmetric_with_blank_diagonal(tiny):
    res = mi_matrix(_table(), model=tiny)
    assert isinstance(res, MIMatrix) and res.mi.shape == (5, 5) and res.p_value is None
    assert np.isnan(np.diag(res.mi)).all() and np.isfinite(_off_diagonal(res.mi)).all()
    np.testing.assert_array_equal(res.mi, res.mi.T)
    assert res.names == ("0", "1", "2", "3", "4") and res.n == res.num_rows == 120
    assert res.num_permutations == 0 and res.seconds > 0


def test_deterministic_and_independent_of_chunking(tiny):
    x = _table()
    a = mi_matrix(x, model=tiny, seed=3)
    b = mi_matrix(torch.as_tensor(x), model=tiny, seed=3, chunk_size=4)
    np.testing.assert_allclose(a.mi, b.mi, atol=1e-6)
    assert not np.allclose(_off_diagonal(a.mi), _off_diagonal(mi_matrix(x, model=tiny, seed=4).mi))


def test_groups_are_multivariate_variables(tiny):
    x = _table(p=9)
    groups = {"pair": [0, 2], "one": [1], "wide": [3, 4, 5, 6, 7, 8]}  # wider than max_dim 3
    res = mi_matrix(x, groups=groups, model=tiny)
    assert res.names == ("pair", "one", "wide") and res.mi.shape == (3, 3)
    assert np.isfinite(_off_diagonal(res.mi)).all()
    np.testing.assert_array_equal(res.mi, res.mi.T)
    # numpy index arrays and negative indices name the same columns
    same = mi_matrix(x, groups={"pair": np.array([0, 2]), "one": [-8], "wide": range(3, 9)},
                     model=tiny)
    np.testing.assert_allclose(same.mi, res.mi, atol=1e-6)


def test_p_values_in_unit_interval(tiny):
    res = mi_matrix(_table(n=80), model=tiny, p_values=True, num_permutations=9, chunk_size=25)
    pv = _off_diagonal(res.p_value)
    assert res.num_permutations == 9 and res.p_value.shape == (5, 5)
    assert np.isnan(np.diag(res.p_value)).all() and ((pv > 0) & (pv <= 1)).all()
    assert np.allclose(pv * 10, np.round(pv * 10))  # multiples of 1 / (1 + P)
    assert res.p_value[0, 1] == pytest.approx(0.1)  # the dependent pair beats every permutation


@pytest.mark.slow
def test_false_positive_rate_on_independent_columns(tiny):
    # 8 independent 12-column tables (528 pairs, 19 permutations): about 5% of the pairs
    # reach p <= 0.05; pairs share columns and permutations, hence the wide band
    r = np.random.default_rng(5)
    pv = np.concatenate([
        _off_diagonal(mi_matrix(r.standard_normal((24, 12)), model=tiny, p_values=True,
                                num_permutations=19, seed=s).p_value)[::2]  # each pair once
        for s in range(8)])
    assert 0.02 <= (pv <= 0.05).mean() <= 0.09


def test_max_rows_subsamples(tiny):
    x = _table(n=200)
    res = mi_matrix(x, model=tiny, max_rows=64)
    assert res.n == 64 and res.num_rows == 200 and np.isfinite(_off_diagonal(res.mi)).all()
    full = mi_matrix(x, model=tiny, max_rows=500)  # longer than the table: all rows
    np.testing.assert_allclose(full.mi, mi_matrix(x, model=tiny).mi, atol=1e-6)


def test_shipped_model_gaussian_pair_and_independent_columns():
    # columns 0 and 1 have correlation 0.8: MI = -log(1 - 0.8^2) / 2 = 0.511 nats
    r = np.random.default_rng(1)
    n, rho = 1000, 0.8
    x = r.standard_normal((n, 5))
    x[:, 1] = rho * x[:, 0] + math.sqrt(1 - rho ** 2) * x[:, 1]
    x[:, 0] = np.exp(x[:, 0])  # monotone marginal transform: same MI
    res = mi_matrix(x, model=load_pretrained())
    truth = -0.5 * math.log(1 - rho ** 2)
    assert res.mi[0, 1] == pytest.approx(truth, abs=0.08)
    others = res.mi[2:, 2:][~np.eye(3, dtype=bool)]  # pairs of independent columns
    assert np.abs(others).max() < 0.03 and np.abs(res.mi[:2, 2:]).max() < 0.03


def test_names_from_argument_and_data_frame(tiny):
    res = mi_matrix(_table(p=3), names=["a", "b", "c"], model=tiny)
    assert res.names == ("a", "b", "c")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_table(p=3), columns=["u", "v", "w"])
    assert mi_matrix(frame, model=tiny).names == ("u", "v", "w")


def test_plot_smoke(tiny, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from infoatlas_loss.plotting import plot_mi_matrix

    res = mi_matrix(_table(n=60, p=4), model=tiny, p_values=True, num_permutations=4)
    ax = plot_mi_matrix(res, alpha=0.2, title="t")
    assert ax.get_title() == "t" and len(ax.get_xticklabels()) == 4
    ax.figure.savefig(tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 0
    with pytest.raises(ValueError, match="p_values=True"):
        plot_mi_matrix(mi_matrix(_table(n=60, p=3), model=tiny), alpha=0.05)


@pytest.mark.parametrize("kwargs, match", [
    (dict(data=np.zeros((50, 1))), "at least 2 variables, got 1"),
    (dict(data=np.zeros(50)), r"\(n, p\) table"),
    (dict(data=np.zeros((8, 3))), "too few rows"),
    (dict(groups={"a": [0, 1]}), "at least 2 variables, got 1"),
    (dict(groups={"a": [0, 7], "b": [1, -9]}), r"group 'a' has column indices \[7\]"),
    (dict(groups={"a": [0], "b": []}), "group 'b' has no columns"),
    (dict(groups={"a": [0, 0], "b": [1]}), "group 'a' lists a column twice"),
    (dict(groups={"a": [0.5], "b": [1]}), "group 'a' must list integer"),
    (dict(names=["a", "b"]), "names has 2 entries for 4 columns"),
    (dict(p_values=True, num_permutations=0), "num_permutations"),
    (dict(max_rows=3), "max_rows"),
])
def test_bad_input_is_named(tiny, kwargs, match):
    kwargs = dict(dict(data=np.random.default_rng(0).standard_normal((50, 4))), **kwargs)
    with pytest.raises(ValueError, match=match):
        mi_matrix(kwargs.pop("data"), model=tiny, **kwargs)


def test_nan_is_located(tiny):
    x = _table()
    x[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN values .first at row 7, column 3"):
        mi_matrix(x, model=tiny)


def test_benchmark_quick_path(tmp_path, tiny_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from benchmarks import mi_matrix as bench
    weights = tiny_path
    res = bench.main(["--quick", "--weights", str(weights), "--out", str(tmp_path / "out")])
    assert [r["method"] for r in res["timing"]] == ["mi_matrix", "mi_matrix", "sklearn loop"]
    assert all(r["seconds"] > 0 and r["pairs"] > 0 for r in res["timing"])
    for name in ("results.md", "results.json", "heatmap.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_benchmark_truth_is_the_gaussian_closed_form():
    from benchmarks.mi_matrix import block_table

    x, truth = block_table(20000, 10, seed=0)
    rho = np.corrcoef(x, rowvar=False)
    off = ~np.eye(10, dtype=bool)
    np.testing.assert_allclose(truth[off], -0.5 * np.log1p(-rho[off] ** 2), atol=0.02)
    assert truth[0, 5] == 0 and truth[0, 1] == pytest.approx(-0.5 * math.log(1 - 0.09))
