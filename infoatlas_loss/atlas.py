"""The synthetic pretraining 'atlas' (paper Sec. 3.2, App. A.2) and closed-form validation tasks.

A batch of B distributions with shared dimensions (dx, dy).  Each is a mixture of K
Gaussian / Student-t components (one shared chi-square per sample couples x and y in the
t case: tail dependence even with zero correlation), with random weights and means and
low-rank + diagonal correlation (Algorithm 2) or a canonical-correlation construction with
full-rank cross-correlation.  Random invertible maps then act on x alone and on y alone
(linear mixing, spirals, affine couplings, elementwise monotone maps): they change the
copula but not I(X; Y); some variables are swiss-roll embeddings of one dimension fewer, and
some batches get coordinate-plane spirals of both variables (bmi's spiral tasks).  A fraction
of items is a noisy function y = f(x) + noise (linear or a random MLP), and a fraction is made
exactly independent by shuffling y; another fraction is a single low-degree-of-freedom
Student-t, mostly with identity dispersion (dependence without correlation).
"""
from __future__ import annotations

import math

import torch

MAX_NU = 10  # Student-t degrees of freedom are drawn from 1..MAX_NU


def _u(shape, lo, hi, g):
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def _standardize(v: torch.Tensor) -> torch.Tensor:
    return (v - v.mean(dim=1, keepdim=True)) / (v.std(dim=1, keepdim=True) + 1e-6)


def _orthogonal(b: int, d: int, g) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(b, d, d, generator=g))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def _to_corr(cov: torch.Tensor) -> torch.Tensor:
    s = torch.diagonal(cov, dim1=-2, dim2=-1).rsqrt()
    return cov * s.unsqueeze(-1) * s.unsqueeze(-2)


def canonical_corr(b: int, dx: int, dy: int, rho: torch.Tensor, g, *, p_aligned: float = 0.0
                   ) -> torch.Tensor:
    """Correlation with canonical correlations rho (b, min(dx, dy)), randomly rotated within
    x and y (a fraction ``p_aligned`` left coordinate-aligned: sparse, bmi-like).
    Its Gaussian MI is -0.5 * sum log(1 - rho^2)."""
    d = dx + dy
    c = torch.eye(d).repeat(b, 1, 1)
    k = rho.shape[1]
    idx = torch.arange(k)
    c[:, idx, dx + idx] = rho
    c[:, dx + idx, idx] = rho
    rot = torch.zeros(b, d, d)
    rot[:, :dx, :dx] = _orthogonal(b, dx, g)
    rot[:, dx:, dx:] = _orthogonal(b, dy, g)
    if p_aligned > 0:
        rot = torch.where(torch.rand(b, 1, 1, generator=g) < p_aligned, torch.eye(d), rot)
    return rot @ c @ rot.transpose(-1, -2)


def _lowrank_corr(b: int, d: int, g) -> torch.Tensor:
    """Algorithm 2: W W^T + D with random rank r in 1..d, normalised to a correlation."""
    rank = torch.randint(1, d + 1, (b, 1, 1), generator=g)
    w = torch.randn(b, d, d, generator=g) * (torch.arange(d).view(1, 1, d) < rank)
    diag = rank.view(b, 1) * 10 ** _u((b, d), -2.0, 0.5, g)
    return _to_corr(w @ w.transpose(-1, -2) + torch.diag_embed(diag))


def _t_scale(nu: torch.Tensor, n: int, max_nu: int, g) -> torch.Tensor:
    """Student-t scale sqrt(nu / chi2_nu) per sample, (B, n), for integer degrees of freedom
    ``nu`` (B, n) or (B, 1) in 1..max_nu; one chi-square per sample scales all its columns."""
    chi2 = (torch.randn(nu.shape[0], n, max_nu, generator=g) ** 2
            * (torch.arange(max_nu) < nu.unsqueeze(-1))).sum(-1)
    return (nu / chi2.clamp_min(1e-12)).sqrt()


def _component_corr(b: int, dx: int, dy: int, g) -> torch.Tensor:
    d = dx + dy
    low = _lowrank_corr(b, d, g)
    rho = _u((b, min(dx, dy)), 0.0, 0.995, g) * (torch.rand(b, 1, generator=g) < 0.8)
    # some pairs uncorrelated (sparse interactions, as in bmi's multinormal-sparse)
    rho = rho * (torch.rand(rho.shape, generator=g) < 0.7)
    can = canonical_corr(b, dx, dy, rho, g, p_aligned=0.3)
    pick = (torch.rand(b, 1, 1, generator=g) < 0.5)
    c = torch.where(pick, low, can)
    # zero correlation: dependence only through t tails or the mixture
    return torch.where(torch.rand(b, 1, 1, generator=g) < 0.15, torch.eye(d).expand(b, d, d), c)


