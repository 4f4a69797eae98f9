"""Conditional mutual information I(X; Y | Z) by the chain rule, and a conditional
independence test with a local-permutation null.

    I(X; Y | Z) = I(A; (B, Z)) - I(A; Z)

where A is the narrower of X and Y (the anchor, CMI is symmetric) and B the other.  Both
terms are estimated on the same rows with the same seeds (padding noise, debias pairing),
so much of their estimation error is shared and cancels in the difference.

Wide inputs (when A or (B, Z) has more than ``max_dim`` columns) are reduced on one half
of the rows and scored on the other, both ways (cross-fitting, as ``estimate_mi`` does):
Z is first replaced by its top canonical subspace with respect to (A, B), at most
min(dz, da + db, max_dim) directions, the *same* projection in both terms; any side still
wider than ``max_dim`` is then projected on its canonical subspace with respect to the
term's other side.  For jointly Gaussian data with da + db <= max_dim every step keeps
I(X; Y | Z) (E[(A, B) | Z] depends on Z only through that subspace); for non-linear
dependence on a wide Z the linear reduction can lose part of Z's information.

The test permutes B within neighbourhoods of Z (Runge 2018, local permutation: each row
draws B from one of its ``num_neighbors`` nearest rows in the ranks of Z, without reuse
where possible), which keeps B | Z approximately and breaks A - B dependence beyond Z.
All permuted datasets are scored with the observed one as one batch.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from einops import rearrange, repeat

from .checks import MIN_SAMPLES, as_tensor
from .counter_rng import split_seeds
from .critic import canonical_order
from .estimator import dataset_seeds
from .functional import DEBIAS_BELOW, _estimates, _resolve, _standardize
from .model import InfoAtlas
from .projection import canonical_subspaces, other_half, take_halves
from .softrank import normal_scores


def _as_triple(X, Y, Z, caller: str, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three arrays of paired rows -> validated (n, d) tensors (1-D input is one column)."""
    out = []
    for name, a in (("X", X), ("Y", Y), ("Z", Z)):
        t = as_tensor(a, name)
        t = t.unsqueeze(-1) if t.dim() == 1 else t
        if t.dim() != 2:
            raise ValueError(f"{caller} expects (n, d) arrays, got {name} of shape {tuple(t.shape)}")
        if t.shape[1] == 0:
            raise ValueError(f"{name} has no columns: shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or Inf values")
        out.append(t if device is None else t.to(device))
    rows = [t.shape[0] for t in out]
    if len(set(rows)) > 1:
        raise ValueError(f"X, Y and Z must have the same number of rows, got {rows}")
    if rows[0] < MIN_SAMPLES:
        raise ValueError(f"too few samples: got {rows[0]}, need at least {MIN_SAMPLES}")
    return out[0], out[1], out[2]


