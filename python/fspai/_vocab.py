"""Names and value rules shared by every layer of fspai (no torch, no numpy needed).

This module is the single owner of:

* :data:`METHODS` -- the pruning-at-initialization methods of :func:`fspai.pai.prune`;
* :data:`DATA_METHODS` -- the methods that need training batches (SNIP, GraSP, iterSNIP);
  SynFlow is data-free (it only needs the input shape);
* :data:`SCOPES` -- ``"global"`` (one threshold over all layers) or ``"layer"``;
* :func:`check_density` -- the one rule for a ``density`` argument (fraction of weights kept).

The CLI, the experiment configuration, the sampler and the pruning functions all import these,
so a method added here is known everywhere at once.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["METHODS", "DATA_METHODS", "ITERATIVE_METHODS", "SCOPES", "check_density",
           "check_method", "check_scope"]

#: Pruning-at-initialization methods (see :mod:`fspai.pai`).
METHODS = ("random", "erk", "magnitude", "snip", "grasp", "synflow", "itersnip")
#: Methods whose scores need batches of training data.
DATA_METHODS = frozenset({"snip", "grasp", "itersnip"})
#: Methods that prune in rounds (exponential schedule).
ITERATIVE_METHODS = frozenset({"synflow", "itersnip"})
#: Where the keep-budget applies.
SCOPES = ("global", "layer")


def check_density(density: Any, name: str = "density") -> float:
    """``density`` as a float in (0, 1], or ``TypeError``/``ValueError`` naming ``name``.

    Any real number is accepted (``int``, ``float``, numpy scalars such as ``np.float32(0.1)``);
    ``bool`` is rejected (``True`` is not a density), and so are NaN, infinities, 0 and values
    above 1. ``density`` is the fraction of weights *kept* everywhere in fspai.
    """
    if isinstance(density, bool) or type(density).__name__ == "bool_" or \
            not isinstance(density, numbers.Real):
        raise TypeError(f"{name} (fraction of weights kept) must be a real number in (0, 1], "
                        f"got {type(density).__name__} {density!r}")
    value = float(density)
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise ValueError(f"{name} (fraction of weights kept) must be in (0, 1], got {density!r}")
    return value


def check_method(method: Any) -> str:
    """A valid PaI method name (``ValueError`` listing :data:`METHODS` otherwise)."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown PaI method {method!r}; valid methods are {list(METHODS)}")
    return method


def check_scope(scope: Any) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {list(SCOPES)}, got {scope!r}")
    return scope
