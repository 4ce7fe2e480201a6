"""Validation and canonicalisation of sparse inputs (scipy.sparse and torch sparse), in NumPy.

Every array a sparse container holds is checked here — lengths, dtypes, ``indptr`` monotone and
in range, indices in range, data length — before any SciPy routine or the compiled core reads it
(a corrupted ``indptr`` handed to SciPy's own converters can crash the process). The result is a
:class:`Canonical` CSR: int64 ``indptr``, int32 ``indices`` strictly increasing within each row
(duplicates summed, as SciPy does) and the entries' data, with rows and columns that hold no entry
optionally dropped (``row_ids`` / ``col_ids`` map the kept ones back), so a huge declared shape
with few entries costs O(nnz) memory.

Large arrays are scanned in chunks so the checks add O(chunk) temporary memory, not O(nnz).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import numpy as np

MAX_DIM = np.iinfo(np.int32).max  # column indices are int32 in the core
CHUNK = 1 << 20                   # entries per chunk of the O(nnz) scans
_SPARSE_FORMATS = ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")


@dataclasses.dataclass
class Canonical:
    """A canonical CSR over ``len(indptr) - 1`` stored rows and ``n_cols_stored`` stored columns.

    ``row_ids[i]`` / ``col_ids[j]`` are the original row / column of stored row i / column j
    (``None``: identity, nothing dropped). ``data`` is aligned with ``indices`` (or ``None``).
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: Optional[np.ndarray]
    n_cols_stored: int
    row_ids: Optional[np.ndarray] = None
    col_ids: Optional[np.ndarray] = None

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def original_keys(self, n_cols: int, lo: int = 0, hi: Optional[int] = None) -> np.ndarray:
        """``row * n_cols + col`` in original coordinates of entries ``lo:hi`` (int64)."""
        hi = self.nnz if hi is None else hi
        rows = np.searchsorted(self.indptr, np.arange(lo, hi, dtype=np.int64), side="right") - 1
        if self.row_ids is not None:
            rows = self.row_ids[rows]
        cols = self.indices[lo:hi].astype(np.int64)
        if self.col_ids is not None:
            cols = self.col_ids[cols]
        return rows * n_cols + cols


def describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    try:
        shape_s = "" if shape is None else " of shape " + str(tuple(int(s) for s in shape))
    except (TypeError, ValueError):
        shape_s = f" with shape {shape!r}"
    return f"{type(x).__name__}{shape_s}"


def check_shape(shape: Any, what: str, name: str) -> tuple:
    """A shape as a tuple of non-negative Python ints (``ValueError`` otherwise)."""
    try:
        dims = tuple(shape)
        ok = all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in dims)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: {what} has an invalid shape {shape!r} (expected non-negative ints)")
    return tuple(int(s) for s in dims)


def flat_shape(shape: tuple, what: str, name: str) -> tuple:
    """``(n_rows, n_cols)`` of ``B = X.reshape(shape[0], -1)``; refuses sizes the core cannot index."""
    if len(shape) < 2:
        raise ValueError(f"{name}: {what} must have at least 2 dims (out, in[, k...]), got shape {shape}")
    n_rows, n_cols = shape[0], math.prod(shape[1:])
    if n_rows > MAX_DIM or n_cols > MAX_DIM:
        raise ValueError(f"{name}: {what} of shape {shape} flattens to ({n_rows}, {n_cols}); "
                         "sizes above 2^31-1 are not supported (int32 column indices)")
    return n_rows, n_cols


def _index_array(a: Any, field: str, what: str, name: str, shape: tuple) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: {what} of shape {shape}: {field} must be a numpy array, got {type(a).__name__}")
    if a.ndim != 1:
        raise ValueError(f"{name}: {what} of shape {shape}: {field} must be 1-D, got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: {what} of shape {shape}: {field} must be an integer array, got {a.dtype}")
    return a


def _chunks(n: int, size: int = CHUNK):
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


