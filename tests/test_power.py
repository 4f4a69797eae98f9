"""``benchmarks.power``: the --quick path end to end on a tiny random-weight model, the data
generators, and the KSG permutation test's p-values."""
import json

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib", reason="the benchmarks need the bench extra")

from benchmarks import power
from infoatlas_loss import save_weights


def _quick(tiny, tmp_path, methods):
    """``--quick`` on the tiny model into tmp_path; torch's thread count restored after."""
    weights = tmp_path / "tiny.safetensors"
    save_weights(tiny, weights)
    old = torch.get_num_threads()
    try:
        return power.main(["--quick", "--weights", str(weights), "--out", str(tmp_path / "out"),
                           "--methods", *methods])
    finally:
        torch.set_num_threads(old)


def _check_outputs(out, res, methods):
    for name in ("results.json", "results.md", "power.png"):
        assert (out / name).stat().st_size > 0, name
    js = json.loads((out / "results.json").read_text())
    assert js["command"].startswith("python -m benchmarks.power --quick")
    rows = res["rows"]
    assert {r["method"] for r in rows} == set(methods)
    # quick grid: quadratic (d=1) and one_feature (d=16) power, quadratic size; n 50, 100
    assert {(r["setting"], r["dim"], r["dependent"]) for r in rows} == {
        ("quadratic", 1, True), ("one_feature", 16, True), ("quadratic", 1, False)}
    for r in rows:
        assert r["rate"] in [k / 4 for k in range(5)] and r["reps"] == 4 and r["perms"] == 19
        assert r["se"] == pytest.approx(np.sqrt(r["rate"] * (1 - r["rate"]) / 4))
        assert r["seconds"] > 0
    text = (out / "results.md").read_text()
    assert "## Size" in text and "python -m benchmarks.power --quick" in text


def test_quick_ours_and_ksg(tiny, tmp_path):
    res = _quick(tiny, tmp_path, ["InfoAtlas", "KSG"])
    _check_outputs(tmp_path / "out", res, ["InfoAtlas", "KSG"])


def test_quick_hyppo(tiny, tmp_path):
    pytest.importorskip("hyppo", reason="HSIC / Dcorr need hyppo (pip install hyppo)")
    res = _quick(tiny, tmp_path, ["HSIC", "Dcorr"])
    _check_outputs(tmp_path / "out", res, ["HSIC", "Dcorr"])


def test_ksg_permutation_pvalue():
    r = np.random.default_rng(0)
    x = r.uniform(-1, 1, (200, 1))
    # a noiseless parabola: every permutation scores below the observed pairing
    assert power.ksg_test(x, x ** 2, perms=19, seed=0) == pytest.approx(1 / 20)
    p = power.ksg_test(x, r.standard_normal((200, 1)), perms=19, seed=0)
    assert p in [k / 20 for k in range(1, 21)]


@pytest.mark.parametrize("setting", power.LOW_DIM + power.HIGH_DIM)
def test_generators_shapes_and_independent_copy(setting):
    d = 1 if setting in power.LOW_DIM else 6
    x, y = power.dataset(setting, d, 500, 1.0, True, seed=1)
    x0, y0 = power.dataset(setting, d, 500, 1.0, False, seed=1)
    assert x.shape == x0.shape == y.shape == y0.shape == (500, d)
    # same marginal of y; x replaced by an independent draw
    assert np.allclose(y, y0) and not np.allclose(x, x0)


def test_quadratic_has_no_linear_correlation_but_dependence():
    x, y = power.dataset("quadratic", 1, 20000, 1.0, True, seed=2)
    assert abs(np.corrcoef(x[:, 0], y[:, 0])[0, 1]) < 0.03
    # E[Y | X] = X^2: the correlation of Y with X^2 is far from zero
    assert np.corrcoef(x[:, 0] ** 2, y[:, 0])[0, 1] > 0.3


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="--reps"):
        power.parse(["--reps", "0"])
    with pytest.raises(ValueError, match="--alpha"):
        power.parse(["--alpha", "1.5"])


def test_resume_skips_finished_cells(tiny, tmp_path, monkeypatch):
    first = _quick(tiny, tmp_path, ["InfoAtlas"])
    assert (tmp_path / "out" / "cells.json").is_file()
    monkeypatch.setattr(power, "run_cell", lambda *a: pytest.fail("a finished cell was rerun"))
    old = torch.get_num_threads()
    try:
        again = power.main(["--quick", "--weights", str(tmp_path / "tiny.safetensors"), "--out",
                            str(tmp_path / "out"), "--methods", "InfoAtlas", "--resume"])
    finally:
        torch.set_num_threads(old)
    assert [r["rate"] for r in again["rows"]] == [r["rate"] for r in first["rows"]]
    assert "--resume" not in again["command"]
