"""The baselines fspai is measured against, float64 references, and a read-bandwidth probe.

(a) ``authors_top2``  -- the papers' method (VITA-Group/ramanujan-on-pai, ScottHoang/dst-ram-pruning
    ``Ramanujan.get_eig_values``): float32 symmetric bipartite adjacency ``coo_array`` of the
    graph without isolated nodes, ``A = [[0, B], [Bᵀ, 0]]``, built from the CSR mask (the build is
    part of the timed call), then ``eigsh(A, k=3, which="LM")`` with defaults (eigenvectors on, as
    released); sort |λ| descending, σ1 = first, σ2 = third.
(b) ``GramBaseline``  -- the fastest honest SciPy baseline: ARPACK on
    ``LinearOperator(v ↦ M(Mᵀv))`` of the smaller side, ``k=2, tol=1e-6, v0=ones,
    return_eigenvectors=False`` with a precomputed float64 CSR Mᵀ. The setup (float64 CSR of the
    graph and its transpose) is done once and NOT timed, which favours the baseline.

``coordinate_loop`` computes the full NeurIPS'23 coordinate (docs/metrics.md) one solve per graph
-- the full layer graph (pattern), the weighted full graph (|W ⊙ M|), and every degree-grouped
regular subgraph, pattern and weighted -- with any top-2 solver: ``authors_coordinates`` plugs in
(a) (the papers' loop), ``gram_coordinates`` plugs in (b) (an honest SciPy loop). A solve runs only
where its result is used (the graph passes the validity rule), like the released loop, which checks
the degree condition before calling eigsh. The rules come from ``fspai.conventions`` (their one
owner). ``subgraph_loop`` is the honest SciPy loop for what ``fspai.model_metrics`` computes on
masks: the layer and every degree group.

References (float64): ``dense_top2`` (``eigvalsh`` of the dense Gram of the smaller side; exact in
integers for 0/1 masks; dense SVD where σ2 is near 0) and ``reference_top2`` (dense where min
side <= 1024, else (b) at tol=1e-12).
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse import coo_array
from scipy.sparse.linalg import LinearOperator, eigsh

__all__ = [
    "as_float_csr", "authors_top2", "GramBaseline", "gram_top2", "dense_top2", "reference_top2",
    "rel_err_top2", "degree_groups", "coordinate_loop", "authors_coordinates", "gram_coordinates",
    "reference_coordinates", "subgraph_loop", "CoordinateRef", "read_bandwidth", "DENSE_REF_MAX_SIDE",
]

DENSE_REF_MAX_SIDE = 1024
DENSE_SVD_MAX_ENTRIES = 3_000_000


def as_float_csr(B, dtype=np.float64) -> sp.csr_array:
    """CSR copy of the graph's biadjacency with |values| (a bool mask becomes 0/1)."""
    B = sp.csr_array(B)
    data = np.abs(B.data).astype(dtype, copy=False) if B.dtype != bool else np.ones(B.nnz, dtype)
    return sp.csr_array((data, B.indices, B.indptr), shape=B.shape)


# ----------------------------------------------------------------------------- (a) authors

def _bipartite_f32(B: sp.csr_array) -> coo_array:
    """float32 (n_in + n_out)² bipartite adjacency [[0, B], [Bᵀ, 0]] without isolated nodes."""
    B = sp.csr_array(B)
    m, n = B.shape
    row_deg = np.diff(B.indptr)
    col_deg = np.bincount(B.indices, minlength=n)
    keep_r = np.flatnonzero(row_deg)
    keep_c = np.flatnonzero(col_deg)
    r_map = np.full(m, -1, dtype=np.int64)
    r_map[keep_r] = np.arange(keep_r.size)
    c_map = np.full(n, -1, dtype=np.int64)
    c_map[keep_c] = keep_r.size + np.arange(keep_c.size)
    rows = r_map[np.repeat(np.arange(m), row_deg)]
    cols = c_map[B.indices]
    data = (np.abs(B.data).astype(np.float32) if B.dtype != bool
            else np.ones(B.nnz, dtype=np.float32))
    N = keep_r.size + keep_c.size
    return coo_array((np.concatenate([data, data]),
                      (np.concatenate([rows, cols]), np.concatenate([cols, rows]))), shape=(N, N))


