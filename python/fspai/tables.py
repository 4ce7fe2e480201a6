"""Metric tables: every metric of every prunable layer of a model, in one batched core call.

:func:`layer_metrics` gives one :class:`LayerMetrics`; :func:`model_metrics` a
:class:`MetricsTable` (export to CSV, strict JSON with ``null`` for undefined values, Markdown).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

from . import _jsonio
from ._convert import LayerCSR, _framework, to_layer
from .conventions import get_convention
from .metrics import (Coordinate, _coordinate, _gap, _imdb, _narc, _spectra, _subgraphs, _weighted_gap)


@dataclasses.dataclass(frozen=True)
class LayerMetrics:
    """Every metric of one layer (definitions in ``docs/metrics.md``). Undefined values are NaN
    with a ``reason``; inside ``coordinate`` they are 0.

    ``shape`` is the tensor's shape, ``n_rows``/``n_cols`` the flattened (out, in·k…) sizes,
    ``density`` = fraction of entries kept, ``n_in``/``n_out`` the non-isolated inputs/outputs,
    ``edges`` = nnz, ``d_in = edges / n_in``, ``d_out = edges / n_out``; ``narc`` follows the
    released ICLR 2023 code (2E). The weighted fields are NaN when no weight was given.
    """

    name: str
    shape: tuple
    convention: str
    density: float
    n_rows: int
    n_cols: int
    n_in: int
    n_out: int
    edges: int
    d_in: float
    d_out: float
    mu0: float
    mu_hat: float
    delta_r: float
    delta_r_norm: float
    delta_s: float
    delta_s_norm: float
    valid: bool
    weighted_mu0: float
    weighted_mu_hat: float
    weighted_gap: float
    imdb: float
    imdb_norm: float
    weighted_imdb: float
    imdb_count: int
    subgraphs: int
    narc: float
    coordinate: Coordinate
    coordinate_norm: float
    reason: str = ""

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "coordinate"}
        d["shape"] = "x".join(str(s) for s in self.shape)
        for axis in Coordinate.AXES:
            d[f"coord_{axis}"] = getattr(self.coordinate, axis)
        return d


def _record(layer: LayerCSR, spec: dict, conv, weighted: bool) -> LayerMetrics:
    gap = _gap(layer, spec["sv"], conv)
    wgap, wreason = _weighted_gap(layer, spec["wsv"], conv)
    subs = _subgraphs(layer, spec, conv, weighted)
    im = _imdb(subs, conv, weighted=weighted)
    narc_val, narc_reason = _narc(layer, gap, "directed")
    coord = _coordinate(gap, wgap, im)
    reasons = [r for r in (gap.reason, wreason if weighted else "", im.reason if (im.count == 0 or weighted) else "")
               if r]
    wsv = spec["wsv"]
    return LayerMetrics(
        name=layer.name, shape=tuple(layer.shape), convention=conv.name, density=layer.density,
        n_rows=layer.n_rows, n_cols=layer.n_cols, n_in=gap.n_in, n_out=gap.n_out, edges=gap.edges,
        d_in=gap.d_in, d_out=gap.d_out, mu0=gap.mu0, mu_hat=gap.mu_hat, delta_r=gap.delta_r,
        delta_r_norm=gap.delta_r_norm, delta_s=gap.delta_s, delta_s_norm=gap.delta_s_norm, valid=gap.valid,
        weighted_mu0=float(wsv[0]) if wsv is not None else math.nan,
        weighted_mu_hat=float(wsv[1]) if wsv is not None else math.nan,
        weighted_gap=wgap, imdb=im.imdb, imdb_norm=im.imdb_norm, weighted_imdb=im.weighted_imdb,
        imdb_count=im.count, subgraphs=len(subs), narc=narc_val, coordinate=coord,
        coordinate_norm=coord.norm(), reason="; ".join(reasons))


def layer_metrics(mask: Any, weight: Any = None, *, name: str = "layer", convention: Any = "neurips23",
                  threads: Optional[int] = None) -> LayerMetrics:
    """All metrics of one layer (see :class:`LayerMetrics`)."""
    conv = get_convention(convention)
    layer = to_layer(mask, weight, name=name)
    spec = _spectra([layer], subgraphs=True, weighted=weight is not None, convention=conv, threads=threads,
                    valid_subgraphs_only=True)[0]  # the record reads valid subgraphs only
    return _record(layer, spec, conv, weight is not None)


class MetricsTable:
    """Per-layer :class:`LayerMetrics` of a model, in model order.

    ``table["conv1.weight"]`` looks a layer up by name; ``to_dicts()``, ``to_csv(path)``,
    ``to_json(path)``, ``to_markdown()`` export it; ``mean_coordinate_norm()`` is the network-level
    coordinate distance from the origin (mean of per-layer norms).
    """

    COLUMNS = ("name", "shape", "density", "edges", "d_in", "d_out", "mu0", "mu_hat", "delta_r",
               "weighted_gap", "imdb", "weighted_imdb", "coordinate_norm", "valid")

    def __init__(self, records: Sequence[LayerMetrics]):
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[LayerMetrics]:
        return iter(self.records)

    def __getitem__(self, key):
        if isinstance(key, str):
            for r in self.records:
                if r.name == key:
                    return r
            raise KeyError(f"no layer named {key!r}; layers: {[r.name for r in self.records]}")
        return self.records[key]

    def names(self) -> list:
        return [r.name for r in self.records]

    def to_dicts(self) -> list:
        return [r.to_dict() for r in self.records]

    def coordinates(self) -> list:
        return [r.coordinate for r in self.records]

    def mean_coordinate_norm(self, axis_weights=None) -> float:
        if not self.records:
            return math.nan
        return float(np.mean([r.coordinate.norm(axis_weights) for r in self.records]))

    def summary(self) -> dict:
        """Layer means of the main metrics (NaN entries skipped) and the fraction of Ramanujan
        layers (``delta_r > 0``; undefined counts as not Ramanujan)."""
        out: dict = {"layers": len(self.records)}
        for key in ("delta_r", "delta_r_norm", "weighted_gap", "imdb", "imdb_norm", "weighted_imdb", "narc",
                    "coordinate_norm"):
            vals = np.array([getattr(r, key) for r in self.records], dtype=np.float64)
            out[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
        out["ramanujan_fraction"] = (float(np.mean([r.delta_r > 0 for r in self.records]))
                                     if self.records else math.nan)
        total = sum(r.n_rows * r.n_cols for r in self.records)
        out["density"] = sum(r.edges for r in self.records) / total if total else math.nan
        return out

    def to_csv(self, path) -> None:
        """Write one row per layer (atomically; NaN written as ``nan``)."""
        rows = self.to_dicts()
        fields = list(rows[0].keys()) if rows else [f.name for f in dataclasses.fields(LayerMetrics)]
        buf = io.StringIO(newline="")
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
        _jsonio.atomic_write_text(path, buf.getvalue())

    def to_json(self, path=None) -> str:
        """``{"layers": [...], "summary": {...}}`` as strict JSON (undefined values are ``null``;
        see each layer's ``reason``); written atomically to ``path`` when given."""
        text = _jsonio.dumps({"layers": self.to_dicts(), "summary": self.summary()})
        if path is not None:
            _jsonio.atomic_write_text(path, text + "\n")
        return text

    def to_markdown(self, columns: Sequence[str] = COLUMNS) -> str:
        def fmt(v):
            if isinstance(v, float):
                return "nan" if math.isnan(v) else f"{v:.4g}"
            return str(v)

        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for d in self.to_dicts():
            lines.append("| " + " | ".join(fmt(d[c]) for c in columns) + " |")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"MetricsTable({len(self.records)} layers)"


def _is_binary(x) -> bool:
    fw = _framework(x)
    if fw == "torch":
        import torch

        if x.dtype == torch.bool:
            return True
        if x.is_floating_point() or x.dtype in (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64):
            return bool(((x == 0) | (x == 1)).all())
        return False
    if fw == "scipy":  # stored values only (never densified); a weight's nonzero pattern is its mask
        data = getattr(x, "data", None)
        x = data.reshape(1, -1) if isinstance(data, np.ndarray) and data.dtype.kind in "biuf" else None
        if x is None:
            return False
    elif fw != "numpy":
        return False
    if x.dtype == np.bool_:
        return True
    if x.dtype.kind not in "iuf":
        return False
    flat = x.reshape(x.shape[0], -1) if x.ndim >= 2 else x.reshape(1, -1)
    step = max(1, (1 << 22) // max(flat.shape[1], 1))
    for lo in range(0, flat.shape[0], step):  # in row blocks: a weight usually fails in the first one
        blk = flat[lo:lo + step]
        if not ((blk == 0) | (blk == 1)).all():
            return False
    return True


def _check_keys(d: Mapping, what: str) -> None:
    for key in d:
        if not isinstance(key, str):
            raise TypeError(f"model_metrics: layer names must be strings; {what} has the key {key!r} "
                            f"of type {type(key).__name__}")


def _collect(model_or_masks: Any, weights: Optional[Mapping]) -> list:
    """Resolve a dict of arrays to [(name, mask, weight_or_None)] in dict order. (Torch models and
    masked state dicts are resolved by :func:`fspai.masks.metrics_inputs`, the owner of their key
    layout, before they reach this layer.)"""
    if not isinstance(model_or_masks, Mapping):
        raise TypeError("model_metrics expects a torch nn.Module, a state dict or a dict of masks/arrays, "
                        f"got {type(model_or_masks).__name__}")
    d = dict(model_or_masks)
    _check_keys(d, "the dict of masks")
    if weights is not None:
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights must be a dict name -> weight, got {type(weights).__name__}")
        _check_keys(weights, "weights")
    out = []
    for name, x in d.items():
        if getattr(x, "ndim", 0) < 2:
            continue  # biases, BatchNorm statistics, scalars
        if _is_binary(x):
            w = None if weights is None else weights.get(name)
            out.append((name, x, w))
        else:
            out.append((name, x != 0, weights.get(name, x) if weights is not None else x))
    if weights is not None:
        missing = [k for k in weights if k not in {n for n, _, _ in out}]
        if missing:
            raise KeyError(f"weights given for layers that have no mask: {missing}")
    return out


def model_metrics(model_or_masks: Any, weights: Optional[Mapping] = None, *, convention: Any = "neurips23",
                  threads: Optional[int] = None, progress: bool = False) -> MetricsTable:
    """Metrics of every prunable layer of a model, in one batched core call.

    ``model_or_masks``: a dict ``name -> mask or weight array`` (≥2-D entries only; 0/1 entries
    are masks, others weights whose nonzero pattern is the mask). The package-level
    :func:`fspai.model_metrics` also takes a torch ``nn.Module`` or a masked state dict (resolved by
    :func:`fspai.masks.metrics_inputs`). ``weights``
    optionally maps names to weights for the weighted metrics.
    """
    conv = get_convention(convention)
    items = _collect(model_or_masks, weights)
    layers = []
    it = items
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(items, desc="converting layers", leave=False)
    for name, m, w in it:
        layers.append(to_layer(m, w, name=name))
    weighted_flags = [ly.values is not None for ly in layers]
    recs = []
    if layers:
        if all(weighted_flags) or not any(weighted_flags):
            specs = _spectra(layers, subgraphs=True, weighted=any(weighted_flags), convention=conv, threads=threads,
                             valid_subgraphs_only=True)
        else:
            specs = _spectra(layers, subgraphs=True, weighted=True, convention=conv, threads=threads,
                             valid_subgraphs_only=True)
        recs = [_record(ly, sp_, conv, ly.values is not None) for ly, sp_ in zip(layers, specs)]
    return MetricsTable(recs)
