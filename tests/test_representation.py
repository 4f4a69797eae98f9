"""InfoMax / InfoMin regularisers (integrations/representation.py), the README snippet and
quick smoke runs of the two digits examples.  Tiny random-weight model unless noted."""
import importlib.util
import json
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import infoatlas_loss.functional as F_
from infoatlas_loss import load_weights, save_weights, sliced_mi
from infoatlas_loss.integrations.representation import InfoMax, InfoMin, _whiten
from .conftest import gen

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pretrained" / "infoatlas-base.safetensors"


def _finite_grad(t: torch.Tensor) -> bool:
    return t.grad is not None and bool(torch.isfinite(t.grad).all())


@pytest.mark.parametrize("weight", [0.5, 2.0])
def test_sign_convention_equals_weighted_sliced_mi(tiny, weight):
    a, b = torch.randn(64, 12, generator=gen(1)), torch.randn(64, 3, generator=gen(2))
    ref = sliced_mi(a, b, model=tiny, num_slices=8, generator=gen(7))
    up = InfoMax(tiny, weight=weight, num_slices=8, generator=gen(7), whiten=False)(a, b)
    down = InfoMin(tiny, weight=weight, num_slices=8, generator=gen(7))(a, b)
    torch.testing.assert_close(up, -weight * ref)
    torch.testing.assert_close(down, weight * ref)
    # InfoMax whitens (by default) the variable that is sliced (12 > max_dim), not the other
    ref_w = sliced_mi(_whiten(a), b, model=tiny, num_slices=8, generator=gen(7))
    torch.testing.assert_close(InfoMax(tiny, weight=weight, num_slices=8, generator=gen(7))(a, b),
                               -weight * ref_w)
    # batched sample sets, reduction passed through
    ab, bb = torch.randn(3, 32, 7, generator=gen(3)), torch.randn(3, 32, 2, generator=gen(4))
    ref_b = sliced_mi(ab, bb, model=tiny, num_slices=4, generator=gen(5), reduction="none")
    got = InfoMin(tiny, weight=weight, num_slices=4, generator=gen(5), reduction="none")(ab, bb)
    assert got.shape == (3,)
    torch.testing.assert_close(got, weight * ref_b)


def test_whiten_decorrelates_and_keeps_gradients_finite():
    # correlated, differently scaled columns (condition number 16; eps only damps directions
    # with variance ~1e-3 of the mean)
    q = torch.linalg.qr(torch.randn(16, 16, generator=gen(1)))[0]
    mix = q * torch.linspace(0.5, 2.0, 16) @ torch.linalg.qr(torch.randn(16, 16, generator=gen(5)))[0]
    z = (torch.randn(3, 256, 16, generator=gen(2)) @ mix).requires_grad_(True)
    w = _whiten(z)
    cov = torch.einsum("bni,bnj->bij", w - w.mean(1, keepdim=True), w - w.mean(1, keepdim=True)) / 255
    torch.testing.assert_close(cov, torch.eye(16).expand(3, 16, 16), atol=0.02, rtol=0)
    # collapsed (rank-2) features: eps keeps the factor finite, gradients too
    low = (torch.randn(256, 2, generator=gen(3)) @ torch.randn(2, 16, generator=gen(4)))
    low.requires_grad_(True)
    _whiten(low).pow(2).sum().backward()
    assert _finite_grad(low)
    assert _whiten(torch.randn(64, 1)).shape == (64, 1)  # one column: nothing to do


def test_labels_and_one_hot(tiny):
    z = torch.randn(64, 8, generator=gen(1))
    lab = torch.randint(0, 4, (64,), generator=gen(2))
    ref = sliced_mi(z, lab.float().unsqueeze(-1), model=tiny, num_slices=4, generator=gen(3))
    torch.testing.assert_close(InfoMin(tiny, num_slices=4, generator=gen(3))(z, lab), ref)
    onehot = nn.functional.one_hot(lab, 4).float()
    ref1 = sliced_mi(z, onehot, model=tiny, num_slices=4, generator=gen(3))
    m = InfoMin(tiny, num_slices=4, generator=gen(3), num_classes=4)
    torch.testing.assert_close(m(z, lab), ref1)
    assert m.last_mi is not None and not m.last_mi.requires_grad
    # batched: (B, n) labels next to (B, n, d)
    zb = torch.randn(2, 32, 6, generator=gen(4))
    sb = torch.randint(0, 3, (2, 32), generator=gen(5))
    assert InfoMin(tiny, num_slices=2, num_classes=3)(zb, sb).dim() == 0
    assert InfoMin(tiny, num_slices=2)(zb, sb).dim() == 0


