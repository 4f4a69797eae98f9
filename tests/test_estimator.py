"""kornia-style battery on the differentiable estimator with a tiny random-weight model."""
import numpy as np
import pytest
import torch

from infoatlas_loss import MIN_SAMPLES, SlicedMILoss, estimate_mi, sliced_mi
from infoatlas_loss.critic import GaussianStats, canonical_order, dv_bound, num_critic_params
from infoatlas_loss.estimator import prepare

from .conftest import gen


def _pair(n=128, dx=2, dy=2, b=None, seed=0, dtype=torch.float32):
    g = gen(seed)
    shape = (n,) if b is None else (b, n)
    x = torch.randn(*shape, dx, generator=g, dtype=dtype)
    y = x[..., :1].repeat_interleave(dy, -1) + torch.randn(*shape, dy, generator=g, dtype=dtype)
    return x, y


def test_smoke_shapes(tiny):
    x, y = _pair()
    out = sliced_mi(x, y, model=tiny, generator=gen())
    assert out.dim() == 0 and torch.isfinite(out)
    xb, yb = _pair(b=3)
    assert sliced_mi(xb, yb, model=tiny, generator=gen(), reduction="none").shape == (3,)
    assert sliced_mi(xb, yb, model=tiny, generator=gen(), reduction="sum").dim() == 0
    theta = tiny(*prepare(xb, yb, 3, seeds=[1, 2, 3])[:2])
    assert theta.shape == (3, num_critic_params(tiny.config))


def test_different_dims_and_slicing(tiny):
    x, y = _pair(dx=1, dy=9)
    per = sliced_mi(x, y, model=tiny, num_slices=7, generator=gen(), return_slices=True)
    assert per.shape == (7,)
    x, y = _pair(dx=12, dy=3, b=2)
    per = sliced_mi(x, y, model=tiny, num_slices=5, slice_dim=2, generator=gen(), return_slices=True)
    assert per.shape == (2, 5) and torch.isfinite(per).all()


@pytest.mark.parametrize("bad,match", [
    (lambda x, y: (x[None, None], y), "expected \\(n, d\\)"),
    (lambda x, y: (x[0, 0], y), "expected \\(n, d\\)"),
    (lambda x, y: (x, y[:-1]), "sample counts differ"),
    (lambda x, y: (x[: MIN_SAMPLES - 1], y[: MIN_SAMPLES - 1]), "too few samples"),
    (lambda x, y: (x.masked_fill(torch.zeros_like(x, dtype=torch.bool).index_fill(0, torch.tensor([3]), True), float("nan")), y), "NaN"),
    (lambda x, y: (x, y.masked_fill(torch.zeros_like(y, dtype=torch.bool).index_fill(0, torch.tensor([5]), True), float("inf"))), "Inf"),
    (lambda x, y: (x.unsqueeze(0), y), "both"),
    (lambda x, y: (x.long(), y), "floating dtype"),
    (lambda x, y: (x[:, :0], y), "no columns"),
])
def test_exceptions(tiny, bad, match):
    x, y = _pair()
    with pytest.raises(ValueError, match=match):
        sliced_mi(*bad(x, y), model=tiny)


def test_one_dimensional_is_one_variable(tiny):
    # (n,) is one variable with n samples, the same as (n, 1), in the function and the module
    x, y = _pair(dx=1, dy=1)
    ref = sliced_mi(x, y, model=tiny, generator=gen(1))
    torch.testing.assert_close(sliced_mi(x[:, 0], y[:, 0], model=tiny, generator=gen(1)), ref)
    torch.testing.assert_close(sliced_mi(x[:, 0], y, model=tiny, generator=gen(1)), ref)
    torch.testing.assert_close(SlicedMILoss(tiny, generator=gen(1))(x[:, 0], y[:, 0]), ref)
    torch.testing.assert_close(
        torch.tensor(estimate_mi(x[:, 0], y[:, 0], model=tiny, seed=0).mi),
        torch.tensor(estimate_mi(x, y, model=tiny, seed=0).mi))


