"""Fast checks of the benchmark code: bmi ground truths, samplers, baselines, the runner."""
import json

import numpy as np
import pytest
import torch

from benchmarks import accuracy
from benchmarks.baselines import gaussian_copula_mi, gaussian_mi, ksg
from benchmarks.bmi_tasks import BASES, GROUPS, NARROW, TABLE1, TASKS, WIDE, dense_mi, get_tasks
from benchmarks.verify_truth import check_task

# Table 1 of Czyż et al. (2023), nats
PAPER_TABLE1 = {
    "multinormal-dense-5-5-0.5": 0.5928,
    "spiral-multinormal-sparse-3-3-2-2.0": 1.0217,
    "asinh-student-identity-5-5-2": 0.4482,
    "student-identity-3-3-3": 0.1787,
    "normal_cdf-multinormal-sparse-3-3-2-2.0": 1.0217,
    "half_cube-multinormal-sparse-5-5-2-2.0": 1.0217,
    "1v1-additive-0.1": 1.7094,
    "1v1-bimodal-0.75": 0.4133,
}


# bmi's BENCHMARK_TASKS ids, in the order of its task list
BMI_IDS = (
    "1v1-normal-0.75", "normal_cdf-1v1-normal-0.75", "1v1-additive-0.1", "1v1-additive-0.75",
    "1v1-bimodal-0.75", "wiggly-1v1-normal-0.75", "half_cube-1v1-normal-0.75",
    "student-identity-1-1-1", "asinh-student-identity-1-1-1",
    "swissroll_x-normal_cdf-1v1-normal-0.75",
    "multinormal-dense-2-2-0.5", "multinormal-dense-3-3-0.5", "multinormal-dense-5-5-0.5",
    "multinormal-dense-25-25-0.5", "multinormal-dense-50-50-0.5",
    "multinormal-sparse-2-2-2-2.0", "multinormal-sparse-3-3-2-2.0", "multinormal-sparse-5-5-2-2.0",
    "multinormal-sparse-25-25-2-2.0",
    "student-identity-2-2-1", "student-identity-2-2-2", "student-identity-3-3-2",
    "student-identity-3-3-3", "student-identity-5-5-2", "student-identity-5-5-3",
    "normal_cdf-multinormal-sparse-3-3-2-2.0", "normal_cdf-multinormal-sparse-5-5-2-2.0",
    "normal_cdf-multinormal-sparse-25-25-2-2.0",
    "half_cube-multinormal-sparse-3-3-2-2.0", "half_cube-multinormal-sparse-5-5-2-2.0",
    "half_cube-multinormal-sparse-25-25-2-2.0",
    "spiral-multinormal-sparse-3-3-2-2.0", "spiral-multinormal-sparse-5-5-2-2.0",
    "spiral-multinormal-sparse-25-25-2-2.0",
    "spiral-normal_cdf-multinormal-sparse-3-3-2-2.0", "spiral-normal_cdf-multinormal-sparse-5-5-2-2.0",
    "spiral-normal_cdf-multinormal-sparse-25-25-2-2.0",
    "asinh-student-identity-2-2-1", "asinh-student-identity-3-3-2", "asinh-student-identity-5-5-2",
)


def test_task_ids_are_bmis_forty():
    assert tuple(TASKS) == BMI_IDS
    assert [t.name for t in get_tasks("all")] == list(BMI_IDS)
    assert len(NARROW) == 33 and all(max(TASKS[n].dim_x, TASKS[n].dim_y) <= 5 for n in NARROW)
    assert len(WIDE) == 7 and {(TASKS[n].dim_x, TASKS[n].dim_y) for n in WIDE} == {(25, 25), (50, 50)}
    assert set(TABLE1) <= set(NARROW)