def authors_top2(B) -> np.ndarray:
    """(σ1, σ2) the papers' way: float32 bipartite COO + ``eigsh(k=3, which="LM")`` (defaults).

    Graphs with fewer than 4 non-isolated nodes (where ARPACK cannot take k=3) fall back to a dense
    eigvalsh of the same float32 adjacency; they never occur in a valid graph."""
    A = _bipartite_f32(B)
    N = A.shape[0]
    if N > 3:
        vals, _vecs = eigsh(A, k=3, which="LM")
    elif N > 0:
        vals = np.linalg.eigvalsh(A.toarray())
    else:
        vals = np.zeros(0)
    s = np.sort(np.abs(np.asarray(vals, dtype=np.float64)))[::-1]
    s = np.concatenate([s, np.zeros(3)])
    return np.array([s[0], s[2]])


# ----------------------------------------------------------------------------- (b) Gram ARPACK

class GramBaseline:
    """Prepared baseline (b). ``prepare`` (not timed) builds float64 CSR M and Mᵀ; ``__call__``
    runs ARPACK on the smaller-side Gram operator and returns the top-k σ (descending)."""

    def __init__(self, B, *, k: int = 2, tol: float = 1e-6, ncv: Optional[int] = None):
        M = as_float_csr(B)
        MT = sp.csr_array(M.T)  # transpose -> CSC view -> explicit CSR copy (precomputed)
        m, n = M.shape
        if m <= n:
            self._outer, self._inner, self.size = M, MT, m    # v ↦ M (Mᵀ v), m x m
        else:
            self._outer, self._inner, self.size = MT, M, n    # v ↦ Mᵀ (M v), n x n
        self.k, self.tol, self.ncv = k, tol, ncv
        self.matvecs = 0

    def _mv(self, v):
        self.matvecs += 1
        return self._outer @ (self._inner @ v)

    def __call__(self) -> np.ndarray:
        s, k = self.size, self.k
        if s <= k:  # ARPACK needs k < size; tiny cases only (never in the workloads)
            G = (self._outer @ self._inner).toarray()
            ev = np.linalg.eigvalsh(G)[::-1][:k]
            return np.sqrt(np.clip(np.concatenate([ev, np.zeros(k)])[:k], 0.0, None))
        op = LinearOperator((s, s), matvec=self._mv, dtype=np.float64)
        ev = eigsh(op, k=k, tol=self.tol, ncv=self.ncv, v0=np.ones(s),
                   return_eigenvectors=False)
        return np.sqrt(np.clip(np.sort(ev)[::-1], 0.0, None))


def gram_top2(B, tol: float = 1e-6, ncv: Optional[int] = None) -> np.ndarray:
    return GramBaseline(B, k=2, tol=tol, ncv=ncv)()


# ----------------------------------------------------------------------------- references

def dense_top2(B, k: int = 2) -> np.ndarray:
    """float64 top-k σ, dense: ``eigvalsh`` of the dense Gram of the smaller side (the ground
    truth; exact in integers for 0/1 masks, agrees with dense SVD to ~1e-15 for the top σ).
    Squaring costs accuracy only for σ near 0 (absolute error ~ sqrt(eps)·σ1), so small matrices
    and any result with σ_k < 1e-3·σ1 are recomputed with ``numpy.linalg.svd`` (if <= 3 M
    entries)."""
    M = as_float_csr(B)
    m, n = M.shape
    if m == 0 or n == 0:
        return np.zeros(k)
    small = m * n <= DENSE_SVD_MAX_ENTRIES
    if m * n <= 100_000:
        s = np.linalg.svd(M.toarray(), compute_uv=False)
        return np.concatenate([s, np.zeros(k)])[:k]
    G = (M @ M.T) if m <= n else (M.T @ M)
    ev = np.linalg.eigvalsh(G.toarray())[::-1]
    s = np.sqrt(np.clip(np.concatenate([ev, np.zeros(k)])[:k], 0.0, None))
    if small and s[-1] < 1e-3 * s[0]:
        s = np.linalg.svd(M.toarray(), compute_uv=False)
        s = np.concatenate([s, np.zeros(k)])[:k]
    return s


def reference_top2(B) -> Tuple[np.ndarray, str]:
    """float64 reference (σ1, σ2) and how it was obtained."""
    if min(B.shape) <= DENSE_REF_MAX_SIDE:
        return dense_top2(B), "dense"
    return gram_top2(B, tol=1e-12, ncv=40), "arpack-gram-tol1e-12"


