"""fspai: graph-spectral analysis of pruning masks and spectral pruning at initialization.

The metrics (definitions: ``docs/metrics.md``) are computed by the compiled core ``fspai._core``
on CSR masks. Inputs may be numpy arrays, torch tensors (any device) or scipy.sparse matrices;
every input passes through one conversion point, :mod:`fspai._convert`.

Submodules that need PyTorch (``masks``, ``pai``, ``models``, ``data``, ``train``, ``sampler``,
``experiment``) are imported lazily, so ``import fspai`` works without torch.
"""
from __future__ import annotations

import importlib as _importlib
import sys as _sys

from ._version import __version__
from .metrics import (
    Coordinate,
    SolveInfo,
    batch_singular_values,
    ImdbResult,
    RamanujanGap,
    RegularSubgraph,
    coordinate,
    coordinates,
    distance,
    imdb,
    narc,
    ramanujan_gap,
    regular_decomposition,
    singular_values,
    spectral_radius,
    weighted_gap,
)
from .tables import LayerMetrics, MetricsTable, layer_metrics
from ._core_loader import build_info
from . import conventions, metrics, tables
from .conventions import Convention

_LAZY_SUBMODULES = (
    "masks", "pai", "models", "data", "train", "sampler", "experiment", "cli", "_reference",
    "selection", "scoring", "checkpoint", "distributed", "lottery", "weights", "history", "dst", "plots",
)

__all__ = [
    "__version__", "build_info",
    "singular_values", "batch_singular_values", "spectral_radius", "ramanujan_gap", "weighted_gap", "regular_decomposition",
    "imdb", "narc", "coordinate", "coordinates", "distance", "layer_metrics", "model_metrics",
    "RamanujanGap", "RegularSubgraph", "SolveInfo", "ImdbResult", "Coordinate", "LayerMetrics", "MetricsTable",
    "Convention", "conventions", "metrics", "tables",
]  # the lazy (torch-side) submodules are not in __all__: `from fspai import *` must not import torch


def model_metrics(model_or_masks, weights=None, **options) -> MetricsTable:
    """Metrics of every prunable layer, in one batched core call (:func:`fspai.tables.model_metrics`).

    ``model_or_masks``: a dict ``name -> mask or weight array``, or (torch installed) an
    ``nn.Module`` or a masked state dict, which :func:`fspai.masks.metrics_inputs` (the owner of the
    mask key layout) resolves to plain names first. ``options``: ``convention``, ``threads``,
    ``progress``.
    """
    if _needs_torch_layer(model_or_masks):
        from . import masks as _masks

        model_or_masks, weights = _masks.metrics_inputs(model_or_masks, weights)
    return tables.model_metrics(model_or_masks, weights, **options)


def _needs_torch_layer(obj) -> bool:
    # Only a torch object can be a module or a masked state dict, and then torch is imported already.
    torch = _sys.modules.get("torch")
    if torch is None:
        return False
    if isinstance(obj, torch.nn.Module):
        return True
    from . import masks as _masks

    return _masks.is_masked_state_dict(obj)


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        module = _importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'fspai' has no attribute {name!r}")
