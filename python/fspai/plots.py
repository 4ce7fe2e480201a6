"""Plots for fspai results (matplotlib, Agg canvas; no pyplot, no global backend change).

Every function writes one figure (PNG, PDF or SVG, from the file suffix; anything else raises
``ValueError``) atomically and returns its path.  Figures are built with
``matplotlib.figure.Figure`` + ``FigureCanvasAgg``, so importing this module never switches the
user's interactive backend and works headless.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from ._jsonio import atomic_write_bytes
from .metrics import Coordinate

__all__ = ["accuracy_vs_metric", "layer_profiles", "metric_evolution", "layer_metrics_plot",
           "AXES", "AXIS_LABELS", "FORMATS"]

#: coordinate axes (owned by :class:`fspai.Coordinate`) and their labels
AXES = tuple(Coordinate.AXES)
AXIS_LABELS = {
    "delta_r": "Ramanujan gap Δr",
    "weighted_gap": "weighted spectral gap",
    "imdb": "IMDB",
    "weighted_imdb": "weighted IMDB",
    "coordinate_norm": "coordinate L2 norm",
    "accuracy": "test accuracy",
}

PathLike = Union[str, Path]


def _figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.0, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width * ncols, height * nrows), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


#: File types the plot functions write (the format follows the suffix).
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def _save(fig, path: PathLike) -> Path:
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"plot file {path} must end in {', '.join(FORMATS)} (the format "
                         "follows the suffix)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return atomic_write_bytes(path, buf.getvalue())


def _colors(keys: Sequence[str]) -> Dict[str, Any]:
    from matplotlib import colormaps
    cmap = colormaps["tab10" if len(keys) <= 10 else "tab20"]
    return {k: cmap(i % cmap.N) for i, k in enumerate(keys)}


_MARKERS = "osD^v<>pPX*h"


def accuracy_vs_metric(rows: Sequence[Mapping[str, Any]], path: PathLike, *,
                       metric: str = "coordinate_norm", accuracy: str = "accuracy",
                       group: str = "method", marker_by: str = "density",
                       title: Optional[str] = None,
                       annotation: Optional[str] = None, fit: bool = False) -> Path:
    """Scatter of ``accuracy`` against ``metric``, coloured by ``group``, marker by ``marker_by``.

    ``fit=True`` adds the least-squares line ``accuracy ≈ a + b · metric`` over all points
    (its slope in the legend); put the correlation and its CI into ``annotation``."""
    fig, axes = _figure()
    ax = axes[0, 0]
    rows = [r for r in rows if _finite(r.get(metric)) and _finite(r.get(accuracy))]
    groups = sorted({str(r.get(group)) for r in rows})
    marks = sorted({r.get(marker_by) for r in rows}, key=lambda v: (str(type(v)), v))
    colors = _colors(groups)
    for g in groups:
        for mi, m in enumerate(marks):
            pts = [r for r in rows if str(r.get(group)) == g and r.get(marker_by) == m]
            if not pts:
                continue
            ax.scatter([float(r[metric]) for r in pts], [float(r[accuracy]) for r in pts],
                       color=colors[g], marker=_MARKERS[mi % len(_MARKERS)], s=36, alpha=0.85,
                       label=f"{g}" if mi == 0 else None, edgecolors="none")
    if len(marks) > 1:
        for mi, m in enumerate(marks):
            ax.scatter([], [], color="grey", marker=_MARKERS[mi % len(_MARKERS)],
                       label=f"{marker_by}={m}")
    if fit and len(rows) >= 2:
        x = np.array([float(r[metric]) for r in rows])
        y = np.array([float(r[accuracy]) for r in rows])
        if np.ptp(x) > 0:
            b, a = np.polyfit(x, y, 1)
            xs = np.linspace(x.min(), x.max(), 50)
            ax.plot(xs, a + b * xs, color="black", lw=1.2, ls="--",
                    label=f"least squares (slope {b:.3g})")
    ax.set_xlabel(AXIS_LABELS.get(metric, metric))
    ax.set_ylabel(AXIS_LABELS.get(accuracy, accuracy))
    ax.set_title(title or f"{AXIS_LABELS.get(accuracy, accuracy)} vs "
                          f"{AXIS_LABELS.get(metric, metric)}")
    if annotation:
        ax.text(0.02, 0.02, annotation, transform=ax.transAxes, fontsize=8, va="bottom",
                bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
    if rows:
        ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def layer_profiles(profiles: Mapping[str, Mapping[str, Sequence[float]]], path: PathLike, *,
                   layer_names: Optional[Sequence[str]] = None,
                   axes_to_plot: Sequence[str] = AXES + ("coordinate_norm",),
                   title: Optional[str] = None) -> Path:
    """Per-layer values of each coordinate axis, one line per method.

    ``profiles``: method -> {axis name -> per-layer values}.
    """
    n = len(axes_to_plot)
    ncols = 2 if n > 1 else 1
    nrows = int(math.ceil(n / ncols))
    fig, axes = _figure(nrows, ncols, width=5.5, height=3.6)
    methods = list(profiles)
    colors = _colors(methods)
    for k, axis in enumerate(axes_to_plot):
        ax = axes[k // ncols, k % ncols]
        for mi, m in enumerate(methods):
            vals = profiles[m].get(axis)
            if vals is None:
                continue
            ax.plot(np.arange(len(vals)), np.asarray(vals, dtype=float), marker=_MARKERS[mi % 12],
                    ms=3, lw=1.2, color=colors[m], label=m)
        ax.axhline(0.0, color="black", lw=0.6, alpha=0.5)
        ax.set_title(AXIS_LABELS.get(axis, axis), fontsize=10)
        ax.set_xlabel("layer")
        if layer_names is not None and len(layer_names) <= 24:
            ax.set_xticks(np.arange(len(layer_names)))
            ax.set_xticklabels([_short(s) for s in layer_names], rotation=60, fontsize=6,
                               ha="right")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7)
    for k in range(n, nrows * ncols):
        axes[k // ncols, k % ncols].set_visible(False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def metric_evolution(steps: Sequence[float], series: Mapping[str, Any],
                     path: PathLike, *, xlabel: str = "training step",
                     title: Optional[str] = None) -> Path:
    """Network-level metrics over time (e.g. under SET topology updates), one panel per series.

    ``series``: name -> values at ``steps``, or name -> ``(own_steps, values)``."""
    names = list(series)
    n = max(len(names), 1)
    ncols = 2 if n > 1 else 1
    nrows = int(math.ceil(n / ncols))
    fig, axes = _figure(nrows, ncols, width=5.0, height=3.2)
    x = np.asarray(steps, dtype=float)
    for k, name in enumerate(names):
        ax = axes[k // ncols, k % ncols]
        val = series[name]
        if isinstance(val, tuple) and len(val) == 2:
            xs, y = np.asarray(val[0], dtype=float), np.asarray(val[1], dtype=float)
        else:
            y = np.asarray(val, dtype=float)
            xs = x[:len(y)]
        ax.plot(xs, y, marker="o", ms=3, lw=1.2)
        ax.set_title(AXIS_LABELS.get(name, name), fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    for k in range(len(names), nrows * ncols):
        axes[k // ncols, k % ncols].set_visible(False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def layer_metrics_plot(records: Sequence[Mapping[str, Any]], path: PathLike, *,
                       title: Optional[str] = None) -> Path:
    """Per-layer bar chart of one network's metrics (``fspai metrics --plot``).

    ``records``: per-layer dicts with ``name`` and any of the coordinate axes / ``coordinate_norm``.
    """
    axes_to_plot = [a for a in AXES + ("coordinate_norm",) if any(a in r for r in records)]
    n = max(len(axes_to_plot), 1)
    fig, axes = _figure(n, 1, width=max(6.0, 0.35 * len(records)), height=2.4)
    names = [str(r.get("name", i)) for i, r in enumerate(records)]
    x = np.arange(len(records))
    for k, axis in enumerate(axes_to_plot):
        ax = axes[k, 0]
        vals = np.array([_float(r.get(axis)) for r in records])
        ax.bar(x, np.nan_to_num(vals), color=["tab:blue" if v >= 0 else "tab:red"
                                              for v in np.nan_to_num(vals)])
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_ylabel(AXIS_LABELS.get(axis, axis), fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        ax.set_xticks(x)
        ax.set_xticklabels([_short(s) for s in names] if k == n - 1 else [], rotation=70,
                           fontsize=6, ha="right")
    if title:
        axes[0, 0].set_title(title)
    return _save(fig, path)


def _short(name: str, keep: int = 22) -> str:
    name = name[:-len(".weight")] if name.endswith(".weight") else name
    return name if len(name) <= keep else "…" + name[-(keep - 1):]


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _finite(v) -> bool:
    return math.isfinite(_float(v))
