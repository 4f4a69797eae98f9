"""The ``infoatlas`` command line, run through subprocess on files the test writes."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from infoatlas_loss.cli import main


def run(*args):
    p = subprocess.run([sys.executable, "-m", "infoatlas_loss.cli", *map(str, args)],
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = x[:, :1] + 0.5 * rng.normal(size=(400, 1))  # I(X; Y) = -0.5 log(0.2) = 0.80 nats
    w = rng.normal(size=(400, 1))  # independent of both
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", y[:, 0])
    np.savetxt(d / "t.csv", np.c_[x, y, w], delimiter=",", header="a,b,c,w", comments="")
    (d / "ragged.csv").write_text("a,b\n1,2\n3\n")
    (d / "text.csv").write_text("a,b\n1,2\n3,hello\n")
    np.savetxt(d / "short.csv", np.c_[x[:5], y[:5]], delimiter=",", header="a,b,c", comments="")
    return d


def test_mi_two_npy_files(files):
    rc, out, err = run("mi", files / "x.npy", files / "y.npy", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["mi"] == pytest.approx(-0.5 * math.log(0.2), abs=0.12)
    assert res["n"] == 400


def test_mi_column_groups_of_one_csv_match_npy(files):
    _, a, _ = run("mi", files / "t.csv", "--x", "a,b", "--y", "c", "--json")
    _, b, _ = run("mi", files / "x.npy", files / "y.npy", "--json")
    assert json.loads(a)["mi"] == pytest.approx(json.loads(b)["mi"], abs=1e-5)
    rc, out, _ = run("mi", files / "t.csv", "--x", "0,1", "--y", "2")  # indices, text output
    assert rc == 0 and out.startswith("mi: ")


def test_independence_test(files):
    rc, out, err = run("test", files / "t.csv", "--x", "a,b", "--y", "w", "-p", "19", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert 1 / 20 <= res["p_value"] <= 1 and res["num_permutations"] == 19
    _, out, _ = run("test", files / "t.csv", "--x", "a", "--y", "c", "-p", "19", "--json")
    assert json.loads(out)["p_value"] == pytest.approx(1 / 20)


@pytest.mark.parametrize("args, needle", [
    (("mi", "missing.csv", "--x", "a", "--y", "b"), "no such file"),
    (("mi", "t.csv", "--x", "a", "--y", "nope"), "unknown column 'nope'"),
    (("mi", "ragged.csv", "--x", "a", "--y", "b"), "line 3 has 1 fields"),
    (("mi", "text.csv", "--x", "a", "--y", "b"), "'hello' is not a number"),
    (("mi", "short.csv", "--x", "a", "--y", "c"), "too few rows"),
    (("mi", "t.csv", "--x", "a"), "--y"),
    (("mi", "x.npy", "short.csv"), "different numbers of rows"),
])
def test_bad_input_exits_2_with_one_line(files, args, needle, capsys):
    args = [str(files / a) if a.endswith((".csv", ".npy")) else a for a in args]
    assert main(args) == 2  # in-process (fast); the subprocess path is checked below
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and needle in err, err


def test_bad_input_through_subprocess(files):
    rc, out, err = run("mi", files / "ragged.csv", "--x", "a", "--y", "b")
    assert rc == 2 and out == "" and err.strip().splitlines() == [
        f"infoatlas mi: error: {files / 'ragged.csv'}: line 3 has 1 fields, the header has 2"]


def test_conditional_mi_and_its_test(files):
    # c = a + noise with a independent of b: I(a; c | b) = I(a; c) = 0.80 nats
    rc, out, err = run("cmi", files / "t.csv", "--x", "a", "--y", "c", "--z", "b", "--json")
    assert rc == 0, err
    assert json.loads(out)["cmi"] == pytest.approx(-0.5 * math.log(0.2), abs=0.2)
    rc, out, err = run("cmi", files / "t.csv", "--x", "w", "--y", "c", "--z", "a", "--test", "-p", "19", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert 1 / 20 <= res["p_value"] <= 1 and abs(res["cmi"]) < 0.15


def test_matrix_with_p_values_and_heatmap(files):
    pytest.importorskip("matplotlib")
    png = files / "heat.png"
    rc, out, err = run("matrix", files / "t.csv", "--p-values", "--heatmap", png, "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["names"] == ["a", "b", "c", "w"]
    mi = np.array(res["mi"], dtype=float)
    assert mi.shape == (4, 4) and np.allclose(mi, mi.T, equal_nan=True) and np.isnan(mi.diagonal()).all()
    assert mi[0, 2] > 0.5 and abs(mi[1, 3]) < 0.15  # a-c dependent, b-w independent
    assert np.array(res["p_value"], dtype=float).shape == (4, 4)
    assert png.stat().st_size > 0
    rc, _, err = run("matrix", files / "t.csv", "--columns", "a,zz")
    assert rc == 2 and "unknown column 'zz'" in err