def test_argument_errors(tiny):
    x, y = _pair(dx=8)
    with pytest.raises(ValueError, match="reduction"):
        sliced_mi(x, y, model=tiny, reduction="max")
    with pytest.raises(ValueError, match="slice_dim"):
        sliced_mi(x, y, model=tiny, slice_dim=4)
    with pytest.raises(ValueError, match="batch sizes differ"):
        sliced_mi(*_pair(b=2)[:1], _pair(b=3)[1], model=tiny)
    with pytest.raises(ValueError, match="numeric"):
        estimate_mi(np.array([["a"] * 2] * 20), np.zeros((20, 1)), model=tiny)
    with pytest.raises(TypeError):
        sliced_mi(np.zeros((20, 1)), np.zeros((20, 1)), model=tiny)


def test_constant_columns_no_nan(tiny):
    x, y = _pair(dx=3)
    x[:, 1] = 7.0
    x.requires_grad_(True)
    out = sliced_mi(x, y, model=tiny, generator=gen())
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()
    assert torch.all(x.grad[:, 1] == 0)
    # a constant carries no information: its value does not matter, at any magnitude
    for v in (-3e5, 1e-30, 0.0):
        other = x.detach().clone()
        other[:, 1] = v
        torch.testing.assert_close(sliced_mi(other, y, model=tiny, generator=gen()), out.detach(),
                                   atol=0, rtol=0)
    # entirely constant x: finite, and the same for every constant
    a = sliced_mi(torch.ones(64, 2), y[:64], model=tiny, generator=gen())
    assert torch.isfinite(a)
    torch.testing.assert_close(sliced_mi(torch.full((64, 2), -8e9), y[:64], model=tiny, generator=gen()), a)


def test_gradcheck_through_softrank_critic_dv(tiny64):
    x, y = _pair(n=16, dx=2, dy=1, dtype=torch.float64)
    x.requires_grad_(True)
    y.requires_grad_(True)

    def f(a, b):
        return sliced_mi(a, b, model=tiny64, generator=gen(3))

    assert torch.autograd.gradcheck(f, (x, y), eps=1e-6, atol=1e-5)


def test_batched_equals_looped(tiny):
    # full-width inputs (no padding noise) so both paths draw identical randomness
    xb, yb = _pair(b=3, dx=3, dy=3)
    batched = sliced_mi(xb, yb, model=tiny, generator=gen(5), reduction="none")
    looped = torch.stack([sliced_mi(xb[i], yb[i], model=tiny, generator=gen(5)) for i in range(3)])
    torch.testing.assert_close(batched, looped, atol=1e-5, rtol=1e-5)


def test_sliced_batched_equals_looped(tiny):
    xb, yb = _pair(b=2, dx=6, dy=6)
    b = sliced_mi(xb, yb, model=tiny, num_slices=4, generator=gen(1), return_slices=True, chunk_size=3)
    a = sliced_mi(xb, yb, model=tiny, num_slices=4, generator=gen(1), return_slices=True, chunk_size=64)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_function_equals_module(tiny):
    x, y = _pair(b=2, dx=5, dy=2)
    f = sliced_mi(x, y, model=tiny, num_slices=6, generator=gen(2))
    m = SlicedMILoss(tiny, num_slices=6, generator=gen(2))(x, y)
    torch.testing.assert_close(f, m)