def _anchor(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(A, B, name of A): A is the variable with fewer columns (X on a tie)."""
    return (x, y, "x") if x.shape[1] <= y.shape[1] else (y, x, "y")


def _mm(v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return torch.einsum("bnd,bdk->bnk", v, p)  # (B, n, d) @ (B, d, k) -> (B, n, k)


def _narrow(fit_a, fit_b, score_a, score_b, max_dim: int, swap: torch.Tensor):
    """Project the sides of a scored pair wider than ``max_dim`` on the canonical subspaces
    fitted on the partner half (fit pair item ``swap[i]`` for scored item i)."""
    if max(fit_a.shape[-1], fit_b.shape[-1]) <= max_dim:
        return score_a, score_b
    k = min(max_dim, fit_a.shape[-1], fit_b.shape[-1])
    pa, pb, _ = canonical_subspaces(fit_a, fit_b, k)
    score_a = score_a if score_a.shape[-1] <= max_dim else _mm(score_a, pa[swap])
    score_b = score_b if score_b.shape[-1] <= max_dim else _mm(score_b, pb[swap])
    return score_a, score_b


def _reduced_halves(a: torch.Tensor, b: torch.Tensor, z: torch.Tensor, max_dim: int,
                    hash_w: torch.Tensor):
    """Cross-fitted inputs of both chain-rule terms for wide variables.

    a (B, n, da), b (B, n, db), z (B, n, dz), standardized -> ((A, (B, PZ)), (A, PZ)) as
    halves (2B, n // 2, <= max_dim), in the layout of ``take_halves``.  PZ is Z on the
    canonical subspace w.r.t. (A, B) fitted on the partner half, shared by both terms.
    """
    nb = a.shape[0]
    order = canonical_order(a, torch.cat([b, z], -1), hash_w.expand(nb, -1))  # (B, n)
    ha, hb, hz = (take_halves(normal_scores(v), order) for v in (a, b, z))  # (2B, h, d)
    swap = other_half(nb, a.device)
    kz = min(hz.shape[-1], ha.shape[-1] + hb.shape[-1], max_dim)
    fit_z = score_z = hz
    if hz.shape[-1] > kz:
        pz, _, _ = canonical_subspaces(hz, torch.cat([ha, hb], -1), kz)  # (2B, dz, kz)
        fit_z, score_z = _mm(hz, pz), _mm(hz, pz[swap])
    joint = _narrow(ha, torch.cat([hb, fit_z], -1), ha, torch.cat([hb, score_z], -1), max_dim, swap)
    marginal = _narrow(ha, fit_z, ha, score_z, max_dim, swap)
    return joint, marginal


@dataclass(frozen=True)
class ChainTerms:
    """Both chain-rule terms per dataset, in nats: ``joint`` I(A; (B, Z)) and ``marginal``
    I(A; Z), (D,) each, where D = B (``"whole"``) or 2B (``"projected"``: the two halves,
    first B items then the next B)."""

    joint: torch.Tensor
    marginal: torch.Tensor
    method: str


def chain_terms(net: InfoAtlas, a: torch.Tensor, bs: torch.Tensor, z: torch.Tensor, *,
                generator: torch.Generator, debias: bool = False, chunk_size: int = 64
                ) -> ChainTerms:
    """Estimate I(A; (B_i, Z)) and I(A; Z) for every B_i of a batch, one batched pass each.

    a (n, da) and z (n, dz) are shared; bs (B, n, db) holds the versions of B (the observed
    one, or permutations of it).  Every dataset gets the same seeds (padding noise,
    halves, debias pairing), so the datasets are scored exchangeably.
    """
    nb, md = bs.shape[0], net.config.max_dim
    dtype = next(net.parameters()).dtype
    a, z = (_standardize(t.unsqueeze(0).to(torch.promote_types(t.dtype, dtype))) for t in (a, z))
    bs = _standardize(bs.to(torch.promote_types(bs.dtype, dtype)))
    hash_w = torch.randn(1, a.shape[-1] + bs.shape[-1] + z.shape[-1], generator=generator,
                         dtype=torch.float64).to(a.device)
    root = dataset_seeds(1, generator, a.device)
    whole = max(a.shape[-1], bs.shape[-1] + z.shape[-1]) <= md
    kw = dict(num_shifts=None, chunk_size=chunk_size, debias=debias, root=root)
    if whole:
        seed = split_seeds(root, 1)
        joint = _estimates(net, repeat(a, "1 n d -> b n d", b=nb).to(dtype),
                           torch.cat([bs, z.expand(nb, -1, -1)], -1).to(dtype),
                           seed.repeat(nb), **kw)
        # I(A; Z) does not involve B: one estimate serves every dataset
        marginal = _estimates(net, a.to(dtype), z.to(dtype), seed, **kw).expand(nb)
        return ChainTerms(joint, marginal, "whole")
    (ja, jb), (ma, mz) = _reduced_halves(a.expand(nb, -1, -1), bs, z.expand(nb, -1, -1), md, hash_w)
    seeds = repeat(split_seeds(root, 2), "h -> (h b)", b=nb)  # one seed per half, (2B,)
    joint = _estimates(net, ja.to(dtype), jb.to(dtype), seeds, **kw)
    marginal = _estimates(net, ma.to(dtype), mz.to(dtype), seeds, **kw)
    return ChainTerms(joint, marginal, "projected")


@dataclass(frozen=True)
class CMIResult:
    """An estimate of I(X; Y | Z) in nats (>= 0 in population; a finite-sample estimate of
    conditionally independent data scatters around 0 and may be negative).

    Attributes:
        cmi: I(X; Y | Z) = ``mi_joint - mi_z``.
        mi_joint: I(A; (B, Z)), with A the anchor (``anchor``: ``"x"`` or ``"y"``, the
            variable with fewer columns) and B the other one.
        mi_z: I(A; Z).
        stderr: half the spread of the two cross-fitted halves (0.0 for ``"whole"``).
        method: ``"whole"`` (A and (B, Z) fit in ``max_dim``) or ``"projected"``.
        n: rows; seconds: wall time.
    """

    cmi: float
    mi_joint: float
    mi_z: float
    stderr: float
    anchor: str
    method: str
    n: int
    seconds: float

    def __float__(self) -> float:
        return self.cmi


@torch.no_grad()
def conditional_mi(X, Y, Z, *, seed: int = 0, model: InfoAtlas | str | None = None,
                   debias: bool | None = None, chunk_size: int = 64,
                   device: str | torch.device | None = None) -> CMIResult:
    """Estimate I(X; Y | Z) in nats from arrays of shape (n, dx), (n, dy), (n, dz).

    Chain rule I(A; (B, Z)) - I(A; Z) with A the narrower of X and Y, both terms on the
    same rows with the same seeds (see the module docstring for wide inputs).  ``debias``
    subtracts each term's permutation-null estimate (default: below ``DEBIAS_BELOW`` rows,
    as ``estimate_mi``).  1-D inputs are one column.  Deterministic for a given ``seed``.
    """
    t0 = time.perf_counter()
    x, y, z = _as_triple(X, Y, Z, "conditional_mi", device)
    n = x.shape[0]
    debias = n < DEBIAS_BELOW if debias is None else bool(debias)
    net = _resolve(model, x.device)
    a, b, anchor = _anchor(x, y)
    terms = chain_terms(net, a, b.unsqueeze(0), z, generator=torch.Generator().manual_seed(seed),
                        debias=debias, chunk_size=chunk_size)
    joint, marginal = terms.joint.double(), terms.marginal.double()
    per = joint - marginal  # (1,) or (2,) halves
    return CMIResult(cmi=float(per.mean()), mi_joint=float(joint.mean()), mi_z=float(marginal.mean()),
                     stderr=float(per.std() / math.sqrt(2)) if per.numel() > 1 else 0.0,
                     anchor=anchor, method=terms.method, n=n, seconds=time.perf_counter() - t0)


def _mid_ranks(z: torch.Tensor) -> torch.Tensor:
    """Per-column ranks of z (n, dz) scaled to [0, 1), tied values sharing their mean rank."""
    cols = z.T.contiguous()  # (dz, n)
    srt = torch.sort(cols, dim=1).values
    lo = torch.searchsorted(srt, cols, right=False)
    hi = torch.searchsorted(srt, cols, right=True)
    return ((lo + hi - 1).to(torch.float64) / (2 * z.shape[0])).T  # (n, dz)


def _neighbours(z: torch.Tensor, k: int, generator: torch.Generator | None = None,
                block: int = 1024) -> torch.Tensor:
    """Indices (n, k) of the k nearest rows of each row (itself included) in the mid-ranks
    of z (n, dz), Euclidean; ranks make it invariant to monotone maps of Z.  Rows at the
    same distance (ties in a discrete Z) are ordered at random."""
    n = z.shape[0]
    ranks = _mid_ranks(z)
    out = []
    for i in range(0, n, block):
        d = torch.cdist(ranks[i:i + block], ranks)  # (block, n)
        jitter = torch.rand(d.shape, generator=generator).to(d) * (0.25 / n ** 2)
        out.append((d + jitter).topk(k, dim=1, largest=False).indices)
    return torch.cat(out)


def local_permutations(z: torch.Tensor, num: int, num_neighbors: int = 5, *,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """``num`` local permutations (num, n) of the rows of z (n, dz) (Runge 2018).

    Rows are visited in random order; each takes a random one of its ``num_neighbors``
    nearest rows in Z that no earlier row has taken, or a random one of them (reused) when
    all are taken.  Indexing B with a row of the result keeps B | Z approximately.
    Vectorised over the ``num`` permutations (a loop over the n rows).
    """
    n = z.shape[0]
    k = min(int(num_neighbors), n)
    nb = _neighbours(z.cpu(), k, generator).to(z.device)  # (n, k)
    visit = torch.argsort(torch.rand(num, n, generator=generator), dim=1).to(z.device)
    tie = torch.rand(num, n, k, generator=generator).to(z.device)  # random choice among candidates
    used = torch.zeros(num, n, dtype=torch.bool, device=z.device)
    perm = torch.empty(num, n, dtype=torch.long, device=z.device)
    rows = torch.arange(num, device=z.device)
    for t in range(n):
        i = visit[:, t]  # (num,)
        cand = nb[i]  # (num, k)
        free = ~torch.gather(used, 1, cand)
        j = cand[rows, (tie[:, t] + 2.0 * free).argmax(dim=1)]  # a free one if any
        perm[rows, i] = j
        used[rows, j] = True
    return perm


@dataclass(frozen=True)
class CMITestResult:
    """Outcome of :func:`conditional_mi_test`.

    Attributes:
        cmi: the statistic on the observed data, I(X; Y | Z) in nats (chain-rule estimate
            without debiasing).
        p_value: local-permutation p-value with the +1 correction, in (0, 1].
        null_mean, null_std: mean and standard deviation of the statistic over the
            permuted datasets (nats).
        num_permutations, num_neighbors: permutations scored and neighbourhood size.
        method: ``"whole"`` or ``"projected"`` (see :class:`CMIResult`).
        n: rows; seconds: wall time.
    """

    cmi: float
    p_value: float
    null_mean: float
    null_std: float
    num_permutations: int
    num_neighbors: int
    method: str
    n: int
    seconds: float


@torch.no_grad()
def conditional_mi_test(X, Y, Z, *, num_permutations: int = 199, num_neighbors: int = 5,
                        seed: int = 0, model: InfoAtlas | str | None = None,
                        chunk_size: int = 64, device: str | torch.device | None = None
                        ) -> CMITestResult:
    """Test H0: X and Y independent given Z, with the chain-rule CMI as the statistic.

    The variable B (the wider of X and Y; Y on a tie) is permuted within neighbourhoods
    of Z (:func:`local_permutations`); the observed data and ``num_permutations``
    permuted datasets are scored as one batch with shared seeds.  Reject conditional
    independence at level alpha when ``p_value <= alpha``; the smallest attainable
    p-value is 1 / (num_permutations + 1).  The null is approximate: it holds as far as
    the neighbourhoods keep B | Z, which gets harder as dz grows at fixed n.

    Args:
        X, Y, Z: (n, dx), (n, dy), (n, dz) paired rows (numpy or torch; 1-D is one column).
        num_permutations: local permutations scored.
        num_neighbors: neighbourhood size in Z (5 in Runge 2018; larger keeps less of B | Z,
            smaller leaves fewer distinct permutations).
        seed: seeds the permutations, halves and padding noise (deterministic).
        model, chunk_size, device: as in :func:`conditional_mi`.
    """
    t0 = time.perf_counter()
    if int(num_permutations) < 1:
        raise ValueError(f"num_permutations must be >= 1, got {num_permutations}")
    if int(num_neighbors) < 2:
        raise ValueError(f"num_neighbors must be >= 2, got {num_neighbors}")
    x, y, z = _as_triple(X, Y, Z, "conditional_mi_test", device)
    net = _resolve(model, x.device)
    g = torch.Generator().manual_seed(seed)
    n, p = x.shape[0], int(num_permutations)
    a, b, _ = _anchor(x, y)
    perms = local_permutations(z, p, num_neighbors, generator=g)  # (P, n)
    idx = torch.cat([torch.arange(n, device=x.device).unsqueeze(0), perms])  # observed first
    # b[idx]: (1 + P, n, db)
    terms = chain_terms(net, a, b[idx], z, generator=g, chunk_size=chunk_size)
    stats = rearrange((terms.joint - terms.marginal).double(), "(h b) -> h b", b=p + 1).mean(0)
    observed, null = stats[0], stats[1:]
    p_value = (1 + int((null >= observed).sum())) / (p + 1)
    return CMITestResult(cmi=float(observed), p_value=p_value, null_mean=float(null.mean()),
                         null_std=float(null.std()) if p > 1 else 0.0, num_permutations=p,
                         num_neighbors=int(num_neighbors), method=terms.method, n=n,
                         seconds=time.perf_counter() - t0)