def rel_err_top2(est, ref) -> float:
    """max_i |σ̂ᵢ − σᵢ| / σᵢ over the top 2; where σ2 < 1e-6·σ1 (rank-1 or empty
    second direction) the σ2 error is taken relative to σ1."""
    est = np.asarray(est, dtype=np.float64)[:2]
    ref = np.asarray(ref, dtype=np.float64)[:2]
    if ref[0] == 0.0:
        return float(np.max(np.abs(est)))
    den = np.where(ref < 1e-6 * ref[0], ref[0], ref)
    return float(np.max(np.abs(est - ref) / den))


# ----------------------------------------------------------------------------- coordinate

def degree_groups(P: sp.csr_array, min_nodes: int = 2) -> List[Tuple[int, np.ndarray]]:
    """Input nodes (columns) grouped by exact degree d > 0 with at least ``min_nodes`` members."""
    col_deg = np.bincount(P.indices, minlength=P.shape[1])
    out = []
    for d in np.unique(col_deg):
        if d == 0:
            continue
        cols = np.flatnonzero(col_deg == d)
        if cols.size >= min_nodes:
            out.append((int(d), cols))
    return out


@dataclass
class CoordinateRef:
    delta_r: float
    weighted_gap: float
    imdb: float
    weighted_imdb: float
    eigsolves: int = 0
    subgraphs: int = 0
    valid_subgraphs: int = 0

    def as_array(self) -> np.ndarray:
        return np.array([self.delta_r, self.weighted_gap, self.imdb, self.weighted_imdb])


def _degrees(P: sp.csr_array):
    """(n_in, n_out, E) of a pattern, isolated nodes excluded."""
    n_out = int(np.count_nonzero(np.diff(P.indptr)))
    n_in = int(np.count_nonzero(np.bincount(P.indices, minlength=P.shape[1])))
    return n_in, n_out, int(P.nnz)


def _pattern(B) -> sp.csr_array:
    P = sp.csr_array(B)
    P = sp.csr_array(P != 0) if P.dtype != bool else P
    P.eliminate_zeros()
    return P


def coordinate_loop(mask, weight, top2: Callable[[sp.csr_array], np.ndarray],
                    convention="neurips23") -> CoordinateRef:
    """The coordinate of one layer (undefined components -> 0), computing every needed (σ1, σ2)
    with ``top2`` -- one call per graph, in the released loop's order. ``convention``: a preset
    name or ``fspai.conventions.Convention`` (the rules' one owner)."""
    from fspai.conventions import get_convention  # the rules are not restated here

    conv = get_convention(convention)
    P = _pattern(mask)
    W = as_float_csr(weight)  # |W ⊙ M| float64
    released = conv.weighted_validity == "released"
    calls = 0
    delta_r = wgap = 0.0
    n_in, n_out, E = _degrees(P)
    if E and conv.full_valid(E / n_in, E / n_out):
        s = top2(P)
        calls += 1
        delta_r = math.sqrt(E / n_in - 1) + math.sqrt(E / n_out - 1) - float(s[1])
    wn_in, wn_out, wE = _degrees(_pattern(W)) if released else (n_in, n_out, E)
    if wE and conv.full_valid(wE / wn_in, wE / wn_out):
        sw = top2(W)
        calls += 1
        wgap = float(sw[0] - sw[1])
    Pc, Wc = P.tocsc(), W.tocsc()
    vals, wvals = [], []
    groups = degree_groups(P, conv.min_nodes)
    for d, cols in groups:
        sub = sp.csr_array(Pc[:, cols])
        sn_in, sn_out, _ = _degrees(sub)
        d_out = d * sn_in / sn_out
        if not conv.sub_valid(d, d_out):
            continue
        s = top2(sub)
        calls += 1
        vals.append(conv.sub_factor(sn_in, sn_out) * (math.sqrt(d - 1) + math.sqrt(d_out - 1) - float(s[1])))
        if not conv.weighted_imdb:
            continue
        wsub = sp.csr_array(Wc[:, cols])
        wi, wo, we = _degrees(_pattern(wsub)) if released else (sn_in, sn_out, d * sn_in)
        if not (we and conv.sub_valid(we / wi, we / wo)):
            wvals.append(math.inf)  # the released loop's inf: the layer's weighted IMDB axis becomes 0
            continue
        sw = top2(wsub)
        calls += 1
        wvals.append(conv.sub_factor(sn_in, sn_out) * float(sw[0] - sw[1]))
    imdb = float(np.mean(vals)) if vals else 0.0
    wimdb = float(np.mean(wvals)) if wvals else 0.0
    wimdb = 0.0 if not math.isfinite(wimdb) else wimdb
    return CoordinateRef(delta_r, wgap, imdb, wimdb, calls, len(groups), len(vals))