def test_module_frozen_and_differentiable(tiny):
    loss = SlicedMILoss(tiny, num_slices=4)
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.estimator.training
    x, y = _pair(dx=7, dy=2)
    x.requires_grad_(True)
    (-loss(x, y)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_permutation_invariance(tiny):
    x, y = _pair(n=200, dx=2, dy=1)  # padded: noise rows must follow their samples
    p = torch.randperm(200, generator=gen(9))
    a = sliced_mi(x, y, model=tiny, generator=gen(4))
    b = sliced_mi(x[p], y[p], model=tiny, generator=gen(4))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_dv_all_pairs_when_small():
    # with n - 1 <= num_shifts every ordered pair i != j is used exactly once
    x = torch.arange(5.0).view(1, 5, 1)
    y = 10 * torch.arange(5.0).view(1, 5, 1)
    from infoatlas_loss.critic import marginal_pairs
    pairs = marginal_pairs(x, y, 16, canonical_order(x, y, torch.ones(1, 2)))
    got = {(int(a), int(b) // 10) for a, b in pairs[0].tolist()}
    assert len(got) == 20 and all(a != b for a, b in got)


def test_gaussian_critic_alone_recovers_gaussian_mi(tiny):
    # the analytic Gaussian-copula term with a zero MLP is the closed-form estimate
    g = gen(11)
    rho = 0.8
    x = torch.randn(1, 4000, 1, generator=g)
    y = rho * x + (1 - rho ** 2) ** 0.5 * torch.randn(1, 4000, 1, generator=g)
    zx, zy, order, _ = prepare(x, y, 1, seeds=[0])
    theta = torch.zeros(1, 2 * 8 + 8 + 8 + 1 + 1)
    theta[:, -1] = 1.0
    from infoatlas_loss.config import InfoAtlasConfig
    cfg = InfoAtlasConfig(max_dim=1, dim=8, heads=1, critic_hidden=(8,))
    assert theta.shape[1] == num_critic_params(cfg)
    est = dv_bound(theta, cfg, zx, zy, stats=GaussianStats(zx, zy), order=order)
    assert est.item() == pytest.approx(-0.5 * np.log(1 - rho ** 2), abs=0.05)


def test_near_constant_column_in_sliced_variable(tiny):
    x, y = _pair(dx=8)
    x[:, 3] = 1e-30 * torch.randn(x.shape[0])  # std far below resolution: constant
    x.requires_grad_(True)
    out = sliced_mi(x, y, model=tiny, num_slices=4, generator=gen())
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("d, max_dim", [(1, 5), (5, 5)])
def test_gaussian_term_small_n_bias(d, max_dim):
    # independent data at n = 64: the in-sample Gaussian term alone used to report about
    # (max_dim^2) / (2n) = 0.2 nats (measured 0.23 / 0.22); masking padding + James-Stein
    # shrinkage leaves 0.003 / 0.037
    from infoatlas_loss.config import InfoAtlasConfig
    cfg = InfoAtlasConfig(max_dim=max_dim, dim=8, heads=1, critic_hidden=(8,))
    g = gen(5)
    ests = []
    for seed in range(40):
        x, y = torch.randn(1, 64, d, generator=g), torch.randn(1, 64, d, generator=g)
        zx, zy, order, real = prepare(x, y, max_dim, seeds=[seed])
        theta = torch.zeros(1, num_critic_params(cfg))
        theta[:, -1] = 1.0
        ests.append(dv_bound(theta, cfg, zx, zy, stats=GaussianStats(zx, zy, real), order=order).item())
    assert abs(np.mean(ests)) < 0.25 * d * d / 128 + 0.005


@pytest.mark.parametrize("wide", ["projected", "sliced"])
def test_mixed_precision_inputs(tiny, wide):
    # float32 X beside float64 Y, one of them wider than max_dim: same estimate as all-float64
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 6, generator=g)
    y = x[:, :2].double() + torch.randn(200, 2, generator=g, dtype=torch.float64)
    mixed = estimate_mi(x, y, model=tiny, wide=wide, seed=1)
    both = estimate_mi(x.double(), y, model=tiny, wide=wide, seed=1)
    assert mixed.mi == pytest.approx(both.mi, abs=1e-5)
    assert estimate_mi(y, x, model=tiny, wide=wide, seed=1).n == 200
