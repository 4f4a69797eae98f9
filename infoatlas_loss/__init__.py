"""infoatlas-loss: zero-shot mutual information from a frozen pretrained hypernetwork.

Estimates are in nats.  ``SlicedMILoss()(x, y)`` returns MI; use ``-SlicedMILoss()(x, y)``
to maximise it.
"""
from .checks import MIN_SAMPLES
from .conditional import CMIResult, CMITestResult, conditional_mi, conditional_mi_test
from .config import InfoAtlasConfig
from .functional import MIResult, estimate, estimate_mi, sliced_mi
from .independence import MITestResult, mi_test
from .loss import SlicedMILoss
from .matrix import MIMatrix, mi_matrix
from .model import InfoAtlas
from .plotting import plot_mi_matrix
from .pretrained import REGISTRY, load_pretrained, load_weights, save_weights
from .softrank import normal_scores, soft_rank
from .uncertainty import MIInterval, mi_interval

__version__ = "0.1.0"


def __getattr__(name: str):
    # the regularisers live in infoatlas_loss.integrations (the repository's integrations/
    # folder, mapped at install time); imported on first use so that the core, e.g.
    # ``python -m infoatlas_loss.train`` from a plain checkout, needs no install
    if name in ("InfoMax", "InfoMin"):
        from .integrations import representation
        return getattr(representation, name)
    raise AttributeError(f"module 'infoatlas_loss' has no attribute {name!r}")


__all__ = [
    "CMIResult", "CMITestResult", "InfoAtlas", "InfoAtlasConfig", "InfoMax", "InfoMin", "MIInterval",
    "MIMatrix", "MIN_SAMPLES", "MIResult", "MITestResult", "REGISTRY", "SlicedMILoss",
    "conditional_mi", "conditional_mi_test", "estimate", "estimate_mi", "load_pretrained",
    "load_weights", "mi_interval", "mi_matrix", "mi_test", "normal_scores", "plot_mi_matrix",
    "save_weights", "sliced_mi", "soft_rank", "__version__",
]