def _mixture(b: int, n: int, dx: int, dy: int, g) -> torch.Tensor:
    d = dx + dy
    k = int(torch.randint(1, 6, (1,), generator=g))
    corr = torch.stack([_component_corr(b, dx, dy, g) for _ in range(k)], dim=1)  # (B, K, d, d)
    chol = torch.linalg.cholesky(corr + 1e-5 * torch.eye(d))
    spread = _u((b, 1, 1), 0.0, 3.0, g) * (k > 1)
    mean = _u((b, k, d), -1.0, 1.0, g) * spread
    weights = _u((b, k), 0.2, 1.0, g)
    comp = torch.multinomial(weights, n, replacement=True, generator=g)  # (B, n)
    nu = torch.randint(1, MAX_NU + 1, (b, k), generator=g)
    is_t = torch.rand(b, k, generator=g) < 0.5
    z = torch.einsum("bkij,bnj->bkni", chol, torch.randn(b, n, d, generator=g))
    z = torch.gather(z, 1, comp.view(b, 1, n, 1).expand(b, 1, n, d)).squeeze(1)  # (B, n, d)
    nu_i, t_i = torch.gather(nu, 1, comp), torch.gather(is_t, 1, comp)
    scale = torch.where(t_i, _t_scale(nu_i, n, MAX_NU, g), torch.ones(b, n))
    return torch.gather(mean, 1, comp.unsqueeze(-1).expand(b, n, d)) + z * scale.unsqueeze(-1)


def _student(b: int, n: int, dx: int, dy: int, g) -> torch.Tensor:
    """One multivariate Student-t per item with low degrees of freedom (1..5) and, for most
    items, identity dispersion: x and y are uncorrelated but dependent through the shared
    chi-square (bmi's student-identity tasks).  Rare inside the mixtures, so drawn here."""
    d = dx + dy
    corr = torch.where(torch.rand(b, 1, 1, generator=g) < 0.6, torch.eye(d).expand(b, d, d),
                       _component_corr(b, dx, dy, g))
    chol = torch.linalg.cholesky(corr + 1e-5 * torch.eye(d))
    z = torch.einsum("bij,bnj->bni", chol, torch.randn(b, n, d, generator=g))
    nu = torch.randint(1, 6, (b, 1), generator=g)
    return z * _t_scale(nu, n, 5, g).unsqueeze(-1)


def _functional(b: int, n: int, dx: int, dy: int, g) -> torch.Tensor:
    """y = f(x) + noise with a random smooth f (tanh / sin MLP) and Gaussian or uniform noise."""
    x = torch.randn(b, n, dx, generator=g)
    if torch.rand(1, generator=g) < 0.5:
        x = torch.rand(b, n, dx, generator=g) * 2 - 1
    h = 16
    w1 = torch.randn(b, dx, h, generator=g) * _u((b, 1, 1), 0.5, 2.5, g)
    kind = float(torch.rand(1, generator=g))
    if kind < 0.3:  # additive noise on a linear map (bmi's 1v1-additive is the 1-D case)
        f = x @ torch.randn(b, dx, dy, generator=g)
    else:
        act = torch.sin if kind < 0.65 else torch.tanh
        f = act(x @ w1 + torch.randn(b, 1, h, generator=g)) @ torch.randn(b, h, dy, generator=g)
    f = _standardize(f)
    sigma = 10 ** _u((b, 1, 1), -2.0, 0.3, g)
    noise = torch.randn(b, n, dy, generator=g)
    if torch.rand(1, generator=g) < 0.3:
        noise = (torch.rand(b, n, dy, generator=g) * 2 - 1) * math.sqrt(3)
    return torch.cat([x, f + sigma * noise], dim=-1)


def spiral(v: torch.Tensor, speed: torch.Tensor, g, *, aligned: bool = False) -> torch.Tensor:
    """Rotation of (B, n, d) in one plane by ``speed`` (B, 1) * |v|^2 radians: keeps |v|, so
    it is invertible.  The plane is random, or coordinates (0, 1) if ``aligned`` (bmi's)."""
    b, n, d = v.shape
    q = torch.eye(d).expand(b, d, d) if aligned else _orthogonal(b, d, g)
    w = v @ q
    ang = speed * (w ** 2).sum(-1)
    c, s = torch.cos(ang), torch.sin(ang)
    w0, w1 = w[..., 0] * c - w[..., 1] * s, w[..., 0] * s + w[..., 1] * c
    w = torch.cat([w0.unsqueeze(-1), w1.unsqueeze(-1), w[..., 2:]], dim=-1)
    return w @ q.transpose(-1, -2)


