"""Shipping and loading pretrained weights: safetensors + config in the header + sha256 registry.

No pickle anywhere: the file holds tensors only, the config and training facts travel as
JSON strings in the safetensors metadata.
"""
from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import InfoAtlasConfig
from .model import InfoAtlas

# name -> (file inside pretrained/, sha256 of that file)
REGISTRY: dict[str, tuple[str, str]] = {
    "infoatlas-base": ("infoatlas-base.safetensors",
                       "efed1a125698ace8f2fd06ef3c772bc5e8f271abf21ce191856eb21f681e8b6b"),
}

_CACHE: dict[tuple[str, torch.device], InfoAtlas] = {}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_path(filename: str) -> Path:
    """Where a shipped file lies: the installed ``infoatlas_loss.weights`` package (mapped
    to the repository's ``pretrained/`` folder), else the source tree."""
    try:
        p = Path(str(resources.files("infoatlas_loss.weights") / filename))
        if p.is_file():
            return p
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "pretrained" / filename


def save_weights(model: InfoAtlas, path: str | Path, info: dict | None = None) -> str:
    """Write ``model``'s weights with its config (and ``info``) in the header; returns sha256."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps(model.config.to_dict()), "info": json.dumps(info or {})}
    save_file(state, str(path), metadata=meta)
    return sha256_file(path)


def read_header(path: str | Path) -> tuple[InfoAtlasConfig, dict]:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "config" not in meta:
        raise ValueError(f"{path} has no InfoAtlas config in its safetensors header")
    return InfoAtlasConfig.from_dict(json.loads(meta["config"])), json.loads(meta.get("info", "{}"))


def load_weights(path: str | Path, *, sha256: str | None = None,
                 map_location: str | torch.device = "cpu") -> InfoAtlas:
    """Build the model from the file's config, load strictly, freeze, and return it in eval mode.

    Raises:
        ValueError: if ``sha256`` is given and the file's digest differs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if sha256 is not None:
        got = sha256_file(path)
        if got != sha256:
            raise ValueError(f"sha256 mismatch for {path}: expected {sha256}, got {got}; "
                             "the file is corrupt or not the registered release")
    config, _ = read_header(path)
    model = InfoAtlas(config)
    state = {}
    with safe_open(str(path), framework="pt", device=str(map_location)) as f:
        for k in f.keys():
            state[k] = f.get_tensor(k)
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)


def canonical_device(device: str | torch.device) -> torch.device:
    """One name per device: accelerators get their index ("cuda" -> "cuda:<current>"),
    every CPU spelling is ``torch.device("cpu")``."""
    device = torch.device(device)
    if device.type == "cpu":
        return torch.device("cpu")  # "cpu:0" too
    if device.index is None:
        mod = getattr(torch, device.type, None)
        if mod is not None and hasattr(mod, "current_device") and mod.is_available():
            device = torch.device(device.type, mod.current_device())
    return device


def load_pretrained(name: str = "infoatlas-base", *, device: str | torch.device = "cpu"
                    ) -> InfoAtlas:
    """The registered, sha256-checked, frozen model ``name`` (cached per name and device:
    ``"cuda"``, ``"cuda:0"`` and ``torch.device("cuda", 0)`` share one entry)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown pretrained model {name!r}; registered: {sorted(REGISTRY)}")
    device = canonical_device(device)
    key = (name, device)
    if key not in _CACHE:
        filename, digest = REGISTRY[name]
        _CACHE[key] = load_weights(weights_path(filename), sha256=digest, map_location=device)
    return _CACHE[key]