def test_wide_ground_truths_closed_form():
    # equicorrelation (a = 1/2): the m x m matrix has log det = -(m-1) log 2 + log(1 + (m-1)/2)
    logdet = lambda m: -(m - 1) * np.log(2) + np.log(1 + (m - 1) / 2)  # noqa: E731
    for d, mi in ((25, 1.29218), (50, 1.62427)):
        assert TASKS[f"multinormal-dense-{d}-{d}-0.5"].mi == pytest.approx(mi, abs=1e-5)
        assert TASKS[f"multinormal-dense-{d}-{d}-0.5"].mi == pytest.approx(logdet(d) - logdet(2 * d) / 2,
                                                                          abs=1e-10)
        assert dense_mi(d) == pytest.approx(logdet(d) - logdet(2 * d) / 2, abs=1e-10)
    # two pairs with correlation 0.8, whatever the width: -log(1 - 0.64)
    for name in WIDE[2:]:
        assert TASKS[name].mi == pytest.approx(-np.log(0.36), abs=1e-10), name
        assert (TASKS[name].base or name) == "multinormal-sparse-25-25-2-2.0"


def test_wide_spiral_is_bmis():
    # bmi: X rotates in plane (0, 1), Y in plane (1, 2), by |v|^2 / d radians
    base, spiral = TASKS["multinormal-sparse-25-25-2-2.0"], TASKS["spiral-multinormal-sparse-25-25-2-2.0"]
    (x, y), (sx, sy) = base.sample(500, 7), spiral.sample(500, 7)
    for v, w, (i, j) in ((x, sx, (0, 1)), (y, sy, (1, 2))):
        rest = [k for k in range(25) if k not in (i, j)]
        np.testing.assert_allclose(w[:, rest], v[:, rest])
        theta = (v * v).sum(axis=1) / 25
        c, s = np.cos(theta), np.sin(theta)
        np.testing.assert_allclose(w[:, i], c * v[:, i] - s * v[:, j], atol=1e-12)
        np.testing.assert_allclose(w[:, j], s * v[:, i] + c * v[:, j], atol=1e-12)
    # the sparse base: correlation 0.8 on the first two pairs only
    bx, by = base.sample(20_000, 1)
    r = np.corrcoef(bx.T, by.T)[:25, 25:]
    np.testing.assert_allclose(np.diag(r)[:2], 0.8, atol=0.02)
    r[[0, 1], [0, 1]] = 0.0
    assert np.abs(r).max() < 0.05


def test_table1_ground_truths():
    assert set(TABLE1) == set(PAPER_TABLE1)
    for name, mi in PAPER_TABLE1.items():
        assert TASKS[name].mi == pytest.approx(mi, abs=5e-4), name


