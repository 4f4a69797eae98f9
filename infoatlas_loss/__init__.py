"""infoatlas-loss: zero-shot mutual information from a frozen pretrained hypernetwork.

Estimates are in nats.  ``SlicedMILoss()(x, y)`` returns MI; use ``-SlicedMILoss()(x, y)``
to maximise it.
"""
from .checks import MIN_SAMPLES
from .config import InfoAtlasConfig
from .functional import MIResult, estimate, estimate_mi, sliced_mi
from .loss import SlicedMILoss
from .model import InfoAtlas
from .pretrained import REGISTRY, load_pretrained, load_weights, save_weights
from .softrank import normal_scores, soft_rank

# the regularisers import the loss above; shipped as infoatlas_loss.integrations
from .integrations.representation import InfoMax, InfoMin  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "InfoAtlas", "InfoAtlasConfig", "InfoMax", "InfoMin", "MIN_SAMPLES", "MIResult", "REGISTRY", "SlicedMILoss",
    "estimate", "estimate_mi", "load_pretrained", "load_weights", "normal_scores",
    "save_weights", "sliced_mi", "soft_rank", "__version__",
]
