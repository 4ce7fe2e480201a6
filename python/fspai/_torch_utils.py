"""Small helpers shared by the PyTorch layer (masks, PaI, training): wrappers, devices, seeds.

Nothing here is public API; import it from :mod:`fspai.masks`, :mod:`fspai.pai` or
:mod:`fspai.train` instead. Distributed helpers live in :mod:`fspai.distributed`.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    "unwrap", "seed_everything", "get_rng_state", "set_rng_state", "model_device",
    "cache_dir", "resolve_device",
]


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel wrappers (or ``model`` itself)."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def resolve_device(device: Any) -> torch.device:
    """``device`` (a ``torch.device``, a string such as ``"cpu"``/``"cuda:1"``, or None for the
    CPU) as a ``torch.device`` this process can use; ``ValueError`` with the reason otherwise
    (e.g. ``"cuda"`` on a CPU-only PyTorch build)."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, bool) or not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"unknown device {device!r} ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this PyTorch build has no CUDA support" if torch.version.cuda is None
                   else "no CUDA GPU is visible")
            raise ValueError(f"device {str(device)!r} requested but {why}; use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA "
                             "device(s) visible")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} requested but MPS is not available")
    return dev


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> Dict[str, Any]:
    """Global RNG states in a form ``torch.load(weights_only=True)`` accepts (tensors, ints, floats)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [str(kind), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos),
                  int(has_gauss), float(cached)],
        "python": _python_state_to_list(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(_python_state_from_list(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_list(st):
    version, internal, gauss = st
    return [int(version), [int(v) for v in internal], gauss]


def _python_state_from_list(st):
    version, internal, gauss = st
    return (version, tuple(internal), gauss)


def cache_dir() -> Path:
    """fspai's data/cache folder: ``$FSPAI_DATA`` if set, else ``~/.cache/fspai``."""
    env = os.environ.get("FSPAI_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fspai"