def swiss_roll(v: torch.Tensor, g) -> torch.Tensor:
    """Embed the first coordinate of (B, n, d) on a 2-D swiss roll: (B, n, d + 1).

    u = Phi(v_0) in [0, 1] -> t = a pi (1 + 2u) -> (t cos t, t sin t): injective (the radius
    grows with u), so I(X; Y) is unchanged while the support becomes a curve."""
    b = v.shape[0]
    t = _u((b, 1, 1), 1.0, 2.0, g) * math.pi * (1 + 2 * torch.special.ndtr(_standardize(v[..., :1])))
    return torch.cat([t * torch.cos(t), t * torch.sin(t), v[..., 1:]], dim=-1)


def _flow(v: torch.Tensor, g) -> torch.Tensor:
    """One random invertible map of one variable (B, n, d), chosen per batch."""
    b, n, d = v.shape
    v = _standardize(v)
    kind = int(torch.randint(0, 4 if d > 1 else 2, (1,), generator=g))
    if kind == 0:  # elementwise monotone
        p = _u((b, 1, d), 0.3, 3.0, g)
        fns = [lambda t: torch.sign(t) * t.abs() ** p, torch.asinh, torch.special.ndtr,
               lambda t: torch.exp(t.clamp(max=20.0))]
        return fns[int(torch.randint(0, len(fns), (1,), generator=g))](v)
    if kind == 1:  # linear mixing (sign flips / scaling in 1-D)
        m = _orthogonal(b, d, g) * torch.exp(_u((b, 1, d), -1.0, 1.0, g))
        return v @ m
    if kind == 2:
        return spiral(v, _u((b, 1), 0.1, 1.0, g), g)
    # affine coupling: the second half is scaled and shifted by a function of the first
    k = d // 2
    a, rest = v[..., :k], v[..., k:]
    w1 = torch.randn(b, k, 8, generator=g)
    hid = torch.tanh(a @ w1)
    s = torch.tanh(hid @ torch.randn(b, 8, d - k, generator=g) * 0.5)
    t = hid @ torch.randn(b, 8, d - k, generator=g)
    return torch.cat([a, rest * torch.exp(s) + t], dim=-1)


def sample_atlas(batch: int, n: int, dx: int, dy: int, *, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``batch`` random distributions and ``n`` samples of each.

    Returns x (batch, n, dx), y (batch, n, dy), float32.
    """
    g = generator
    # a variable of >= 2 dims is sometimes a swiss-roll embedding of one dim fewer
    rx, ry = (int(d > 1 and bool(torch.rand(1, generator=g) < 0.08)) for d in (dx, dy))
    family = float(torch.rand(1, generator=g))
    if family < 0.2:
        v = _functional(batch, n, dx - rx, dy - ry, g)
    elif family < 0.3:
        v = _student(batch, n, dx - rx, dy - ry, g)
    else:
        v = _mixture(batch, n, dx - rx, dy - ry, g)
    x, y = v[..., :dx - rx], v[..., dx - rx:]
    x, y = (swiss_roll(x, g) if rx else x), (swiss_roll(y, g) if ry else y)
    for _ in range(int(torch.randint(0, 3, (1,), generator=g))):
        x = _flow(x, g)
    for _ in range(int(torch.randint(0, 3, (1,), generator=g))):
        y = _flow(y, g)
    if torch.rand(1, generator=g) < 0.2:  # bmi-style spirals of both variables, speed ~ 1/d
        x = spiral(_standardize(x), _u((batch, 1), 0.3, 2.0, g) / dx, g, aligned=True) if dx > 1 else x
        y = spiral(_standardize(y), _u((batch, 1), 0.3, 2.0, g) / dy, g, aligned=True) if dy > 1 else y
    indep = torch.rand(batch, generator=g) < 0.1
    perm = torch.argsort(torch.rand(batch, n, generator=g), dim=1)
    y_shuf = torch.gather(y, 1, perm.unsqueeze(-1).expand_as(y))
    y = torch.where(indep.view(-1, 1, 1), y_shuf, y)
    return x.float(), y.float()


def gaussian_task(batch: int, n: int, dx: int, dy: int, mi: float, *,
                  generator: torch.Generator | None = None):
    """Gaussian pairs with closed-form MI (nats): equal canonical correlations over
    min(dx, dy) pairs, randomly rotated.  Returns x (B, n, dx), y (B, n, dy), true MI."""
    k = min(dx, dy)
    rho = math.sqrt(1 - math.exp(-2 * mi / k))
    c = canonical_corr(batch, dx, dy, torch.full((batch, k), rho), generator)
    chol = torch.linalg.cholesky(c.double() + 1e-12 * torch.eye(dx + dy, dtype=torch.float64))
    v = torch.einsum("bij,bnj->bni", chol, torch.randn(batch, n, dx + dy, generator=generator,
                                                       dtype=torch.float64))
    return v[..., :dx].float(), v[..., dx:].float(), mi
