"""Validation of the scalar options of the public API, in Python, before the compiled core.

The core's bindings take C++ ``int`` / ``uint64`` / ``double`` arguments; a value outside their
range would otherwise surface as a pybind11 signature dump or a huge allocation. Every public
function checks its options here and raises ``TypeError`` (wrong type) or ``ValueError`` (out of
range) naming the argument and the allowed range.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Optional

INT32_MAX = 2**31 - 1
UINT64_LIMIT = 2**64
MAX_THREADS = 1024  # OpenMP would try to start this many threads; more is never useful


def check_int(value: Any, arg: str, lo: int, hi: int) -> int:
    """``value`` as a Python int in ``lo..hi`` (bool is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{arg} must be an int, got {value!r} of type {type(value).__name__}")
    v = int(value)
    if not lo <= v <= hi:
        raise ValueError(f"{arg} must be in {lo}..{hi}, got {v}")
    return v


def check_k(k: Any, layers: Iterable = ()) -> int:
    """``k`` in ``1..min(n_rows, n_cols)`` of every layer (and below 2^31)."""
    k = check_int(k, "k", 1, INT32_MAX)
    for ly in layers:
        m = min(ly.n_rows, ly.n_cols)
        if k > m:
            raise ValueError(f"{ly.name}: k={k} exceeds min(n_rows, n_cols) = {m} of the layer of shape "
                             f"{ly.shape} (flattened {ly.n_rows}x{ly.n_cols}); k must be in 1..{m}")
    return k


def check_tol(tol: Any) -> float:
    """A finite relative tolerance in (0, 1)."""
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a float in (0, 1), got {tol!r} of type {type(tol).__name__}")
    t = float(tol)
    if not (math.isfinite(t) and 0.0 < t < 1.0):
        raise ValueError(f"tol must be a float in (0, 1), got {tol!r}")
    return t


def check_seed(seed: Any) -> int:
    """A seed in ``0..2^64-1``."""
    return check_int(seed, "seed", 0, UINT64_LIMIT - 1)


def check_threads(threads: Optional[Any]) -> int:
    """``None`` or 0 = the OpenMP default; otherwise ``1..MAX_THREADS``."""
    if threads is None:
        return 0
    return check_int(threads, "threads", 0, MAX_THREADS)


def check_bool(value: Any, arg: str) -> bool:
    if not isinstance(value, (bool,)) and type(value).__name__ != "bool_":
        raise TypeError(f"{arg} must be True or False, got {value!r}")
    return bool(value)


def check_name(name: Any, where: str = "layer name") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{where}s must be strings, got {name!r} of type {type(name).__name__}")
    return name
