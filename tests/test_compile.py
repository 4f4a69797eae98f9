"""The loss under ``torch.compile`` and on CUDA gives what eager CPU gives."""
import pytest
import torch

from infoatlas_loss import InfoAtlas, InfoAtlasConfig, SlicedMILoss, load_pretrained, sliced_mi

from .conftest import gen


def _inputs(device="cpu"):
    g = gen(0)
    x = torch.randn(64, 6, generator=g)  # 6 > max_dim 3 of "tiny": the sliced path
    y = x[:, :2] + torch.randn(64, 2, generator=g)
    return x.to(device), y.to(device)


def _value_and_grads(f, x, y):
    x, y = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    out = f(x, y)
    out.backward()
    return out.detach(), x.grad, y.grad


def _compiler_works() -> str | None:
    """None if inductor can build a kernel on this machine, else why not."""
    try:
        torch.compile(lambda t: t.sin() + 1.0)(torch.ones(3))
    except Exception as e:  # no C++ compiler, unsupported platform, ...
        return f"torch.compile cannot build kernels here: {type(e).__name__}: {e}"[:300]
    return None


@pytest.mark.slow  # inductor compiles forward and backward graphs: minutes on 2 CPU cores
def test_compile_parity(tiny):
    reason = _compiler_works()
    if reason:
        pytest.skip(reason)
    torch._dynamo.reset()
    loss = SlicedMILoss(tiny, num_slices=3)

    def f(x, y):
        loss.generator = gen(1)  # the same draws in both runs
        return loss(x, y)

    ref = _value_and_grads(f, *_inputs())
    got = _value_and_grads(torch.compile(f), *_inputs())
    assert ref[0].item() > 0.05  # dependent data: a real value to compare, not ~0
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_cuda_parity(tiny):
    def f(x, y):
        return sliced_mi(x, y, model=model, num_slices=3, generator=gen(1), reduction="none")

    model = tiny
    ref = _value_and_grads(lambda x, y: f(x, y).sum(), *_inputs())
    model = InfoAtlas(tiny.config).to("cuda").eval().requires_grad_(False)
    model.load_state_dict(tiny.state_dict())
    got = _value_and_grads(lambda x, y: f(x, y).sum(), *_inputs("cuda"))
    assert got[0].device.type == "cuda"
    for a, b in zip(got, ref):
        torch.testing.assert_close(a.cpu(), b, atol=1e-4, rtol=1e-4)


@cuda
def test_cuda_shipped_weights_and_cache():
    m = load_pretrained(device="cuda")
    assert m is load_pretrained(device="cuda:0" if torch.cuda.current_device() == 0 else "cuda")
    assert m is load_pretrained(device=torch.device("cuda", torch.cuda.current_device()))
    assert next(m.parameters()).device.type == "cuda"
    x, y = _inputs()
    a = sliced_mi(x, y, model=load_pretrained(), num_slices=8, generator=gen(2))
    b = sliced_mi(x.cuda(), y.cuda(), num_slices=8, generator=gen(2))  # default model, on x's device
    torch.testing.assert_close(b.cpu(), a, atol=1e-4, rtol=1e-4)
