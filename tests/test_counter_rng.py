"""Counter-based draws: deterministic, per-dataset, device-free, and standard normal."""
import math

import torch

from infoatlas_loss.counter_rng import draw_seeds, normals, split_seeds

from .conftest import gen


def test_rows_depend_only_on_their_seed():
    seeds = draw_seeds(5, gen(0))
    z = normals(seeds, (7, 3))
    assert z.shape == (5, 7, 3) and z.dtype == torch.float64
    torch.testing.assert_close(normals(seeds[2:4], (7, 3)), z[2:4], atol=0, rtol=0)
    torch.testing.assert_close(normals(seeds.flip(0), (7, 3)), z.flip(0), atol=0, rtol=0)
    torch.testing.assert_close(normals(seeds, (7, 3)), z, atol=0, rtol=0)  # deterministic
    assert not torch.equal(normals(seeds, (7, 3), stream=1), z)  # streams differ
    assert not torch.equal(z[0], z[1])


def test_seeds_from_a_generator():
    a, b = draw_seeds(4, gen(3)), draw_seeds(4, gen(3))
    assert a.dtype == torch.int64 and torch.equal(a, b) and not torch.equal(a, draw_seeds(4, gen(4)))
    s = split_seeds(a[:1], 1000)
    assert s.shape == (1000,) and s.unique().numel() == 1000
    assert bool((s >= 0).all()) and bool((s < 2 ** 62).all())
    torch.testing.assert_close(split_seeds(a[:1], 10), s[:10], atol=0, rtol=0)  # prefix-stable
    assert not torch.equal(split_seeds(a[:1], 10, stream=1), s[:10])


def test_standard_normal():
    z = normals(draw_seeds(4, gen(1)), (50_000,)).flatten()
    n = z.numel()
    assert abs(z.mean().item()) < 4 / math.sqrt(n)
    assert abs(z.var().item() - 1) < 6 * math.sqrt(2 / n)
    # tails and symmetry: P(|z| > 2) = 0.0455, P(z > 0) = 0.5
    assert abs((z.abs() > 2).double().mean().item() - 0.0455) < 0.003
    assert abs((z > 0).double().mean().item() - 0.5) < 0.005
    # neighbouring draws are uncorrelated
    assert abs(torch.corrcoef(torch.stack([z[:-1], z[1:]]))[0, 1].item()) < 4 / math.sqrt(n)
    # consecutive seeds give unrelated rows
    rows = normals(torch.arange(8), (20_000,))
    c = torch.corrcoef(rows)
    assert (c - torch.eye(8, dtype=c.dtype)).abs().max().item() < 5 / math.sqrt(20_000)