def _check_range(a: np.ndarray, upper: int, field: str, what: str, name: str, shape: tuple) -> None:
    """0 <= a < upper, scanned in chunks. Signed integers are read as unsigned of the same width
    (negatives become >= 2^(bits-1) > upper), so one max per chunk checks both bounds."""
    unsigned = np.dtype(f"u{a.dtype.itemsize}") if a.dtype.kind == "i" else None
    for lo, hi in _chunks(a.size):
        blk = a[lo:hi]
        if blk.size and int((blk if unsigned is None else blk.view(unsigned)).max()) >= upper:
            bad = blk[(blk < 0) | (blk >= upper)][0]
            raise ValueError(f"{name}: {what} of shape {shape}: {field} contains {int(bad)}, "
                             f"outside 0..{upper - 1}")


def _check_indptr(indptr: np.ndarray, n_major: int, n_entries: int, what: str, name: str, shape: tuple) -> None:
    if indptr.size != n_major + 1:
        raise ValueError(f"{name}: {what} of shape {shape}: indptr has {indptr.size} entries, expected {n_major + 1}")
    if indptr[0] != 0:
        raise ValueError(f"{name}: {what} of shape {shape}: indptr[0] = {int(indptr[0])}, expected 0")
    for lo, hi in _chunks(indptr.size - 1):
        if (indptr[lo + 1:hi + 1] < indptr[lo:hi]).any():
            raise ValueError(f"{name}: {what} of shape {shape}: indptr is not non-decreasing")
    if indptr[-1] > n_entries:
        raise ValueError(f"{name}: {what} of shape {shape}: indptr[-1] = {int(indptr[-1])} but only "
                         f"{n_entries} indices are stored")


def _data_array(data: Any, n: int, what: str, name: str, shape: tuple) -> np.ndarray:
    if not isinstance(data, np.ndarray) or data.ndim != 1:
        raise TypeError(f"{name}: {what} of shape {shape}: data must be a 1-D numpy array, got "
                        f"{type(data).__name__}{getattr(data, 'shape', '')}")
    if data.shape[0] != n:
        raise ValueError(f"{name}: {what} of shape {shape}: {data.shape[0]} data values for {n} stored indices")
    return data


def _sorted_within_rows(indptr: np.ndarray, indices: np.ndarray) -> bool:
    """True when indices strictly increase inside every row (chunked: O(chunk) temporaries)."""
    nnz = int(indptr[-1])
    for lo, hi in _chunks(nnz - 1):
        ok = indices[lo + 1:hi + 1] > indices[lo:hi]  # same integer dtype: no widening copy
        if not ok.all():
            # A decrease across a row boundary is fine. The row starts inside (lo, hi] are the
            # slice of the sorted indptr between two binary searches: O(chunk + rows), no search
            # per position. Where empty rows make that slice longer than the chunk, test the
            # chunk's positions value by value instead (temporaries stay O(chunk)).
            key = indptr.dtype.type  # a key of indptr's own dtype: no converted copy of indptr
            a = int(np.searchsorted(indptr, key(lo + 1), side="left"))
            b = int(np.searchsorted(indptr, key(hi), side="right"))
            if b - a <= hi - lo:
                ok[indptr[a:b] - 1 - lo] = True
            else:
                vals = np.arange(lo + 1, hi + 1, dtype=indptr.dtype)
                starts = vals[indptr[np.searchsorted(indptr, vals)] == vals]
                ok[starts - 1 - lo] = True
            if not ok.all():
                return False
    return True


