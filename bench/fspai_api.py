"""Thin adapter around the public fspai API, so the suites and ``ratios.py`` call it one way.

Inputs are passed the way a user with big layers would: the mask as a scipy CSR (bool) array and,
in weighted mode, the masked weight ``W ⊙ M`` as a CSR float32 array of the same pattern (fspai
takes |W ⊙ M|). All conversion fspai does is inside the timed call.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

_REPO = Path(__file__).resolve().parents[1]


def load_fspai():
    """Import fspai (installed, or from ``python/`` of this checkout). Returns (module, None) or
    (None, reason)."""
    try:
        return importlib.import_module("fspai"), None
    except Exception as exc:  # noqa: BLE001 -- report any import failure as "unavailable"
        first = exc
    src = str(_REPO / "python")
    if src not in sys.path:
        sys.path.insert(0, src)
        for name in [m for m in sys.modules if m == "fspai" or m.startswith("fspai.")]:
            del sys.modules[name]
        try:
            return importlib.import_module("fspai"), None
        except Exception as exc:  # noqa: BLE001
            return None, f"{type(exc).__name__}: {exc}"
    return None, f"{type(first).__name__}: {first}"


def has_batch(fspai) -> bool:
    return hasattr(fspai, "batch_singular_values")


def top2(fspai, mask, weight=None, *, info: bool = False, tol: Optional[float] = None,
         threads: Optional[int] = None):
    """fspai.singular_values(mask, weight, k=2) -> values (and info when ``info``)."""
    kw = {} if tol is None else {"tol": tol}
    if threads is not None:
        kw["threads"] = threads
    if info:
        vals, inf = fspai.singular_values(mask, weight=weight, k=2, return_info=True, **kw)
        return np.asarray(vals, dtype=np.float64), inf
    return np.asarray(fspai.singular_values(mask, weight=weight, k=2, **kw), dtype=np.float64)


def batch_top2(fspai, masks: Sequence, weights: Optional[Sequence] = None) -> List[np.ndarray]:
    """All layers in one call (``fspai.batch_singular_values``); a Python loop over
    ``singular_values`` if the batch API is missing (then ``has_batch`` is False and the report
    says so)."""
    if has_batch(fspai):
        out = fspai.batch_singular_values(
            list(masks), weights=None if weights is None else list(weights), k=2)
        return [np.asarray(v, dtype=np.float64) for v in out]
    ws = [None] * len(masks) if weights is None else list(weights)
    return [np.asarray(fspai.singular_values(m, weight=w, k=2), dtype=np.float64)
            for m, w in zip(masks, ws)]


def per_layer_top2(fspai, masks: Sequence, threads: Optional[int] = None,
                   weights: Optional[Sequence] = None) -> List[np.ndarray]:
    """``fspai.singular_values(mask, weight, k=2)`` called once per layer, as a user loops over a
    model (``weights=None``: the pattern; else the σ of ``|W ⊙ M|`` that ``weighted_gap`` uses)."""
    kw = {} if threads is None else {"threads": threads}
    ws = [None] * len(masks) if weights is None else list(weights)
    return [np.asarray(fspai.singular_values(m, w, k=2, **kw), dtype=np.float64) for m, w in zip(masks, ws)]


def model_metrics(fspai, names: Sequence[str], masks: Sequence):
    """``fspai.model_metrics`` of a dict of 0/1 masks (every metric of every layer, one call)."""
    return fspai.model_metrics(dict(zip(names, masks)))


def coordinates(fspai, masks: Sequence, weights: Sequence):
    return fspai.coordinates(list(masks), list(weights), convention="neurips23")


def coord_array(c) -> np.ndarray:
    """(delta_r, weighted_gap, imdb, weighted_imdb) of an fspai Coordinate."""
    return np.array([float(c.delta_r), float(c.weighted_gap), float(c.imdb),
                     float(c.weighted_imdb)])


def info_get(info, key: str, default=None):
    """Field of a SolveInfo-like object or dict (``steps``, ``method``, ``components``...)."""
    if info is None:
        return default
    if isinstance(info, dict):
        return info.get(key, default)
    return getattr(info, key, default)


def build_info(fspai) -> dict:
    try:
        return dict(fspai.build_info())
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}


def require_core() -> bool:
    return os.environ.get("FSPAI_BENCH_REQUIRE_CORE", "") not in ("", "0")
