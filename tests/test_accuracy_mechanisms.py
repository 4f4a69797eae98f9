"""The accuracy mechanisms: critic-input masking, cross-fitted projections for wide
variables, the permutation-null correction and test-time refinement."""
import math

import numpy as np
import pytest
import torch

from infoatlas_loss import InfoAtlasConfig, InfoAtlas, estimate_mi, load_pretrained, sliced_mi
from infoatlas_loss.critic import GaussianStats
from infoatlas_loss.estimator import dataset_seeds, dv_from_scores, prepare
from infoatlas_loss.projection import canonical_subspaces, crossfit_projections
from infoatlas_loss.refine import RefineConfig, refine_critic, refined_mi


def _gaussian(n, d, k, rho, rng):
    """x, y (n, d) with k canonical pairs of correlation rho; MI = -k/2 log(1 - rho^2)."""
    z = rng.standard_normal((n, d))
    y = rng.standard_normal((n, d))
    y[:, :k] = rho * z[:, :k] + math.sqrt(1 - rho ** 2) * y[:, :k]
    return z, y, -0.5 * k * math.log(1 - rho ** 2)


def test_gaussian_term_ignores_padding_columns():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 300, 2, generator=g, dtype=torch.float64), torch.randn(2, 300, 2, generator=g, dtype=torch.float64)
    y = y + x
    seeds = dataset_seeds(2, g)
    zx, zy, _, real = prepare(x, y, 4, seeds=seeds)
    stats = GaussianStats(zx, zy, real)
    v = torch.cat([zx, zy], dim=-1)
    masked = v * real.unsqueeze(1).to(v.dtype)
    torch.testing.assert_close(stats.quad(v), stats.quad(masked))


def test_masked_critic_sees_data_columns_only():
    # two different paddings of the same data: the masked critic's input is identical
    cfg = InfoAtlasConfig.preset("tiny")
    net = InfoAtlas(InfoAtlasConfig(**{**cfg.to_dict(), "mask_critic": True})).eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(1, 200, 1, generator=g), torch.randn(1, 200, 2, generator=g)
    zx, zy, order, real = prepare(x, y, cfg.max_dim, seeds=dataset_seeds(1, g))
    theta_input = (zx, zy)
    noisy_x = torch.where(real[:, None, :cfg.max_dim], zx, torch.randn_like(zx))
    a = dv_from_scores(net, *theta_input, order=order, real=real)
    # same generated critic (context unchanged), evaluation on differently padded pairs
    b = dv_from_scores(net, *theta_input, order=order, real=real, eval_x=noisy_x, eval_y=zy)
    torch.testing.assert_close(a, b)


def test_projections_orthonormal_and_differentiable():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 400, 12, generator=g, dtype=torch.float64)
    y = x @ torch.randn(12, 9, generator=g, dtype=torch.float64) + torch.randn(3, 400, 9, generator=g, dtype=torch.float64)
    px, py, rho = canonical_subspaces(x, y, 4)
    eye = torch.eye(4, dtype=torch.float64).expand(3, 4, 4)
    torch.testing.assert_close(px.transpose(-1, -2) @ px, eye)
    torch.testing.assert_close(py.transpose(-1, -2) @ py, eye)
    assert torch.all(rho[:, :-1] >= rho[:, 1:]) and torch.all(rho <= 1)
    x.requires_grad_(True)
    ox, oy = crossfit_projections(x, y, 5, generator=g)
    assert ox.shape == (6, 200, 5) and oy.shape == (6, 200, 5)
    ox.pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("d", [8, 30, 50])
def test_projected_estimate_of_independent_wide_data_is_near_zero(d):
    rng = np.random.default_rng(d)
    x, y = rng.standard_normal((1000, d)), rng.standard_t(3, (1000, d))
    r = estimate_mi(x, y)
    assert r.method == "projected"
    assert abs(r.mi) < 0.03, r


