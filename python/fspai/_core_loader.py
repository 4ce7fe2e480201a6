"""Loads the compiled core and reports how it was built."""
from __future__ import annotations

from ._version import __version__

try:
    from . import _core
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "fspai's compiled core (fspai._core) is missing; reinstall with `pip install .` "
        f"from the source tree ({exc})"
    ) from exc


def build_info() -> dict:
    """How the compiled core was built.

    Returns a dict with ``version``, ``compiler``, ``openmp``, ``threads`` (OpenMP threads the
    kernels use by default), ``hardware_concurrency`` and ``cuda`` (whether CUDA kernels were
    compiled in; see the ``FSPAI_CUDA`` build switch).
    """
    info = dict(_core.build_info())
    return info