@pytest.mark.parametrize("name", sorted(TASKS))
def test_sampler_shapes_and_determinism(name):
    t = TASKS[name]
    x, y = t.sample(64, np.random.default_rng(3))
    assert x.shape == (64, t.dim_x) and y.shape == (64, t.dim_y)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
    x2, y2 = t.sample(64, 3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = t.sample(64, 4)
    assert not np.array_equal(x, x3)


@pytest.mark.parametrize("name", TABLE1 + ("1v1-additive-0.75", "swissroll_x-normal_cdf-1v1-normal-0.75",
                                           "multinormal-dense-50-50-0.5",
                                           "spiral-normal_cdf-multinormal-sparse-25-25-2-2.0"))
def test_ground_truth_monte_carlo(name):
    # mean exact log density ratio over samples of the task (transforms undone)
    c = check_task(TASKS[name], n=40_000, seed=1)
    assert c.roundtrip_err < 1e-6
    assert abs(c.z) < 4.5, c


def _correlated_gaussian(n=2000, rho=0.6, seed=0):
    rng = np.random.default_rng(seed)
    cov = np.array([[1, 0, rho, 0], [0, 1, 0, rho], [rho, 0, 1, 0], [0, rho, 0, 1.0]])
    z = rng.multivariate_normal(np.zeros(4), cov, size=n)
    return z[:, :2], z[:, 2:], -np.log(1 - rho**2)  # two pairs: 2 * (-1/2 log(1 - rho^2))


def test_baselines_on_gaussian():
    x, y, mi = _correlated_gaussian()
    assert gaussian_mi(x, y) == pytest.approx(mi, abs=0.03)
    assert gaussian_copula_mi(x, y) == pytest.approx(mi, abs=0.05)
    assert ksg(x, y) == pytest.approx(mi, abs=0.1)
    # copula MI ignores monotone marginal maps; KSG is close to invariant
    assert gaussian_copula_mi(np.exp(x), y**3) == pytest.approx(gaussian_copula_mi(x, y), abs=1e-9)


def test_ksg_independent_near_zero():
    rng = np.random.default_rng(0)
    assert abs(ksg(rng.normal(size=(2000, 2)), rng.normal(size=(2000, 1)))) < 0.03


def test_get_tasks():
    assert [t.name for t in get_tasks("table1")] == list(TABLE1)
    assert len(get_tasks("all")) == len(TASKS) == 40
    assert [len(get_tasks(g)) for g in ("narrow", "wide")] == [33, 7]
    assert set(GROUPS) == {"all", "narrow", "wide", "table1"}
    assert set(BASES) <= set(TASKS)
    with pytest.raises(ValueError):
        get_tasks("everything")
    with pytest.raises(KeyError):
        get_tasks(names=["no-such-task"])


def test_accuracy_quick_smoke(tmp_path, tiny_path):
    pytest.importorskip("matplotlib", reason="the accuracy plot needs the bench extra")
    out = tmp_path / "acc"
    names = ["1v1-additive-0.1", "student-identity-3-3-3"]
    res = accuracy.main(["--quick", "--weights", tiny_path, "--out", str(out), "--n", "200",
                         "--task-names", *names])
    for f in ("results.json", "results.md", "estimate_vs_truth.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["tasks"] == names and data["config"]["n"] == [200]
    assert len(data["records"]) == len(names) * 4  # one seed, four methods
    assert set(res["summary"]["200"]["overall"]) == {"InfoAtlas", "KSG", "CCA", "GaussCopula"}
    md = (out / "results.md").read_text()
    assert md.startswith("# MI accuracy") and "`python -m benchmarks.accuracy --quick" in md
    assert "| Alice-Base (published) | 0.092 | 0.063 | 0.060 |" in md and "## Per task, n = 200" in md


def test_accuracy_several_n_groups_and_skips(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="the accuracy plot needs the bench extra")
    import infoatlas_loss

    # the runner's bookkeeping only: a stand-in for the network keeps this fast
    monkeypatch.setattr(infoatlas_loss, "estimate", lambda x, y: 0.5)
    out = tmp_path / "acc"
    names = ["1v1-additive-0.1", "student-identity-3-3-3", "multinormal-sparse-25-25-2-2.0"]
    res = accuracy.main(["--out", str(out), "--n", "200", "300", "--seeds", "0", "1",
                         "--task-names", *names, "--ksg-wide-max-n", "250"])
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["n"] == [200, 300] and data["config"]["seeds"] == [0, 1]
    # four methods on the same sample per (task, seed, n); KSG left out on the wide task at n = 300
    assert len(data["records"]) == len(names) * 4 * 2 * 2 - 2
    assert data["skipped"] == [dict(task=names[2], seed=s, n=300, method="KSG") for s in (0, 1)]
    cca = {(r["task"], r["n"], r["seed"]): r["estimate"] for r in data["records"] if r["method"] == "CCA"}
    x, y = TASKS[names[2]].sample(300, accuracy.task_rng(TASKS[names[2]], 1))
    assert cca[names[2], 300, 1] == pytest.approx(gaussian_mi(x, y))
    for n in ("200", "300"):
        assert sorted(res["groups"][n]) == ["all", "narrow", "wide"]  # Table-1 incomplete: no row
        assert res["groups"][n]["wide"]["InfoAtlas"]["mean_abs_err"] == pytest.approx(TASKS[names[2]].mi - 0.5)
    assert res["groups"]["300"]["all"]["KSG"]["tasks"] == 2 and "KSG" not in res["groups"]["300"]["wide"]
    md = (out / "results.md").read_text()
    assert "## Skipped estimates" in md and "## Per task, n = 300" in md
    assert "| mean \\|error\\|: wide (25–50 dims), 1 tasks | 0.522 | skipped |" in md  # n = 300


def test_accuracy_defaults():
    a = accuracy.parse(["--quick"])
    assert a.n == [1000] and a.seeds == [0]
    assert a.task_names == list(TABLE1) + ["multinormal-sparse-25-25-2-2.0"]
    full = accuracy.parse([])
    assert full.n == [1000, 5000, 10000] and full.seeds == [0, 1, 2] and full.tasks == "all"
    assert full.task_names is None

