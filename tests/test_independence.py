"""``mi_test``: a permutation test of independence scored in one batched pass."""
import numpy as np
import pytest
import torch

from infoatlas_loss import InfoAtlas, InfoAtlasConfig, mi_test


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)  # the test's own model; library code takes generators
    return InfoAtlas(InfoAtlasConfig.preset("tiny")).eval().requires_grad_(False)


NULLS = {
    "gaussian": lambda r, n: (r.standard_normal((n, 2)), r.standard_normal((n, 2))),
    "heavy-tailed": lambda r, n: (r.standard_cauchy((n, 2)), r.standard_t(1.5, (n, 1))),
    "discrete": lambda r, n: (r.integers(0, 3, (n, 2)).astype(float), r.integers(0, 4, (n, 1)).astype(float)),
}


@pytest.mark.parametrize("kind", list(NULLS))
def test_size_holds_on_independent_data(tiny, kind):
    # 1 000 independent repetitions, alpha = 0.05 with 19 permutations (p-values in steps
    # of 1/20): the false-positive rate must be within [0.03, 0.07]
    r = np.random.default_rng(list(NULLS).index(kind))
    rejections = 0
    for rep in range(1000):
        x, y = NULLS[kind](r, 24)
        rejections += mi_test(x, y, num_permutations=19, model=tiny, seed=rep).p_value <= 0.05
    assert 0.03 <= rejections / 1000 <= 0.07, rejections


def test_detects_dependence_with_the_shipped_model():
    r = np.random.default_rng(1)
    x = r.standard_normal((200, 3))
    y = np.cos(2 * x[:, :2]) + 0.3 * r.standard_normal((200, 2))  # non-monotone
    res = mi_test(x, y, num_permutations=99)
    assert res.p_value == pytest.approx(0.01) and res.mi > res.null_mean + 5 * res.null_std


def test_result_fields_and_determinism(tiny):
    r = np.random.default_rng(2)
    x, y = r.standard_normal((50, 2)), r.standard_normal(50)
    a = mi_test(x, y, num_permutations=9, model=tiny, seed=3)
    b = mi_test(torch.as_tensor(x), torch.as_tensor(y), num_permutations=9, model=tiny, seed=3)
    assert a.num_permutations == 9 and a.n == 50 and a.p_value in [k / 10 for k in range(1, 11)]
    assert (a.mi, a.p_value, a.null_mean) == pytest.approx((b.mi, b.p_value, b.null_mean), abs=1e-6)


def test_wide_variables_share_slices(tiny):
    r = np.random.default_rng(4)
    x = r.standard_normal((60, 9))
    res = mi_test(x, x[:, ::-1] + 0.1 * r.standard_normal((60, 9)), num_permutations=19, model=tiny)
    assert res.p_value <= 0.1


def test_bad_input_is_named():
    x = np.zeros((30, 2))
    with pytest.raises(ValueError, match="num_permutations"):
        mi_test(x, x, num_permutations=0)
    with pytest.raises(ValueError, match="sample"):
        mi_test(x, x[:20])