def test_projected_estimate_of_wide_gaussian_is_mi_not_sliced_mi():
    x, y, true = _gaussian(4000, 25, 2, 0.8, np.random.default_rng(3))
    proj = estimate_mi(x, y)
    sliced = estimate_mi(x, y, wide="sliced", num_slices=16)
    assert abs(proj.mi - true) < 0.12, (proj, true)
    assert sliced.mi < 0.5 * true and sliced.method == "sliced"


def test_debias_is_centred_on_independent_small_batches():
    net = load_pretrained()
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(48, 64, 5, generator=g), torch.randn(48, 64, 5, generator=g)
    plain = sliced_mi(x, y, model=net, reduction="none", generator=g)
    fixed = sliced_mi(x, y, model=net, reduction="none", generator=g, debias=True)
    se = fixed.std().item() / math.sqrt(48)
    assert plain.mean() > 0.02  # the offset the correction removes
    assert abs(fixed.mean().item()) < max(0.02, 3 * se)


def test_debias_keeps_strong_dependence():
    net = load_pretrained()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(256, 2, generator=g)
    y = x + 0.3 * torch.randn(256, 2, generator=g)
    a = sliced_mi(x, y, model=net, generator=torch.Generator().manual_seed(0))
    b = sliced_mi(x, y, model=net, generator=torch.Generator().manual_seed(0), debias=True)
    assert b > 1.5 and abs(a - b) < 0.1


def test_refinement_never_lowers_dv_on_its_own_rows():
    net = InfoAtlas(InfoAtlasConfig.preset("tiny")).eval()
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, 300, 2, generator=g)
    y = torch.sin(3 * x) + 0.3 * torch.randn(3, 300, 2, generator=g)
    zx, zy, _, real = prepare(x, y, net.config.max_dim, seeds=dataset_seeds(3, g))
    theta = net(zx, zy)
    stats = GaussianStats(zx, zy, real)
    cfg = RefineConfig(steps=25, lr=1e-2)
    from infoatlas_loss.critic import dv_bound
    order = torch.arange(300).expand(3, -1)
    start = dv_bound(theta, net.config, zx, zy, stats=stats, order=order, num_shifts=cfg.num_shifts)
    best, best_dv = refine_critic(theta, net, zx, zy, stats, cfg)
    again = dv_bound(best, net.config, zx, zy, stats=stats, order=order, num_shifts=cfg.num_shifts)
    assert torch.all(best_dv >= start - 1e-6)
    torch.testing.assert_close(again, best_dv)
    assert torch.any(best_dv > start + 1e-3)  # it does move


def test_refined_estimate_is_row_permutation_invariant():
    net = InfoAtlas(InfoAtlasConfig.preset("tiny")).eval()
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 200, 2, generator=g)
    y = x + torch.randn(1, 200, 2, generator=g)
    perm = torch.randperm(200, generator=g)
    cfg = RefineConfig(steps=3)
    seeds = dataset_seeds(1, torch.Generator().manual_seed(0))
    a = refined_mi(net, x, y, seeds=seeds, config=cfg)
    b = refined_mi(net, x[:, perm], y[:, perm], seeds=seeds, config=cfg)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_estimate_mi_rejects_bad_options():
    x = np.random.default_rng(0).standard_normal((100, 2))
    with pytest.raises(ValueError, match="wide"):
        estimate_mi(x, x, wide="random")
    with pytest.raises(ValueError, match="refine_steps"):
        estimate_mi(x, x, refine_steps=-1)


def test_projected_estimate_is_row_permutation_invariant():
    x, y, _ = _gaussian(600, 12, 2, 0.7, np.random.default_rng(8))
    perm = np.random.default_rng(9).permutation(600)
    a, b = estimate_mi(x, y), estimate_mi(x[perm], y[perm])
    assert a.method == "projected"
    assert a.mi == pytest.approx(b.mi, abs=1e-5)