def authors_coordinates(masks: Sequence, weights: Sequence) -> List[CoordinateRef]:
    """Baseline (a) applied the papers' way to a list of layers: one float32 COO
    ``eigsh(k=3)`` per graph (layer pattern, layer weighted, each valid regular subgraph, both)."""
    return [coordinate_loop(m, w, authors_top2) for m, w in zip(masks, weights)]


def gram_coordinates(masks: Sequence, weights: Sequence) -> List[CoordinateRef]:
    """Baseline (b) applied to every graph the coordinate needs (an honest SciPy loop): ARPACK on
    the Gram operator of the layer, of |W ⊙ M| and of every valid regular subgraph (both)."""
    return [coordinate_loop(m, w, gram_top2) for m, w in zip(masks, weights)]


def reference_coordinates(masks: Sequence, weights: Sequence) -> List[CoordinateRef]:
    """float64 reference coordinate: same loop with exact dense / tight-ARPACK (σ1, σ2)."""
    return [coordinate_loop(m, w, lambda B: reference_top2(B)[0])
            for m, w in zip(masks, weights)]


def subgraph_loop(masks: Sequence, min_nodes: int = 2) -> List[List[np.ndarray]]:
    """Honest SciPy loop for what ``fspai.model_metrics`` computes on 0/1 masks: (b) on the layer
    graph and on every degree group of at least ``min_nodes`` input nodes (valid or not: the table
    reports every subgraph). Returns per layer [layer top-2, subgraph top-2, ...]."""
    out = []
    for m in masks:
        P = _pattern(m)
        res = [gram_top2(P)]
        Pc = P.tocsc()
        for _, cols in degree_groups(P, min_nodes):
            res.append(gram_top2(sp.csr_array(Pc[:, cols])))
        out.append(res)
    return out


# ----------------------------------------------------------------------------- bandwidth probe

def _threaded_times(fn, arr: np.ndarray, threads: int, repeats: int) -> List[float]:
    parts = np.array_split(arr, threads)
    times = []
    for _ in range(repeats):
        ths = [threading.Thread(target=fn, args=(p,)) for p in parts]
        t0 = time.perf_counter()
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        times.append(time.perf_counter() - t0)
    return times


def read_bandwidth(nbytes: int = 1 << 30, threads: Sequence[int] = (1, 2), repeats: int = 7,
                   cache_bytes: Optional[int] = 16 << 20) -> dict:
    """Read bandwidth (bytes/s) of this machine, measured now.

    A numpy reduction (max over int32 and OR over uint64, both SIMD and far cheaper than the
    memory stream) over an ``nbytes`` (default 1 GiB) array; ``threads`` > 1 splits the array
    between Python threads (numpy releases the GIL inside reductions). ``dram_<t>t`` is the
    median of ``repeats`` passes (robust to the rare 2x outliers seen on the shared-host VM), max
    over the two kernels; ``dram_<t>t_best`` the single best pass. ``dram`` (used for the floor)
    is the larger of the per-thread-count medians, i.e. the harder floor.
    ``cache_bytes``: also a 16 MiB (L3-resident) working set, reported for context only."""
    buf = np.ones(nbytes // 8, dtype=np.float64)  # first-touch outside the timing
    kernels = [(lambda a: np.maximum.reduce(a), buf.view(np.int32)),
               (lambda a: np.bitwise_or.reduce(a), buf.view(np.uint64))]
    out = {"bytes": int(buf.nbytes), "method": "numpy max(int32)/or(uint64) reduction, "
           "Python threads, median of %d" % repeats}
    for t in threads:
        runs = [_threaded_times(f, a, t, repeats) for f, a in kernels]
        out[f"dram_{t}t"] = max(buf.nbytes / float(np.median(r)) for r in runs)
        out[f"dram_{t}t_best"] = max(buf.nbytes / min(r) for r in runs)
    del buf, kernels
    if cache_bytes:
        small = np.ones(cache_bytes // 8, dtype=np.float64)
        for t in threads:
            r = _threaded_times(lambda a: np.maximum.reduce(a), small.view(np.int32), t,
                                max(repeats, 20))
            out[f"l3_{t}t"] = small.nbytes / float(np.median(r))
    out["dram"] = max(out[f"dram_{t}t"] for t in threads)
    out["dram_threads"] = max(threads, key=lambda t: out[f"dram_{t}t"])
    return out
