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


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
