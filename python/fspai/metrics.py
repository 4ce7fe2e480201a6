"""Spectral metrics of pruning masks (definitions: ``docs/metrics.md``).

Every function validates its options (:mod:`fspai._validate`), converts its inputs once
(:func:`fspai._convert.to_layer`), runs one batched core call (``fspai._core.layer_spectra``)
and derives the metric from the singular values. The rules that differ between the papers'
codes come from a :class:`fspai.conventions.Convention` (``"neurips23"`` by default).

Notation (one layer): ``B = mask.reshape(out, -1)`` (rows = outputs, columns = inputs); isolated
rows/columns removed for degree averages: ``n_in, n_out`` non-isolated inputs/outputs,
``E = nnz(B)``, ``d_in = E / n_in``, ``d_out = E / n_out``; ``mu0 = σ1(B)``, ``mu_hat = σ2(B)``.
Undefined metrics are NaN with a ``reason``; inside a :class:`Coordinate` they are 0.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Sequence

import numpy as np

from ._convert import LayerCSR, to_layer, to_layers
from ._device import is_device_layer, spectra as _device_spectra
from ._core_loader import _core
from ._validate import check_bool, check_k, check_seed, check_threads, check_tol
from .conventions import ICLR23, Convention, get_convention

NAN = math.nan
DEFAULT_TOL = 1e-5


# ----------------------------------------------------------------------------- result types
@dataclasses.dataclass(frozen=True)
class SolveInfo:
    """Solver statistics: ``steps`` = applications of the fused Gram operator (Lanczos steps),
    ``components`` = connected components with an edge, ``method`` = "lanczos", "dense",
    "mixed" or "empty"; ``route`` (the step operator used) and ``error_bound`` (certified bound
    on the σ error) when the core reports them ("" / NaN otherwise)."""

    steps: int
    restarts: int
    components: int
    lanczos_components: int
    dense_components: int
    max_residual: float
    method: str
    route: str = ""
    error_bound: float = NAN

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
                   int(d["dense_components"]), float(d["max_residual"]), method, str(d.get("route", "") or ""),
                   float(d.get("error_bound", NAN)))


class _Result:
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RamanujanGap(_Result):
    """Ramanujan gaps of a layer's bipartite graph.

    ``delta_r = sqrt(d_in-1) + sqrt(d_out-1) - mu_hat`` (bipartite Ramanujan gap),
    ``delta_s = 2 sqrt(mu0-1) - mu_hat`` (the released code's d := mu0), and their normalised
    forms ``delta_*_norm = delta_* / bound``. When the convention's ``layer_rule`` fails the gaps
    are NaN, ``valid`` is False and ``reason`` says why (mu0, mu_hat stay defined).
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
    """One d-left-regular subgraph: the input columns of exact degree ``degree``.

    ``d_out = degree * n_in / n_out``; ``delta_r = sqrt(degree-1) + sqrt(d_out-1) - mu_hat``;
    ``valid``: the convention's ``subgraph_rule``; ``factor`` is the Cheeger-like factor
    ``max(n_in, n_out) / (n_in + n_out - 1)`` (1 when the convention has ``cheeger=False``);
    ``weighted_mu0`` / ``weighted_mu_hat`` are σ1, σ2 of the same columns of ``|W ⊙ M|`` (NaN
    without weights); ``weighted_valid``: the subgraph's weighted value is defined — under
    ``weighted_validity="released"`` the ``subgraph_rule`` holds on the nonzero pattern of those
    columns of ``|W ⊙ M|`` (``weighted_d_in = E_w / n_in_w``, ``weighted_d_out = E_w / n_out_w``),
    under ``"pattern"`` it equals ``valid`` (False without weights).
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
    weighted_valid: bool = False
    weighted_d_in: float = NAN
    weighted_d_out: float = NAN

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["columns"] = self.columns.tolist()
        return d


@dataclasses.dataclass(frozen=True)
class ImdbResult(_Result):
    """Iterative mean difference of bound (IMDB) over the regular subgraphs.

    ``imdb`` = mean over valid subgraphs of ``factor * delta_r``; ``imdb_norm`` = mean of
    ``delta_r / (sqrt(d-1) + sqrt(d_out-1))``; ``weighted_imdb`` = mean over the same subgraphs of
    ``factor * (weighted_mu0 - weighted_mu_hat)``; ``count`` = number of valid subgraphs. With
    no valid subgraph both are the convention's ``imdb_if_none`` (0 or NaN). ``weighted_imdb`` is
    NaN without weights, under a convention without a weighted IMDB, and — with
    ``weighted_validity="released"`` — when a valid subgraph fails its degree test on the nonzero
    pattern of ``|W ⊙ M|`` (the released code returns inf there; ``reason`` names the subgraph).
    """

    imdb: float
    imdb_norm: float
    weighted_imdb: float
    count: int
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Coordinate(_Result):
    """The full-spectrum coordinate of a layer: ``(delta_r, weighted_gap, imdb, weighted_imdb)``,
    undefined components set to 0 (as the released code maps inf to 0)."""

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
    try:
        w = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"axis_weights must be 4 finite numbers, got {w!r}") from None
    if w.shape != (4,) or not np.isfinite(w).all():
        raise ValueError(f"axis_weights must be 4 finite numbers, got {w!r}")
    return w


# ----------------------------------------------------------------------------- core call
def _spectra(layers: Sequence[LayerCSR], *, subgraphs: bool, weighted: bool, convention: Convention,
             tol: float = DEFAULT_TOL, seed: int = 0, threads: Optional[int] = None,
             valid_subgraphs_only: bool = False) -> list:
    """One batched core call: per layer ``sv``, ``wsv`` and (``subgraphs=True``) the degree groups.

    ``valid_subgraphs_only=True`` (for callers that read only the subgraphs passing the
    convention's ``subgraph_rule``: IMDB, coordinates, the per-layer tables) hands the rule to the
    core with ``solve_invalid_subgraphs=False``: a failing group is still reported (degree,
    n_in, n_out, columns) but not solved, its ``sub_sv`` / ``sub_wsv`` rows are NaN."""
    kw = {}
    if subgraphs and check_bool(valid_subgraphs_only, "valid_subgraphs_only"):
        kw = dict(subgraph_rule=convention.subgraph_rule.core_rule(), solve_invalid_subgraphs=False)
    return _device_spectra(layers, weighted, k=2, tol=check_tol(tol), seed=check_seed(seed),
                           threads=check_threads(threads), subgraphs=subgraphs, min_nodes=convention.min_nodes,
                           **kw)


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
    """(value, reason); value NaN when undefined. The degree test runs on the nonzero pattern of
    ``|W ⊙ M|`` (``weighted_validity="released"``) or on the 0/1 mask (``"pattern"``)."""
    if wsv is None:
        return NAN, "no weights given"
    released = conv.weighted_validity == "released"
    rdeg, cdeg = layer.weighted_degrees() if released else (layer.row_degrees(), layer.col_degrees())
    n_in, n_out, edges, d_in, d_out = _degrees_summary(rdeg, cdeg)
    where = "|W ⊙ M|" if released else "the mask"
    if edges == 0:
        return NAN, f"empty weighted graph: no edge in {where}"
    if not conv.full_valid(d_in, d_out):
        return NAN, (f"degree condition of {conv.name} ({conv.full_rule()}) fails on {where}: "
                     f"d_in={d_in:.4g}, d_out={d_out:.4g}")
    return float(wsv[0] - wsv[1]), ""


def _weighted_group_degrees(layer: LayerCSR, groups: list) -> list:
    """Per degree group (stored column indices): ``(E_w, n_in_w, n_out_w)`` of the nonzero pattern
    of ``|W ⊙ M|`` restricted to the group's columns (isolated nodes excluded)."""
    if is_device_layer(layer):
        return layer.weighted_group_degrees(groups)
    vals = layer.values
    n_rows, n_cols = layer.stored_shape
    nz = vals != 0
    group = np.full(n_cols, -1, dtype=np.int64)
    for g, cols in enumerate(groups):
        group[cols] = g
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(layer.indptr))[nz]
    g_of = group[layer.indices[nz]]
    keep = g_of >= 0
    rows, cols, g_of = rows[keep], layer.indices[nz][keep], g_of[keep]
    n_g = len(groups)
    e = np.bincount(g_of, minlength=n_g)
    n_in = np.bincount(group[np.unique(cols)], minlength=n_g)
    n_out = np.bincount(np.unique(g_of * n_rows + rows) // n_rows, minlength=n_g)
    return [(int(e[g]), int(n_in[g]), int(n_out[g])) for g in range(n_g)]


def _subgraphs(layer: LayerCSR, spec: dict, conv: Convention, weighted: bool) -> list:
    # Groups the core skipped (_spectra(valid_subgraphs_only=True)) fail conv.subgraph_rule, so
    # valid=False here; their NaN spectra give NaN mu0 / mu_hat / delta_r, which _imdb never reads.
    n_g = len(spec["sub_degree"])
    stored_cols = [np.asarray(c) for c in spec["sub_columns"]]
    wdeg = None
    if weighted and conv.weighted_validity == "released" and n_g and layer.zero_values:
        wdeg = _weighted_group_degrees(layer, stored_cols)
    # Python scalars once per layer (the same values as indexing the arrays group by group).
    degrees, n_ins, n_outs = (np.asarray(spec[k]).tolist() for k in ("sub_degree", "sub_n_in", "sub_n_out"))
    sv = np.asarray(spec["sub_sv"], dtype=np.float64).tolist()  # (groups, k)
    wsv = np.asarray(spec["sub_wsv"], dtype=np.float64).tolist()
    out = []
    for g in range(n_g):
        d = int(degrees[g])
        n_in = int(n_ins[g])
        n_out = int(n_outs[g])
        d_out = d * n_in / n_out
        s1, s2 = sv[g][0], sv[g][1]
        valid = conv.sub_valid(d, d_out)
        wd_in, wd_out = (float(d), d_out) if weighted else (NAN, NAN)
        if wdeg is not None:
            e_w, n_in_w, n_out_w = wdeg[g]
            wd_in = e_w / n_in_w if n_in_w else NAN
            wd_out = e_w / n_out_w if n_out_w else NAN
        if not weighted:
            w_valid = False
        elif conv.weighted_validity == "released":
            w_valid = conv.sub_valid(wd_in, wd_out)
        else:
            w_valid = valid
        out.append(RegularSubgraph(
            degree=d, columns=layer.original_columns(stored_cols[g]), n_in=n_in, n_out=n_out, d_out=d_out,
            mu0=s1, mu_hat=s2, delta_r=math.sqrt(d - 1) + math.sqrt(d_out - 1) - s2, valid=valid,
            factor=conv.sub_factor(n_in, n_out), weighted_mu0=wsv[g][0], weighted_mu_hat=wsv[g][1],
            weighted_valid=w_valid, weighted_d_in=wd_in, weighted_d_out=wd_out))
    return out


def _imdb(subs: list, conv: Convention, weighted: bool) -> ImdbResult:
    valid = [s for s in subs if s.valid]
    has_w = weighted and conv.weighted_imdb
    if not valid:
        v = conv.imdb_if_none
        return ImdbResult(v, v, v if has_w else NAN, 0, f"no valid regular subgraph under {conv.name}")
    imdb = float(np.mean([s.factor * s.delta_r for s in valid]))
    norm = float(np.mean([s.delta_r / (math.sqrt(s.degree - 1) + math.sqrt(s.d_out - 1)) for s in valid]))
    if not has_w:
        why = "no weights given" if not weighted else f"{conv.name} defines no weighted IMDB"
        return ImdbResult(imdb, norm, NAN, len(valid), f"weighted IMDB undefined: {why}")
    failed = [s for s in valid if not s.weighted_valid]
    if failed:
        s = failed[0]
        return ImdbResult(imdb, norm, NAN, len(valid), (
            f"weighted IMDB undefined ({conv.name}, weighted_validity='released'): the degree-{s.degree} subgraph "
            f"fails {conv.sub_rule()} on the nonzero pattern of |W ⊙ M| (exact zero weights): "
            f"d={s.weighted_d_in:.4g}, d_out={s.weighted_d_out:.4g}"))
    wimdb = float(np.mean([s.factor * (s.weighted_mu0 - s.weighted_mu_hat) for s in valid]))
    return ImdbResult(imdb, norm, wimdb, len(valid), "")


def _coordinate(gap: RamanujanGap, wgap: float, imdb: ImdbResult) -> Coordinate:
    def z(x):  # undefined (NaN; inf in the released code) -> 0
        return 0.0 if (x is None or not math.isfinite(x)) else float(x)

    return Coordinate(z(gap.delta_r), z(wgap), z(imdb.imdb), z(imdb.weighted_imdb))


def _need_weight(weight: Any, fn: str) -> None:
    if weight is None:
        raise ValueError(f"{fn} needs a weight: the weighted metrics use |W ⊙ M|. To take the 0/1 "
                         "pattern itself as the weights (|W| = M), pass weight=mask")


# ----------------------------------------------------------------------------- public API
def singular_values(mask: Any, weight: Any = None, k: Optional[int] = None, *, tol: float = DEFAULT_TOL, seed: int = 0,
                    threads: Optional[int] = None, return_info: bool = False):
    """Top-``k`` singular values of a layer's bi-adjacency, descending (float64 array of length k).

    ``mask``: (out, in[, k...]) 0/1 array/tensor or scipy.sparse matrix; flattened to
    ``B = mask.reshape(out, -1)``. With ``weight`` the matrix is ``|W ⊙ M|``.
    ``σ1 = mu0`` (spectral radius of the bipartite graph) and ``σ2 = mu_hat``.
    An explicit ``k`` must be in ``1..min(out, in·k…)``; ``k=None`` (default) means 2 on any
    layer (σ2 = 0 when a side has fewer than 2 nodes). Values past the rank are exactly 0.
    Lanczos on the Gram operator of the smaller side, connected components solved separately
    (exact repeated σ1 = σ2), exact dense path for tiny components.
    ``tol`` in (0, 1) is the relative Ritz-residual level at which a Lanczos run asks to be
    certified (a run may stop earlier, once its certified error bound already meets the contract;
    a smaller tol gives tighter values). Every returned σᵢ is certified within
    ``max(1e-7·σᵢ, 5e-8·σ1)`` of a dense float64 SVD (the accuracy contract, ``docs/metrics.md``). A solve that cannot be certified raises
    ``RuntimeError``. ``seed`` in 0..2^64-1; ``threads`` 0/None = OpenMP default, else 1..1024.
    With ``return_info=True`` returns ``(values, SolveInfo)``.
    """
    tol, seed, threads = check_tol(tol), check_seed(seed), check_threads(threads)
    return_info = check_bool(return_info, "return_info")
    layer = to_layer(mask, weight, name="mask")
    k = 2 if k is None else check_k(k, [layer])
    k_core = max(1, min(k, *layer.stored_shape))  # σ past the stored size are 0: never ask the core for them
    if is_device_layer(layer):  # CUDA build, device input: the batched GPU call
        r = _device_spectra([layer], weight is not None, k=k_core, tol=tol, seed=seed, threads=threads,
                            subgraphs=False, pattern=weight is None)[0]
        sv, info = (r["wsv"], r["winfo"]) if weight is not None else (r["sv"], r["info"])
    else:
        sv, info = _core.topk_singular_values(*layer.core_tuple(weighted=weight is not None), k=k_core, tol=tol,
                                              seed=seed, threads=threads)
    sv = _pad(sv, k)
    return (sv, SolveInfo.from_dict(info)) if return_info else sv


def _pad(sv: np.ndarray, k: int) -> np.ndarray:
    sv = np.asarray(sv, dtype=np.float64)
    if sv.size >= k:
        return sv[:k]
    out = np.zeros(k)
    out[:sv.size] = sv
    return out


def batch_singular_values(masks: Sequence, weights: Optional[Sequence] = None, k: Optional[int] = None, *,
                          tol: float = DEFAULT_TOL, seed: int = 0, threads: Optional[int] = None) -> list:
    """Top-``k`` singular values of many layers in one parallel core call (list of arrays).

    With ``weights`` (aligned with ``masks``) each entry is the spectrum of ``|W ⊙ M|``. An
    explicit ``k`` must be in ``1..min(shape)`` of every layer; ``k=None`` means 2 (padded with 0).
    """
    tol, seed, threads = check_tol(tol), check_seed(seed), check_threads(threads)
    layers = to_layers(masks, weights)
    k = 2 if k is None else check_k(k, layers)
    weighted = weights is not None
    if weighted and any(ly.values is None for ly in layers):
        bad = next(ly.name for ly in layers if ly.values is None)
        raise ValueError(f"{bad}: weights were given for some layers but not this one; pass a weight per layer "
                         "or weights=None")
    k_core = max([1] + [min(k, *ly.stored_shape) for ly in layers])
    res = _device_spectra(layers, weighted, k=k_core, tol=tol, seed=seed, threads=threads, subgraphs=False,
                          pattern=not weighted)
    return [_pad(r["wsv"] if weighted else r["sv"], k) for r in res]


def spectral_radius(mask: Any, weight: Any = None) -> float:
    """``mu0 = σ1(B)``: the spectral radius of the layer's bipartite graph (|W ⊙ M| if weighted)."""
    return float(singular_values(mask, weight)[0])


def ramanujan_gap(mask: Any, *, convention: Any = "neurips23") -> RamanujanGap:
    """Ramanujan gaps of the 0/1 layer graph; see :class:`RamanujanGap`."""
    conv = get_convention(convention)
    layer = to_layer(mask, name="mask")
    spec = _spectra([layer], subgraphs=False, weighted=False, convention=conv)[0]
    return _gap(layer, spec["sv"], conv)


def weighted_gap(mask: Any, weight: Any, *, convention: Any = "neurips23") -> float:
    """Weighted spectral gap ``σ1(|W ⊙ M|) - σ2(|W ⊙ M|)``.

    NaN when the convention's ``layer_rule`` fails (on the nonzero pattern of ``|W ⊙ M|`` under
    ``weighted_validity="released"``, on the mask under ``"pattern"``) or the layer is empty.
    Scales linearly with a global rescale of ``weight``. ``weight=None`` raises ``ValueError``
    (as :func:`coordinate` does); pass ``weight=mask`` to use the pattern itself (|W| = M).
    """
    _need_weight(weight, "weighted_gap")
    conv = get_convention(convention)
    layer = to_layer(mask, weight, name="mask")
    spec = _spectra([layer], subgraphs=False, weighted=True, convention=conv)[0]
    return _weighted_gap(layer, spec["wsv"], conv)[0]


def regular_decomposition(mask: Any, weight: Any = None, *, convention: Any = "neurips23") -> list:
    """The regular-subgraph decomposition as a list of :class:`RegularSubgraph`, ascending by
    degree: input columns grouped by exact degree, groups of at least ``min_nodes`` (2 under
    neurips23, 3 under iclr23) members."""
    conv = get_convention(convention)
    layer = to_layer(mask, weight, name="mask")
    spec = _spectra([layer], subgraphs=True, weighted=weight is not None, convention=conv)[0]
    return _subgraphs(layer, spec, conv, weight is not None)


def imdb(mask: Any, weight: Any = None, *, convention: Any = "neurips23") -> ImdbResult:
    """IMDB and weighted IMDB of a layer; see :class:`ImdbResult`."""
    conv = get_convention(convention)
    layer = to_layer(mask, weight, name="mask")
    spec = _spectra([layer], subgraphs=True, weighted=weight is not None, convention=conv,
                    valid_subgraphs_only=True)[0]
    return _imdb(_subgraphs(layer, spec, conv, weight is not None), conv, weighted=weight is not None)


def _narc(layer: LayerCSR, gap: RamanujanGap, edge_count: str) -> tuple:
    if edge_count not in ("directed", "undirected"):
        raise ValueError(f"edge_count must be 'directed' (released code, 2E) or 'undirected' (E), got {edge_count!r}")
    if gap.edges == 0:
        return NAN, "empty layer: no edges"
    if not ICLR23.full_valid(gap.d_in, gap.d_out):
        return NAN, (f"iclr23 degree condition ({ICLR23.full_rule()}) fails: "
                     f"d_in={gap.d_in:.4g}, d_out={gap.d_out:.4g}")
    e = 2 * gap.edges if edge_count == "directed" else gap.edges
    n_prod = gap.n_in * gap.n_out
    val = ((gap.mu_hat ** 2 / 4 + 1) * math.sqrt(n_prod) - abs(e - (gap.d_in / layer.n_rows) * n_prod)) \
        / (layer.n_cols * layer.n_rows)
    return float(val), ""


def narc(mask: Any, *, edge_count: str = "directed") -> float:
    """Normalised random coefficient (ICLR 2023)::

        NaRC = [(mu_hat²/4 + 1)·sqrt(n_in·n_out) − |2E − (d_in/N_out)·n_in·n_out|] / (N_in·N_out)

    ``N_out, N_in`` are the flattened (unremoved) sizes. ``edge_count="directed"`` (default)
    counts 2E as the released code; ``"undirected"`` uses E. NaN unless the iclr23 layer rule
    (``d_in >= 3 and d_out >= 3``) holds. ``> 0``: structured; ``<= 0``: random-like.
    """
    layer = to_layer(mask, name="mask")
    spec = _spectra([layer], subgraphs=False, weighted=False, convention=ICLR23)[0]
    return _narc(layer, _gap(layer, spec["sv"], ICLR23), edge_count)[0]


def coordinate(mask: Any, weight: Any, *, convention: Any = "neurips23",
               threads: Optional[int] = None) -> Coordinate:
    """The 4-axis full-spectrum coordinate ``(delta_r, weighted_gap, imdb, weighted_imdb)`` of a
    layer; undefined axes are 0. ``weight=None`` raises ``ValueError`` (as :func:`weighted_gap`
    does): pass ``weight=mask`` to take the pattern itself as the weights (|W| = M)."""
    _need_weight(weight, "coordinate")
    return coordinates([mask], [weight], convention=convention, threads=threads)[0]


def coordinates(masks: Sequence, weights: Sequence, *, convention: Any = "neurips23",
                threads: Optional[int] = None) -> list:
    """Coordinates of many layers (e.g. every layer of a candidate mask) in one batched core call.
    Every layer needs a weight (``ValueError`` naming the first layer without one)."""
    conv = get_convention(convention)
    _need_weight(weights, "coordinates")
    layers = to_layers(masks, weights)
    for ly in layers:
        if ly.values is None:
            raise ValueError(f"{ly.name}: no weight given; coordinates need a weight for every layer "
                             "(pass the mask itself to use |W| = M)")
    specs = _spectra(layers, subgraphs=True, weighted=True, convention=conv, threads=threads,
                     valid_subgraphs_only=True)  # invalid groups: NaN spectra, never read by _imdb
    return _coordinates_of(layers, specs, conv)


def _coordinates_of(layers: Sequence[LayerCSR], specs: list, conv: Convention) -> list:
    """The coordinates of layers from their batched spectra (weighted, with subgraphs)."""
    out = []
    for layer, spec in zip(layers, specs):
        gap = _gap(layer, spec["sv"], conv)
        wgap = _weighted_gap(layer, spec["wsv"], conv)[0]
        out.append(_coordinate(gap, wgap, _imdb(_subgraphs(layer, spec, conv, True), conv, weighted=True)))
    return out


def distance(a, b=None, *, axis_weights: Optional[Sequence[float]] = None) -> float:
    """L2 distance in coordinate space.

    ``a``, ``b``: :class:`Coordinate` (one layer) or sequences of them (a network: the mean over
    layers of the per-layer distances). ``b=None`` is the origin, i.e. ``||a||`` — what the
    authors' sampler maximises. ``axis_weights`` optionally weights the 4 axes.
    """
    def as_list(x):
        if isinstance(x, Coordinate):
            return [x], True
        try:
            xs = list(x)
        except TypeError:
            raise TypeError(f"distance expects Coordinate objects or sequences of them, got {type(x).__name__}") \
                from None
        if not all(isinstance(c, Coordinate) for c in xs):
            raise TypeError("distance expects Coordinate objects or sequences of them")
        return xs, False

    la, single = as_list(a)
    if b is None:
        lb = [Coordinate(0.0, 0.0, 0.0, 0.0)] * len(la)
    else:
        lb, _ = as_list(b)
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
