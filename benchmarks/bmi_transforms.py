"""Invertible maps used by the bmi benchmark tasks, each with its inverse.

Mutual information is invariant under injective maps applied to X and to Y separately,
so a transformed task keeps the ground truth of its base task.  Each transform here is
written as a ``Transform(forward, inverse)`` pair so that ``benchmarks.verify_truth`` can
check injectivity numerically (``inverse(forward(v)) == v`` on samples).

All functions act on arrays of shape (n, d) and return arrays of the same shape, except
``swissroll`` which maps (n, 1) -> (n, 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import ndtr, ndtri

Array = np.ndarray


@dataclass(frozen=True)
class Transform:
    """A named map with its inverse on the image; both take and return (n, d) arrays."""

    name: str
    forward: Callable[[Array], Array]
    inverse: Callable[[Array], Array]


# --- elementwise, strictly increasing ------------------------------------------------------

def half_cube(v: Array) -> Array:
    """v * sqrt(|v|), the signed power 3/2."""
    return v * np.sqrt(np.abs(v))


def half_cube_inv(w: Array) -> Array:
    return np.sign(w) * np.abs(w) ** (2.0 / 3.0)


def wiggly_x(v: Array) -> Array:
    """Monotone wiggle for X of the 1v1 wiggly task (derivative >= 1 - 0.4 - 0.34 - 0.099 > 0)."""
    return v + 0.4 * np.sin(v) + 0.2 * np.sin(1.7 * v + 1.0) + 0.03 * np.sin(3.3 * v - 2.5)


def wiggly_y(v: Array) -> Array:
    """Monotone wiggle for Y (derivative >= 1 - 0.16 - 0.221 - 0.086 > 0)."""
    return v - 0.4 * np.sin(0.4 * v) + 0.17 * np.sin(1.3 * v + 3.5) + 0.02 * np.sin(4.3 * v - 2.5)


def invert_increasing(f: Callable[[Array], Array], w: Array, lo: float, hi: float,
                      iters: int = 200) -> Array:
    """Solve f(v) = w elementwise for a strictly increasing f by bisection on [lo, hi].

    Values of ``w`` outside f([lo, hi]) come back clamped to ``lo`` / ``hi``.
    """
    w = np.asarray(w, dtype=float)
    a = np.full_like(w, lo)
    b = np.full_like(w, hi)
    for _ in range(iters):
        m = 0.5 * (a + b)
        below = f(m) < w
        a = np.where(below, m, a)
        b = np.where(below, b, m)
        if np.all(b - a <= 1e-13 * (1.0 + np.abs(a))):
            break
    return 0.5 * (a + b)


def mixture_cdf(weights, shifts) -> Callable[[Array], Array]:
    """CDF of sum_i weights[i] * N(shifts[i], 1); the 1v1-bimodal marginals."""
    weights, shifts = np.asarray(weights, float), np.asarray(shifts, float)

    def cdf(v: Array) -> Array:
        v = np.asarray(v, dtype=float)
        return sum(w * ndtr(v - s) for w, s in zip(weights, shifts))

    return cdf


def mixture_quantile(weights, shifts) -> Callable[[Array], Array]:
    """Inverse of ``mixture_cdf(weights, shifts)``: probabilities in (0, 1) -> values."""
    cdf = mixture_cdf(weights, shifts)
    lo, hi = float(np.min(shifts)) - 40.0, float(np.max(shifts)) + 40.0
    return lambda u: invert_increasing(cdf, u, lo, hi)


# bmi's 1v1-bimodal marginals: X ~ 0.3 N(0,1) + 0.7 N(5,1), Y ~ 0.5 N(-1,1) + 0.5 N(3,1)
BIMODAL_X = ((0.3, 0.7), (0.0, 5.0))
BIMODAL_Y = ((0.5, 0.5), (-1.0, 3.0))


# --- spiral: x -> exp(speed * |x|^2 * A) x, A the (i, j) generator of so(d) -------------

def _plane_rotate(v: Array, theta: Array, i: int, j: int) -> Array:
    """Rotate each row of v by angle theta[row] in the (i, j) coordinate plane.

    exp(theta * A) with A[i, j] = -1, A[j, i] = 1 is this rotation (closed form of expm).
    """
    out = v.copy()
    c, s = np.cos(theta), np.sin(theta)
    out[:, i] = c * v[:, i] - s * v[:, j]
    out[:, j] = s * v[:, i] + c * v[:, j]
    return out


def spiral(i: int, j: int, speed: float) -> Transform:
    """The bmi spiral: rotation in plane (i, j) by ``speed * |v|^2`` radians.

    The rotation keeps |v|, so the inverse rotates back by the same angle: a diffeomorphism.
    """
    def fwd(v: Array) -> Array:
        return _plane_rotate(v, speed * np.sum(v * v, axis=1), i, j)

    def inv(w: Array) -> Array:
        return _plane_rotate(w, -speed * np.sum(w * w, axis=1), i, j)

    return Transform(f"spiral({i},{j},{speed:.4g})", fwd, inv)


# --- swiss roll: (n, 1) in [0, 1] -> (n, 2) ----------------------------------------------

def swissroll(u: Array) -> Array:
    """t = 1.5 pi (1 + 2u), u in [0, 1]; returns (t cos t, t sin t) / 21, shape (n, 2).

    Injective: the radius t / 21 is strictly increasing in u.
    """
    t = 1.5 * np.pi * (1.0 + 2.0 * u[:, 0])
    return np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 21.0


def swissroll_inv(w: Array) -> Array:
    t = 21.0 * np.sqrt(np.sum(w * w, axis=1))
    return ((t / (1.5 * np.pi) - 1.0) / 2.0)[:, None]


NORMAL_CDF = Transform("normal_cdf", ndtr, ndtri)
HALF_CUBE = Transform("half_cube", half_cube, half_cube_inv)
ASINH = Transform("asinh", np.arcsinh, np.sinh)
WIGGLY_X = Transform("wiggly_x", wiggly_x, lambda w: invert_increasing(wiggly_x, w, -1e3, 1e3))
WIGGLY_Y = Transform("wiggly_y", wiggly_y, lambda w: invert_increasing(wiggly_y, w, -1e3, 1e3))
BIMODAL_QX = Transform("bimodal_x", mixture_quantile(*BIMODAL_X), mixture_cdf(*BIMODAL_X))
BIMODAL_QY = Transform("bimodal_y", mixture_quantile(*BIMODAL_Y), mixture_cdf(*BIMODAL_Y))
SWISSROLL = Transform("swissroll", swissroll, swissroll_inv)