def test_gradient_flows_to_encoder_and_not_to_estimator(tiny):
    enc = nn.Sequential(nn.Linear(10, 32), nn.GELU(), nn.Linear(32, 16))
    x, s = torch.randn(128, 10, generator=gen(1)), torch.rand(128, generator=gen(2))
    for reg in (InfoMin(tiny, num_slices=4), InfoMax(tiny, num_slices=4)):
        enc.zero_grad()
        reg(enc(x), s).backward()
        for p in enc.parameters():
            assert _finite_grad(p) and p.grad.abs().sum() > 0
        assert not any(p.requires_grad for p in reg.parameters())
        assert all(p.grad is None for p in reg.parameters())
    # two views: both arguments receive gradient
    a = torch.randn(64, 8, generator=gen(3), requires_grad=True)
    b = (a.detach() + 0.1 * torch.randn(64, 8, generator=gen(4))).requires_grad_(True)
    InfoMax(tiny, num_slices=4)(a, b).backward()
    assert _finite_grad(a) and _finite_grad(b) and b.grad.abs().sum() > 0


@pytest.mark.parametrize("n,dz,ds", [(16, 1, 1), (16, 512, 1), (16, 8, 512), (64, 512, 3),
                                     (1024, 8, 1), (17, 2, 2)])
def test_sizes(tiny, n, dz, ds):
    z = torch.randn(n, dz, generator=gen(n + dz), requires_grad=True)
    s = torch.randn(n, ds, generator=gen(ds))
    for reg in (InfoMin(tiny, num_slices=4), InfoMax(tiny, num_slices=4)):
        z.grad = None
        out = reg(z, s)
        assert out.dim() == 0 and torch.isfinite(out)
        out.backward()
        assert _finite_grad(z)


def _degenerate_cases():
    g = gen(11)
    z = torch.randn(64, 32, generator=g)
    one_const = z.clone()
    one_const[:, 3] = 1.0
    narrow_const = z[:, :2].clone()
    narrow_const[:, 1] = -2.0
    tiny_var = z.clone()
    tiny_var[:, 5] = 1e-30 * torch.randn(64, generator=g)  # z-scored, its grad would be ~1e30
    dup = z.clone()
    dup[:, 1] = dup[:, 0]
    relu = torch.relu(z - 1.5)  # mostly zeros: heavy ties
    ties = z.clone()
    ties[:40] = z[0]
    return {"one constant column": one_const, "narrow with constant": narrow_const,
            "all constant (wide)": torch.ones(64, 32), "all zero (1 column)": torch.zeros(64, 1),
            "tiny-variance column": tiny_var, "duplicated column": dup, "sparse relu": relu,
            "tied rows": ties, "16 samples, 512 dims": torch.randn(16, 512, generator=g),
            "16 samples, constant": torch.zeros(16, 8)}


@pytest.mark.parametrize("case", sorted(_degenerate_cases()))
def test_no_nan_or_inf_gradients(tiny, case):
    base = _degenerate_cases()[case]
    n = base.shape[0]
    for s in (torch.randn(n, generator=gen(1)), torch.zeros(n), base[:, :1].clone()):
        for reg in (InfoMin(tiny, num_slices=4), InfoMax(tiny, num_slices=4)):
            z = base.clone().requires_grad_(True)
            out = reg(z, s)
            out.backward()
            assert torch.isfinite(out), case
            assert _finite_grad(z), case
    # a constant column gets exactly zero gradient
    if case == "one constant column":
        z = base.clone().requires_grad_(True)
        InfoMin(tiny, num_slices=4)(z, torch.randn(n, generator=gen(2))).backward()
        assert z.grad[:, 3].abs().max() == 0


