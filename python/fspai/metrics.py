"""Spectral metrics of pruning masks (SPEC.md §2–§7).

Every function converts its inputs once (:func:`fspai._convert.to_layer`), runs one batched
core call (:func:`fspai._core.layer_spectra`) and derives the metric from the singular values.
Conventions: ``"neurips23"`` (default) and ``"iclr23"`` (:mod:`fspai.conventions`).

Notation (one layer, SPEC §1): ``B = mask.reshape(out, -1)``; isolated rows/columns removed for
degree averages: ``n_in, n_out`` non-isolated inputs/outputs, ``E = nnz(B)``,
``d_in = E / n_in``, ``d_out = E / n_out``; ``mu0 = σ1(B)``, ``mu_hat = σ2(B)``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Sequence

import numpy as np

from ._convert import LayerCSR, to_layer, to_layers
from ._core_loader import _core
from .conventions import Convention, get_convention

NAN = math.nan
DEFAULT_TOL = 1e-5


def _threads(threads: Optional[int]) -> int:
    if threads is None:
        return 0
    if not isinstance(threads, (int, np.integer)) or threads < 0:
        raise ValueError(f"threads must be a non-negative int (0 = all cores), got {threads!r}")
    return int(threads)


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return int(k)


# ----------------------------------------------------------------------------- result types
@dataclasses.dataclass(frozen=True)
class SolveInfo:
    """Solver statistics: ``steps`` = applications of the fused Gram operator (Lanczos steps),
    ``components`` = connected components with an edge, ``method`` = "lanczos", "dense",
    "mixed" or "empty"."""

    steps: int
    restarts: int
    components: int
    lanczos_components: int
    dense_components: int
    max_residual: float
    method: str

    @classmethod
    def from_dict(cls, d: dict) -> "SolveInfo":
        if d["components"] == 0:
            method = "empty"
        elif d["dense_components"] and d["lanczos_components"]:
            method = "mixed"
        elif d["lanczos_components"]:
            method = "lanczos"
        else:
            method = "dense"
        return cls(int(d["steps"]), int(d["restarts"]), int(d["components"]), int(d["lanczos_components"]),
                   int(d["dense_components"]), float(d["max_residual"]), method)


class _Result:
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RamanujanGap(_Result):
    """Ramanujan gaps of a layer's bipartite graph (SPEC §3).

    ``delta_r = sqrt(d_in-1) + sqrt(d_out-1) - mu_hat`` (bipartite Ramanujan gap),
    ``delta_s = 2 sqrt(mu0-1) - mu_hat`` (the released code's d := mu0), and their normalised
    forms ``delta_*_norm = delta_* / bound``. When the convention's degree condition fails the
    gaps are NaN, ``valid`` is False and ``reason`` says why (mu0, mu_hat stay defined).
    """

    mu0: float
    mu_hat: float
    n_in: int
    n_out: int
    edges: int
    d_in: float
    d_out: float
    delta_r: float
    delta_r_norm: float
    delta_s: float
    delta_s_norm: float
    valid: bool
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class RegularSubgraph(_Result):
    """One d-left-regular subgraph (SPEC §5): the input columns of degree ``degree``.

    ``d_out = degree * n_in / n_out``; ``delta_r = sqrt(degree-1) + sqrt(d_out-1) - mu_hat``;
    ``factor`` is the neurips23 Cheeger-like factor (1 under iclr23); ``weighted_mu0`` /
    ``weighted_mu_hat`` are σ1, σ2 of the same columns of ``|W ⊙ M|`` (NaN without weights).
    """

    degree: int
    columns: np.ndarray
    n_in: int
    n_out: int
    d_out: float
    mu0: float
    mu_hat: float
    delta_r: float
    valid: bool
    factor: float
    weighted_mu0: float = NAN
    weighted_mu_hat: float = NAN

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["columns"] = self.columns.tolist()
        return d


@dataclasses.dataclass(frozen=True)
class ImdbResult(_Result):
    """Iterative mean difference of bound over the regular subgraphs (SPEC §5).

    ``imdb`` = mean over valid subgraphs of ``factor * delta_r``; ``imdb_norm`` = mean of
    ``delta_r / (sqrt(d-1) + sqrt(d_out-1))``; ``weighted_imdb`` = mean of
    ``factor * (weighted_mu0 - weighted_mu_hat)`` (neurips23; NaN without weights or under
    iclr23); ``count`` = number of valid subgraphs. With no valid subgraph: NaN (iclr23) or 0
    (neurips23).
    """

    imdb: float
    imdb_norm: float
    weighted_imdb: float
    count: int
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Coordinate(_Result):
    """The full-spectrum coordinate of a layer (SPEC §7, neurips23):
    ``(delta_r, weighted_gap, imdb, weighted_imdb)``, undefined components set to 0."""

    delta_r: float
    weighted_gap: float
    imdb: float
    weighted_imdb: float

    AXES = ("delta_r", "weighted_gap", "imdb", "weighted_imdb")

    def as_array(self) -> np.ndarray:
        return np.array([self.delta_r, self.weighted_gap, self.imdb, self.weighted_imdb], dtype=np.float64)

    def norm(self, axis_weights: Optional[Sequence[float]] = None) -> float:
        """L2 norm from the origin, optionally with per-axis weights ``||w ⊙ c||``."""
        v = self.as_array()
        if axis_weights is not None:
            v = v * _axis_weights(axis_weights)
        return float(np.linalg.norm(v))


def _axis_weights(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (4,) or not np.isfinite(w).all():
        raise ValueError(f"axis_weights must be 4 finite numbers, got {w!r}")
    return w


# ----------------------------------------------------------------------------- core call
def _spectra(layers: Sequence[LayerCSR], *, k: int = 2, subgraphs: bool, weighted: bool,
             convention: Convention, tol: float = DEFAULT_TOL, seed: int = 0,
             threads: Optional[int] = None) -> list:
    return _core.layer_spectra([ly.core_tuple(weighted) for ly in layers], k=k, tol=tol, seed=seed,
                               threads=_threads(threads), subgraphs=subgraphs,
                               min_nodes=convention.min_nodes)


def _degrees_summary(row_deg: np.ndarray, col_deg: np.ndarray):
    n_out = int(np.count_nonzero(row_deg))
    n_in = int(np.count_nonzero(col_deg))
    edges = int(row_deg.sum())
    d_in = edges / n_in if n_in else NAN
    d_out = edges / n_out if n_out else NAN
    return n_in, n_out, edges, d_in, d_out


def _gap(layer: LayerCSR, sv: np.ndarray, conv: Convention) -> RamanujanGap:
    n_in, n_out, edges, d_in, d_out = _degrees_summary(layer.row_degrees(), layer.col_degrees())
    mu0, mu_hat = float(sv[0]), float(sv[1])
    if edges == 0:
        return RamanujanGap(NAN, NAN, 0, 0, 0, NAN, NAN, NAN, NAN, NAN, NAN, False,
                            "empty layer: no edges")
    ub_r = math.sqrt(d_in - 1) + math.sqrt(d_out - 1)
    delta_r = ub_r - mu_hat
    delta_r_norm = delta_r / ub_r if ub_r > 0 else NAN
    ub_s = 2.0 * math.sqrt(mu0 - 1) if mu0 >= 1 else NAN
    delta_s = ub_s - mu_hat
    delta_s_norm = delta_s / ub_s if ub_s and ub_s > 0 else NAN
    valid = conv.full_valid(d_in, d_out)
    reason = ""
    if not valid:
        reason = (f"degree condition of {conv.name} ({conv.full_rule()}) fails: "
                  f"d_in={d_in:.4g}, d_out={d_out:.4g}")
        delta_r = delta_r_norm = delta_s = delta_s_norm = NAN
    return RamanujanGap(mu0, mu_hat, n_in, n_out, edges, d_in, d_out, delta_r, delta_r_norm, delta_s,
                        delta_s_norm, valid, reason)


def _weighted_gap(layer: LayerCSR, wsv: Optional[np.ndarray], conv: Convention) -> tuple:
    """(value, reason); value NaN when undefined. Validity on the nonzero pattern of |W ⊙ M|."""
    if wsv is None:
        return NAN, "no weights given"
    rdeg, cdeg = layer.weighted_degrees()
    n_in, n_out, edges, d_in, d_out = _degrees_summary(rdeg, cdeg)
    if edges == 0:
        return NAN, "empty weighted graph: no nonzero |W ⊙ M|"
    if not conv.full_valid(d_in, d_out):
        return NAN, (f"degree condition of {conv.name} ({conv.full_rule()}) fails on |W ⊙ M|: "
                     f"d_in={d_in:.4g}, d_out={d_out:.4g}")
    return float(wsv[0] - wsv[1]), ""


def _subgraphs(spec: dict, conv: Convention) -> list:
    out = []
    wsv = spec["sub_wsv"]
    for g in range(len(spec["sub_degree"])):
        d = int(spec["sub_degree"][g])
        n_in = int(spec["sub_n_in"][g])
        n_out = int(spec["sub_n_out"][g])
        d_out = d * n_in / n_out
        s1, s2 = float(spec["sub_sv"][g, 0]), float(spec["sub_sv"][g, 1])
        delta_r = math.sqrt(d - 1) + math.sqrt(d_out - 1) - s2
        out.append(RegularSubgraph(
            degree=d, columns=np.asarray(spec["sub_columns"][g]), n_in=n_in, n_out=n_out, d_out=d_out,
            mu0=s1, mu_hat=s2, delta_r=delta_r, valid=conv.sub_valid(d, d_out),
            factor=conv.sub_factor(n_in, n_out),
            weighted_mu0=float(wsv[g, 0]), weighted_mu_hat=float(wsv[g, 1])))
    return out


def _imdb(subs: list, conv: Convention, weighted: bool) -> ImdbResult:
    valid = [s for s in subs if s.valid]
    if not valid:
        v = conv.imdb_if_none
        w = v if (weighted and conv.name == "neurips23") else NAN
        return ImdbResult(v, v, w, 0, f"no valid regular subgraph under {conv.name}")
    imdb = float(np.mean([s.factor * s.delta_r for s in valid]))
    norm = float(np.mean([s.delta_r / (math.sqrt(s.degree - 1) + math.sqrt(s.d_out - 1)) for s in valid]))
    if weighted and conv.name == "neurips23":
        wimdb = float(np.mean([s.factor * (s.weighted_mu0 - s.weighted_mu_hat) for s in valid]))
        reason = ""
    else:
        wimdb = NAN
        reason = "weighted IMDB needs weights and the neurips23 convention"
    return ImdbResult(imdb, norm, wimdb, len(valid), reason)


def _coordinate(gap: RamanujanGap, wgap: float, imdb: ImdbResult) -> Coordinate:
    z = lambda x: 0.0 if (x is None or not math.isfinite(x)) else float(x)  # noqa: E731  (SPEC §7: undefined → 0)
    return Coordinate(z(gap.delta_r), z(wgap), z(imdb.imdb), z(imdb.weighted_imdb))


# ----------------------------------------------------------------------------- public API
def singular_values(mask: Any, weight: Any = None, k: int = 2, *, tol: float = DEFAULT_TOL, seed: int = 0,
                    threads: Optional[int] = None, return_info: bool = False):
    """Top-``k`` singular values of a layer's bi-adjacency, descending (float64 numpy array).

    ``mask``: (out, in[, k...]) 0/1 array/tensor or scipy.sparse matrix; flattened to
    ``B = mask.reshape(out, -1)``. With ``weight`` the matrix is ``|W ⊙ M|`` (SPEC §1).
    ``σ1 = mu0`` (spectral radius of the bipartite graph) and ``σ2 = mu_hat`` (SPEC §2).
    Lanczos on the Gram operator of the smaller side with full reorthogonalisation, connected
    components solved separately (exact repeated σ1 = σ2), exact dense path for tiny components.
    ``tol`` bounds each Ritz residual of the Gram operator relative to its own eigenvalue σᵢ²
    (ARPACK's rule); the eigenvalue error is about residual²/gap, so the default 1e-5 gives errors
    of 1e-15–1e-9 (≤ 1e-7 is the tested contract) against a dense float64 SVD. Values past the rank are 0. A non-converged solve raises
    ``RuntimeError``. With ``return_info=True`` returns ``(values, SolveInfo)``.
    """
    k = _check_k(k)
    layer = to_layer(mask, weight, name="mask")
    sv, info = _core.topk_singular_values(*layer.core_tuple(weighted=weight is not None), k=k, tol=tol, seed=seed,
                                          threads=_threads(threads))
    return (sv, SolveInfo.from_dict(info)) if return_info else sv


def batch_singular_values(masks: Sequence, weights: Optional[Sequence] = None, k: int = 2, *,
                          tol: float = DEFAULT_TOL, seed: int = 0, threads: Optional[int] = None) -> list:
    """Top-``k`` singular values of many layers in one parallel core call (list of arrays).

    With ``weights`` (aligned with ``masks``) each entry is the spectrum of ``|W ⊙ M|``.
    """
    k = _check_k(k)
    layers = to_layers(masks, weights)
    weighted = weights is not None
    res = _core.layer_spectra([ly.core_tuple(weighted) for ly in layers], k=k, tol=tol, seed=seed,
                              threads=_threads(threads), subgraphs=False, pattern=not weighted)
    return [r["wsv"] if weighted else r["sv"] for r in res]


def spectral_radius(mask: Any, weight: Any = None) -> float:
    """``mu0 = σ1(B)``: the spectral radius of the layer's bipartite graph (|W ⊙ M| if weighted)."""
    return float(singular_values(mask, weight, k=2)[0])


def ramanujan_gap(mask: Any, *, convention: str = "neurips23") -> RamanujanGap:
    """Ramanujan gaps of the 0/1 layer graph (SPEC §3); see :class:`RamanujanGap`."""
    conv = get_convention(convention)
    layer = to_layer(mask, name="mask")
    spec = _spectra([layer], subgraphs=False, weighted=False, convention=conv)[0]
    return _gap(layer, spec["sv"], conv)


def weighted_gap(mask: Any, weight: Any, *, convention: str = "neurips23") -> float:
    """Weighted spectral gap ``σ1(|W ⊙ M|) - σ2(|W ⊙ M|)`` (SPEC §4).

    NaN when the convention's degree condition fails on the nonzero pattern of ``|W ⊙ M|`` or
    the layer is empty. Scales linearly with a global rescale of ``weight``.
    """
    if weight is None:
        raise ValueError("weighted_gap needs a weight tensor (the weighted graph is |W ⊙ M|)")
    conv = get_convention(convention)
    layer = to_layer(mask, weight, name="mask")
    spec = _spectra([layer], subgraphs=False, weighted=True, convention=conv)[0]
    return _weighted_gap(layer, spec["wsv"], conv)[0]


def regular_decomposition(mask: Any, weight: Any = None, *, convention: str = "neurips23") -> list:
    """The regular-subgraph decomposition (SPEC §5) as a list of :class:`RegularSubgraph`,
    ascending by degree: input columns grouped by exact degree, groups of at least
    ``min_nodes`` (2 under neurips23, 3 under iclr23) members."""
    conv = get_convention(convention)
    layer = to_layer(mask, weight, name="mask")
    spec = _spectra([layer], subgraphs=True, weighted=weight is not None, convention=conv)[0]
    return _subgraphs(spec, conv)


def imdb(mask: Any, weight: Any = None, *, convention: str = "neurips23") -> ImdbResult:
    """IMDB and weighted IMDB of a layer (SPEC §5); see :class:`ImdbResult`."""
    conv = get_convention(convention)
    layer = to_layer(mask, weight, name="mask")
    spec = _spectra([layer], subgraphs=True, weighted=weight is not None, convention=conv)[0]
    return _imdb(_subgraphs(spec, conv), conv, weighted=weight is not None)


def _narc(layer: LayerCSR, gap: RamanujanGap, edge_count: str) -> tuple:
    if edge_count not in ("directed", "undirected"):
        raise ValueError(f"edge_count must be 'directed' (released code, 2E) or 'undirected' (E), got {edge_count!r}")
    if gap.edges == 0:
        return NAN, "empty layer: no edges"
    if not (gap.d_in >= 3 and gap.d_out >= 3):
        return NAN, f"iclr23 degree condition (d_in >= 3 and d_out >= 3) fails: d_in={gap.d_in:.4g}, d_out={gap.d_out:.4g}"
    e = 2 * gap.edges if edge_count == "directed" else gap.edges
    n_prod = gap.n_in * gap.n_out
    val = ((gap.mu_hat ** 2 / 4 + 1) * math.sqrt(n_prod) - abs(e - (gap.d_in / layer.n_rows) * n_prod)) \
        / (layer.n_cols * layer.n_rows)
    return float(val), ""


def narc(mask: Any, *, edge_count: str = "directed") -> float:
    """Normalised random coefficient (SPEC §6, iclr23)::

        NaRC = [(mu_hat²/4 + 1)·sqrt(n_in·n_out) − |2E − (d_in/N_out)·n_in·n_out|] / (N_in·N_out)

    ``edge_count="directed"`` (default) counts 2E as the released code; ``"undirected"`` uses E.
    NaN unless ``d_in >= 3 and d_out >= 3``. ``> 0``: structured; ``<= 0``: random-like.
    """
    layer = to_layer(mask, name="mask")
    conv = get_convention("iclr23")
    spec = _spectra([layer], subgraphs=False, weighted=False, convention=conv)[0]
    return _narc(layer, _gap(layer, spec["sv"], conv), edge_count)[0]


def coordinate(mask: Any, weight: Any) -> Coordinate:
    """The 4-axis full-spectrum coordinate of a layer (SPEC §7, neurips23)."""
    return coordinates([mask], [weight])[0]


def coordinates(masks: Sequence, weights: Sequence, *, convention: str = "neurips23",
                threads: Optional[int] = None) -> list:
    """Coordinates of many layers (e.g. every layer of a candidate mask) in one batched core call."""
    conv = get_convention(convention)
    if weights is None:
        raise ValueError("coordinates need weights (the weighted axes use |W ⊙ M|)")
    layers = to_layers(masks, weights)
    specs = _spectra(layers, subgraphs=True, weighted=True, convention=conv, threads=threads)
    out = []
    for layer, spec in zip(layers, specs):
        gap = _gap(layer, spec["sv"], conv)
        wgap = _weighted_gap(layer, spec["wsv"], conv)[0]
        out.append(_coordinate(gap, wgap, _imdb(_subgraphs(spec, conv), conv, weighted=True)))
    return out


def distance(a, b=None, *, axis_weights: Optional[Sequence[float]] = None) -> float:
    """L2 distance in coordinate space (SPEC §7, research notes §2.9).

    ``a``, ``b``: :class:`Coordinate` (one layer) or sequences of them (a network: the mean over
    layers of the per-layer distances). ``b=None`` is the origin, i.e. ``||a||`` — what the
    authors' sampler maximises. ``axis_weights`` optionally weights the 4 axes.
    """
    def as_list(x):
        if isinstance(x, Coordinate):
            return [x], True
        xs = list(x)
        if not all(isinstance(c, Coordinate) for c in xs):
            raise TypeError("distance expects Coordinate objects or sequences of them")
        return xs, False

    la, single = as_list(a)
    if b is None:
        lb = [Coordinate(0.0, 0.0, 0.0, 0.0)] * len(la)
    else:
        lb, single_b = as_list(b)
        if len(lb) != len(la):
            raise ValueError(f"coordinate lists differ in length: {len(la)} vs {len(lb)}")
    w = None if axis_weights is None else _axis_weights(axis_weights)
    if not la:
        raise ValueError("distance of an empty coordinate list is undefined")
    ds = []
    for ca, cb in zip(la, lb):
        v = ca.as_array() - cb.as_array()
        if w is not None:
            v = v * w
        ds.append(float(np.linalg.norm(v)))
    return ds[0] if single else float(np.mean(ds))
