"""Counter-based random numbers: standard normals as a pure function of (seed, index).

Every dataset carries one int64 seed; its k-th random number is ``hash(seed, k)``, so the
draws of a dataset do not depend on which other datasets share its batch, on chunking,
or on the device.  A whole batch is drawn in a few elementwise tensor operations on the
data's device: no per-dataset ``torch.Generator``, no host round trip, and nothing that
stops ``torch.compile`` from tracing it.

The hash is a 32-bit integer finaliser (``lowbias32``, C. Wellons) evaluated in int64
arithmetic that never overflows (products stay below 2**63), so it is exact and identical
on every backend; uniforms become normals by Box-Muller in float64.
"""
from __future__ import annotations

import math

import torch

_MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, m: int) -> torch.Tensor:
    """(x * m) mod 2**32 for 0 <= x < 2**32 without int64 overflow (m split in 16-bit halves
    when the plain product could pass 2**63)."""
    if m < 2 ** 31:
        return (x * m) & _MASK32
    lo, hi = m & 0xFFFF, m >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 on int64 tensors holding values in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _keys(seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 seeds (B,) in [0, 2**62) -> two 32-bit keys (B, 1) each, mixing all their bits."""
    lo, hi = seeds & _MASK32, (seeds >> 32) & _MASK32
    k1 = _hash32(_hash32(hi ^ 0x9E3779B9) ^ lo)
    return k1.unsqueeze(-1), _hash32(k1 ^ 0x2545F491).unsqueeze(-1)


def _bits(keys: tuple[torch.Tensor, torch.Tensor], counter: torch.Tensor) -> torch.Tensor:
    """32 random bits per (dataset, counter): keys (B, 1) twice, counters (m,) -> (B, m).

    The second key is added between the rounds, so two datasets' streams are not the same
    values at shifted counters (as they would be with a key XORed in once)."""
    k1, k2 = keys
    return _hash32((_hash32(counter ^ k1) + k2) & _MASK32)


def _uniform(keys: tuple[torch.Tensor, torch.Tensor], counter: torch.Tensor) -> torch.Tensor:
    """Uniforms in (0, 1), float64, (B, m)."""
    return (_bits(keys, counter).to(torch.float64) + 0.5) * 2.0 ** -32


def normals(seeds: torch.Tensor, shape: tuple[int, ...], *, stream: int = 0) -> torch.Tensor:
    """Standard normals (B, *shape), float64, on ``seeds``' device; row b depends only on
    ``seeds[b]`` (and ``stream``, which gives independent draws from the same seed).

    Args:
        seeds: int64 tensor (B,) with values in [0, 2**62).
        shape: shape of each dataset's draw.
        stream: a small non-negative integer naming an independent stream of the seed.
    """
    m = math.prod(shape)
    half = (m + 1) // 2
    keys = _keys(seeds.to(torch.int64) ^ (stream << 40))
    c = torch.arange(half, device=seeds.device, dtype=torch.int64)
    u1, u2 = _uniform(keys, 2 * c), _uniform(keys, 2 * c + 1)  # (B, half) each
    r = torch.sqrt(-2.0 * torch.log(u1))
    z = torch.cat([r * torch.cos(2 * math.pi * u2), r * torch.sin(2 * math.pi * u2)], dim=-1)
    return z[:, :m].reshape(seeds.shape[0], *shape)


def split_seeds(seed: torch.Tensor, num: int, *, stream: int = 0) -> torch.Tensor:
    """``num`` int64 seeds in [0, 2**62), (num,), derived from one seed (a 1-element tensor):
    a whole call's randomness can come from a single draw of a ``torch.Generator``."""
    keys = _keys(seed.reshape(1).to(torch.int64) ^ (stream << 40))
    c = torch.arange(num, device=seed.device, dtype=torch.int64)
    hi = _bits(keys, 2 * c)[0] & 0x3FFFFFFF  # 30 bits
    lo = _bits(keys, 2 * c + 1)[0]  # 32 bits
    return (hi << 32) | lo


def draw_seeds(num: int, generator: torch.Generator | None = None,
               device: str | torch.device | None = None) -> torch.Tensor:
    """``num`` int64 seeds in [0, 2**62) from ``generator`` (drawn on its device), on ``device``."""
    dev = generator.device if generator is not None else torch.device("cpu")
    s = torch.randint(0, 2 ** 62, (num,), generator=generator, device=dev, dtype=torch.int64)
    return s if device is None else s.to(device)