def chunked_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` and ``b`` (1-D, equal sizes) hold the same numbers, compared in chunks (O(chunk)
    temporaries)."""
    if a is b:
        return True
    return a.size == b.size and all(np.array_equal(a[lo:hi], b[lo:hi]) for lo, hi in _chunks(a.size))


def values_on_structure(x: Any, can: Canonical) -> Optional[np.ndarray]:
    """The stored values of a scipy CSR ``x`` whose structure is exactly the validated canonical
    ``can`` (same ``indptr``, same ``indices`` up to nnz, nothing compacted), else ``None``.

    A weight stored on its mask's own pattern (``W ⊙ M`` as a CSR) is the common case: equality
    with a structure that already passed every check makes ``x``'s own structural checks
    redundant (the comparison itself only reads the arrays). ``data`` is still checked for
    type and length here; its values are the caller's to check."""
    if getattr(x, "format", None) != "csr":
        return None
    indptr, indices, data = getattr(x, "indptr", None), getattr(x, "indices", None), getattr(x, "data", None)
    if not all(isinstance(a, np.ndarray) and a.ndim == 1 for a in (indptr, indices, data)):
        return None
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu" or data.shape[0] != indices.size:
        return None
    return data[:can.nnz] if same_structure(indptr, indices, can) else None


def same_structure(indptr: np.ndarray, indices: np.ndarray, can: Canonical) -> bool:
    """``indptr`` and ``indices`` (up to nnz) describe exactly the pattern of ``can``, which has
    nothing compacted (1-D integer arrays; compared in chunks)."""
    if can.row_ids is not None or can.col_ids is not None:
        return False
    nnz = can.nnz
    return (indptr.shape == can.indptr.shape and indices.size >= nnz and chunked_equal(indptr, can.indptr)
            and chunked_equal(indices[:nnz], can.indices))


def _nonempty(indptr: np.ndarray) -> tuple:
    """(ids, counts) of the rows (or columns) of a compressed matrix that hold entries, found in
    chunks so a huge, nearly empty ``indptr`` needs no temporaries of its own size."""
    ids, counts = [], []
    for lo, hi in _chunks(indptr.size - 1):
        c = indptr[lo + 1:hi + 1] - indptr[lo:hi]
        nz = np.flatnonzero(c)
        ids.append(nz + lo)
        counts.append(c[nz])
    if not ids:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ids).astype(np.int64), np.concatenate(counts).astype(np.int64)


def _from_coo(rows: np.ndarray, cols: np.ndarray, data: Optional[np.ndarray], n_rows: int, n_cols: int,
              compact: bool) -> Canonical:
    """Sort, sum duplicates and assemble a CSR from validated COO triplets (O(nnz log nnz))."""
    keys = rows.astype(np.int64) * n_cols + cols.astype(np.int64)
    del rows, cols
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if data is not None:
        data = data[order]
    del order
    if keys.size > 1:
        first = np.empty(keys.size, dtype=bool)
        first[0] = True
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        if not first.all():
            starts = np.flatnonzero(first)
            if data is not None:
                data = np.add.reduceat(data, starts)
            keys = keys[first]
    rows = keys // n_cols
    cols = keys - rows * n_cols
    del keys
    row_ids = col_ids = None
    n_rows_st, n_cols_st = n_rows, n_cols
    if compact and n_rows > 4 * rows.size + 4096:
        row_ids, rows = np.unique(rows, return_inverse=True)
        n_rows_st = row_ids.size
    if compact and n_cols > 4 * cols.size + 4096:
        col_ids, cols = np.unique(cols, return_inverse=True)
        n_cols_st = col_ids.size
    indptr = np.zeros(n_rows_st + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows_st), out=indptr[1:])
    return Canonical(indptr, cols.astype(np.int32), data, n_cols_st, row_ids, col_ids)


def _from_csr(indptr, indices, data, n_rows: int, n_cols: int, compact: bool) -> Canonical:
    nnz = int(indptr[-1])
    indices = indices[:nnz]
    data = None if data is None else data[:nnz]
    if not _sorted_within_rows(indptr, indices):
        ids, counts = _nonempty(indptr)
        return _from_coo(np.repeat(ids, counts), indices, data, n_rows, n_cols, compact)
    indptr = indptr.astype(np.int64, copy=False)
    if indices.dtype != np.int32:
        indices = indices.astype(np.int32)
    can = Canonical(indptr, indices, data, n_cols)
    if compact and n_rows > 4 * nnz + 4096:
        can.row_ids, counts = _nonempty(indptr)
        can.indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    if compact and n_cols > 4 * nnz + 4096:
        can.col_ids, inv = np.unique(indices, return_inverse=True)
        can.indices = inv.astype(np.int32)
        can.n_cols_stored = can.col_ids.size
    return can


def _compressed(indptr: Any, indices: Any, data: Any, fmt: str, shape: tuple, what: str, name: str,
                compact: bool) -> Canonical:
    """Validate compressed-row (``fmt="csr"``) or compressed-column (``"csc"``) arrays."""
    if len(shape) != 2:
        raise ValueError(f"{name}: {what}: a {fmt} matrix must be 2-D, got shape {shape}")
    n_rows, n_cols = shape
    major, minor = (n_rows, n_cols) if fmt == "csr" else (n_cols, n_rows)
    indptr = _index_array(indptr, "indptr", what, name, shape)
    indices = _index_array(indices, "indices", what, name, shape)
    data = _data_array(data, indices.size, what, name, shape)
    _check_indptr(indptr, major, indices.size, what, name, shape)
    nnz = int(indptr[-1])
    _check_range(indices[:nnz], minor, "indices", what, name, shape)
    if fmt == "csr":
        return _from_csr(indptr, indices, data, n_rows, n_cols, compact)
    ids, counts = _nonempty(indptr)
    return _from_coo(indices[:nnz], np.repeat(ids, counts), data[:nnz], n_rows, n_cols, compact)


def scipy_canonical(x: Any, what: str, name: str, compact: bool = True) -> tuple:
    """Validate a scipy.sparse matrix/array in NumPy and return ``(shape, Canonical)``.

    Structural errors raise ``ValueError`` naming ``name``, ``what`` and the shape; no SciPy
    routine runs on the arrays before they are validated.
    """
    fmt = getattr(x, "format", None)
    shape = check_shape(getattr(x, "shape", None), what, name)
    if fmt not in _SPARSE_FORMATS:
        raise TypeError(f"{name}: {what}: unsupported scipy.sparse format {fmt!r}")
    n_rows, n_cols = flat_shape(shape, what, name)
    if fmt in ("csr", "csc"):
        indptr, indices = getattr(x, "indptr", None), getattr(x, "indices", None)
        data = getattr(x, "data", None)
        return shape, _compressed(indptr, indices, data, fmt, shape, what, name, compact)
    if fmt == "coo":
        coords = getattr(x, "coords", None)
        if coords is None:
            coords = (getattr(x, "row", None), getattr(x, "col", None))
        coords = tuple(coords)
        if len(coords) != len(shape):
            raise ValueError(f"{name}: {what} of shape {shape}: {len(coords)} coordinate arrays for {len(shape)} dims")
        arrs = [_index_array(c, f"coords[{i}]", what, name, shape) for i, c in enumerate(coords)]
        n = arrs[0].size
        if any(a.size != n for a in arrs):
            raise ValueError(f"{name}: {what} of shape {shape}: coordinate arrays differ in length "
                             f"{[a.size for a in arrs]}")
        data = _data_array(getattr(x, "data", None), n, what, name, shape)
        for i, (a, dim) in enumerate(zip(arrs, shape)):
            _check_range(a, dim, f"coords[{i}]", what, name, shape)
        cols = (np.ravel_multi_index(tuple(arrs[1:]), shape[1:]).astype(np.int64) if len(shape) > 2
                else arrs[1])
        return shape, _from_coo(arrs[0], cols, data, n_rows, n_cols, compact)
    if fmt == "bsr":
        return _bsr(x, shape, what, name, compact)
    # dia / lil / dok: no raw index arrays a corrupted value could point outside of; SciPy's own
    # conversion to COO is safe and O(stored entries). The COO result is validated like any other.
    if len(shape) != 2:
        raise ValueError(f"{name}: {what}: a {fmt} matrix must be 2-D, got shape {shape}")
    if fmt == "dia":
        offsets = _index_array(getattr(x, "offsets", None), "offsets", what, name, shape)
        dd = getattr(x, "data", None)
        if not isinstance(dd, np.ndarray) or dd.ndim != 2 or dd.shape[0] != offsets.size:
            raise ValueError(f"{name}: {what} of shape {shape}: dia data must be 2-D with one row per offset")
    return scipy_canonical(x.tocoo(), what, name, compact)


def _bsr(x: Any, shape: tuple, what: str, name: str, compact: bool) -> tuple:
    if len(shape) != 2:
        raise ValueError(f"{name}: {what}: a bsr matrix must be 2-D, got shape {shape}")
    data = getattr(x, "data", None)
    if not isinstance(data, np.ndarray) or data.ndim != 3:
        raise ValueError(f"{name}: {what} of shape {shape}: bsr data must be a 3-D array")
    r, c = int(data.shape[1]), int(data.shape[2])
    if r < 1 or c < 1 or shape[0] % r or shape[1] % c:
        raise ValueError(f"{name}: {what} of shape {shape}: block size {(r, c)} does not divide the shape")
    indptr = _index_array(getattr(x, "indptr", None), "indptr", what, name, shape)
    indices = _index_array(getattr(x, "indices", None), "indices", what, name, shape)
    if data.shape[0] != indices.size:
        raise ValueError(f"{name}: {what} of shape {shape}: {data.shape[0]} blocks for {indices.size} block indices")
    _check_indptr(indptr, shape[0] // r, indices.size, what, name, shape)
    nb = int(indptr[-1])
    _check_range(indices[:nb], shape[1] // c, "indices", what, name, shape)
    ids, counts = _nonempty(indptr)
    brow = np.repeat(ids, counts)
    rows = (brow[:, None, None] * r + np.arange(r)[None, :, None] + np.zeros((1, 1, c), np.int64)).ravel()
    cols = (indices[:nb].astype(np.int64)[:, None, None] * c + np.zeros((1, r, 1), np.int64)
            + np.arange(c)[None, None, :]).ravel()
    return shape, _from_coo(rows, cols, data[:nb].reshape(-1), shape[0], shape[1], compact)


def torch_canonical(t: Any, what: str, name: str, compact: bool = True) -> tuple:
    """A torch sparse tensor (COO, CSR or CSC layout) as ``(shape, Canonical)``, validated in
    NumPy like a SciPy input and never materialised densely (a huge declared shape with few
    entries stays O(nnz))."""
    import torch

    shape = check_shape(tuple(t.shape), what, name)
    n_rows, n_cols = flat_shape(shape, what, name)
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()

    def values(v):
        if v.dim() != 1:
            raise ValueError(f"{name}: {what} of shape {shape}: hybrid sparse tensors (dense value blocks) "
                             "are not supported; pass a dense tensor or a plain sparse one")
        return (v.float() if v.dtype == torch.bfloat16 else v).numpy()

    if t.layout == torch.sparse_csr:
        return shape, _compressed(t.crow_indices().numpy(), t.col_indices().numpy(), values(t.values()),
                                  "csr", shape, what, name, compact)
    if t.layout == torch.sparse_csc:
        return shape, _compressed(t.ccol_indices().numpy(), t.row_indices().numpy(), values(t.values()),
                                  "csc", shape, what, name, compact)
    if t.layout != torch.sparse_coo:
        raise TypeError(f"{name}: {what}: torch layout {t.layout} is not supported; "
                        "use a dense, sparse COO, CSR or CSC tensor")
    idx = t._indices().numpy()  # uncoalesced: validated here, duplicates summed below
    data = values(t._values())
    if idx.ndim != 2 or idx.shape[0] != len(shape) or data.shape[0] != idx.shape[1]:
        raise ValueError(f"{name}: {what} of shape {shape}: sparse indices of shape {idx.shape} do not match "
                         f"{data.shape[0]} values")
    arrs = [idx[i] for i in range(idx.shape[0])]
    for i, (a, dim) in enumerate(zip(arrs, shape)):
        _check_range(a, dim, f"indices[{i}]", what, name, shape)
    cols = np.ravel_multi_index(tuple(arrs[1:]), shape[1:]).astype(np.int64) if len(shape) > 2 else arrs[1]
    return shape, _from_coo(arrs[0], cols, data, n_rows, n_cols, compact)
