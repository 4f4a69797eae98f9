import pytest
import torch

from infoatlas_loss import InfoAtlas, InfoAtlasConfig


@pytest.fixture
def tiny():
    """A random-weight tiny model (max_dim 3), frozen like a shipped one."""
    torch.manual_seed(0)
    return InfoAtlas(InfoAtlasConfig.preset("tiny")).eval().requires_grad_(False)


@pytest.fixture
def tiny64(tiny):
    return tiny.double()


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory) -> str:
    """A saved random-weight tiny model, for scripts that take ``--weights``."""
    from infoatlas_loss import save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(InfoAtlas(InfoAtlasConfig.preset("tiny")), path)
    return str(path)


@pytest.fixture
def one_thread():
    """Runs the test on one torch thread (as the benchmark scripts do) and restores the count."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