def test_bad_input_errors(tiny):
    z, s = torch.randn(64, 8), torch.randn(64)
    for w in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="weight"):
            InfoMin(tiny, weight=w)
    with pytest.raises(TypeError, match="weight"):
        InfoMax(tiny, weight="1")
    with pytest.raises(ValueError, match="num_slices"):
        InfoMax(tiny, num_slices=0)
    with pytest.raises(ValueError, match="num_classes"):
        InfoMin(tiny, num_classes=1)
    reg = InfoMin(tiny, num_slices=2)
    with pytest.raises(ValueError, match="too few samples"):
        reg(z[:15], s[:15])
    with pytest.raises(ValueError, match="sample counts differ"):
        reg(z, s[:32])
    with pytest.raises(ValueError, match="NaN"):
        reg(torch.where(torch.arange(8) == 2, float("nan"), z), s)
    with pytest.raises(ValueError, match="Inf"):
        InfoMax(tiny, num_slices=2)(z, torch.full((64, 2), float("inf")))
    with pytest.raises(ValueError, match="Invalid shape"):
        reg(torch.randn(2, 2, 64, 8), s)
    with pytest.raises(ValueError, match="both"):
        reg(torch.randn(2, 64, 8), torch.randn(64, 3))
    with pytest.raises(TypeError):
        reg(z.numpy(), s)
    hot = InfoMin(tiny, num_slices=2, num_classes=3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        hot(z, torch.arange(64) % 4)
    with pytest.raises(ValueError, match="integer"):
        hot(z, torch.rand(64))
    with pytest.raises(ValueError, match="one label per sample"):
        hot(z, torch.zeros(64, 2, dtype=torch.long))


def _readme_snippet() -> str:
    text = (ROOT / "integrations" / "README.md").read_text()
    m = re.search(r"<!-- snippet: regulariser.*?-->\s*```python\n(.*?)```", text, re.S)
    assert m, "snippet marker or code block missing from integrations/README.md"
    return m.group(1)


def test_readme_snippet_runs(tiny, monkeypatch, capsys):
    code = _readme_snippet()
    assert len(code.strip().splitlines()) <= 20
    # the snippet uses the shipped weights (model=None); substitute the tiny model for them
    monkeypatch.setattr(F_, "load_pretrained", lambda name="infoatlas-base", **kw: tiny)
    ns = {}
    exec(compile(code, "integrations/README.md", "exec"), ns)
    est = ns["infomin"].mi.estimator  # SlicedMILoss keeps its own copy of registered weights
    assert isinstance(ns["infomin"], InfoMin) and est.config == tiny.config
    assert all(torch.equal(a, b) for a, b in zip(est.state_dict().values(), tiny.state_dict().values()))
    assert math.isfinite(float(ns["loss"].detach()))
    assert all(torch.isfinite(p).all() for p in ns["encoder"].parameters())
    assert "nats" in capsys.readouterr().out


@pytest.mark.skipif(not SHIPPED.is_file(), reason="needs pretrained/infoatlas-base.safetensors")
def test_optimisation_moves_mi_the_right_way():
    """A few Adam steps with the real estimator: InfoMin lowers and InfoMax raises I(z; s)."""
    model = load_weights(SHIPPED)
    g = gen(0)

    def sample(n):  # s leaks into the first of 8 input columns; z = Linear(8 -> 2)(x)
        s = torch.randn(n, 1, generator=g)
        return torch.cat([s + 0.3 * torch.randn(n, 1, generator=g),
                          torch.randn(n, 7, generator=g)], 1), s

    (x, s), (x_ev, s_ev) = sample(256), sample(512)

    def run(reg_cls, leak: float):
        torch.manual_seed(0)
        enc = nn.Linear(8, 2)
        with torch.no_grad():
            enc.weight[:, 0] = leak  # InfoMin starts with s in z, InfoMax with little of it
        opt = torch.optim.Adam(enc.parameters(), lr=5e-2)
        reg = reg_cls(model, generator=gen(1))
        with torch.no_grad():
            before = sliced_mi(enc(x_ev), s_ev, model=model, generator=gen(2))
        for _ in range(20):
            loss = reg(enc(x), s)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            after = sliced_mi(enc(x_ev), s_ev, model=model, generator=gen(2))
        return float(before), float(after)

    b, a = run(InfoMin, 1.0)
    assert a < b - 0.05, (b, a)
    b, a = run(InfoMax, 0.0)
    assert a > b + 0.05, (b, a)


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def tiny_file(tiny, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_weights(tiny, path)
    return str(path)


@pytest.mark.parametrize("name,pngs", [
    ("infomin_digits", ("tradeoff.png", "training.png", "probe_scatter.png")),
    ("infomax_digits", ("probe_accuracy.png", "training.png", "embeddings.png")),
])
def test_example_quick(name, pngs, tiny_file, tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out = tmp_path / name
    result = _load_example(name).main(["--quick", "--weights", tiny_file, "--out", str(out)])
    for f in ("results.json", "results.md", *pngs):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    saved = json.loads((out / "results.json").read_text())
    assert saved["rows"] and len(saved["rows"]) == len(result["rows"])
    for r in saved["rows"]:
        assert 0.0 <= r["test_acc" if name == "infomin_digits" else "probe_acc"] <= 1.0
    assert "|" in (out / "results.md").read_text()
