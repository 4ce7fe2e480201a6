"""The one conversion point: every mask/weight input becomes a :class:`LayerCSR` here.

Accepted inputs: numpy arrays, torch tensors (any device: copied to host), scipy.sparse
matrices. A tensor with ≥ 2 dims is flattened to ``B = X.reshape(X.shape[0], -1)`` (SPEC §1):
rows = outputs, columns = inputs. Masks are bool/int/float with values in {0, 1}; weights are
float16/bfloat16/float32/float64. The weighted matrix is ``|W ⊙ M|`` on the mask's support.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

_INT32_MAX = np.iinfo(np.int32).max


def _framework(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return "numpy"
    if sp.issparse(x):
        return "scipy"
    mod = type(x).__module__
    if mod.startswith("torch"):
        import torch  # noqa: F401  (only reached when x is a torch object)

        if isinstance(x, torch.Tensor):
            return "torch"
    return "unknown"


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__}{'' if shape is None else ' of shape ' + str(tuple(shape))}"


@dataclasses.dataclass(frozen=True)
class LayerCSR:
    """A layer as CSR buffers for the core (rows = outputs, columns = inputs).

    ``values`` holds ``|W|`` at the mask's nonzeros (same order as ``indices``; may contain
    zeros where a kept weight is exactly 0), or ``None`` for a pattern-only layer.
    """

    name: str
    shape: tuple
    n_rows: int
    n_cols: int
    indptr: np.ndarray
    indices: np.ndarray
    values: Optional[np.ndarray] = None

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    @property
    def density(self) -> float:
        total = self.n_rows * self.n_cols
        return self.nnz / total if total else float("nan")

    def core_tuple(self, weighted: bool = True) -> tuple:
        vals = self.values if weighted else None
        return (self.indptr, self.indices, vals, self.n_rows, self.n_cols)

    def row_degrees(self) -> np.ndarray:
        return np.diff(self.indptr)

    def col_degrees(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=self.n_cols)

    def weighted_degrees(self) -> tuple:
        """(row, column) degrees of the nonzero pattern of |W ⊙ M|."""
        if self.values is None:
            return self.row_degrees(), self.col_degrees()
        nz = self.values != 0
        rows = np.repeat(np.arange(self.n_rows), np.diff(self.indptr))
        return (np.bincount(rows[nz], minlength=self.n_rows),
                np.bincount(self.indices[nz], minlength=self.n_cols))


_WARNED_DEVICES: set = set()


def _warn_host_copy(device: str) -> None:
    if device not in _WARNED_DEVICES:  # once per device type and process
        _WARNED_DEVICES.add(device)
        warnings.warn(f"fspai was built without {device.upper()} kernels; {device} tensors are copied to the "
                      "host and measured there", RuntimeWarning, stacklevel=4)


def _to_numpy(x: Any, what: str, name: str) -> np.ndarray:
    fw = _framework(x)
    if fw == "numpy":
        arr = x
    elif fw == "torch":
        t = x.detach()
        if t.is_sparse or t.layout != __import__("torch").strided:
            t = t.to_dense()
        if t.device.type != "cpu":
            _warn_host_copy(t.device.type)
            t = t.cpu()  # no device kernels in this build: measure on the host
        if t.dtype == __import__("torch").bfloat16:
            t = t.float()
        arr = t.numpy()
    else:
        raise TypeError(
            f"{name}: {what} must be a numpy array, torch tensor or scipy.sparse matrix, got {_describe(x)}"
        )
    if arr.dtype == object:
        raise TypeError(f"{name}: {what} has dtype object; pass a numeric array")
    return arr


def _flat_shape(shape: tuple, what: str, name: str) -> tuple:
    if len(shape) < 2:
        raise ValueError(
            f"{name}: {what} must have at least 2 dims (out, in[, k...]), got shape {tuple(shape)}"
        )
    n_rows = int(shape[0])
    n_cols = int(np.prod(shape[1:], dtype=np.int64)) if n_rows else int(np.prod(shape[1:], dtype=object))
    if n_cols > _INT32_MAX or n_rows > _INT32_MAX:
        raise ValueError(
            f"{name}: {what} of shape {tuple(shape)} flattens to ({n_rows}, {n_cols}); "
            "sizes above 2^31-1 are not supported (int32 column indices)"
        )
    return n_rows, int(n_cols)


def _check_mask_values(vals: np.ndarray, what: str, name: str, shape: tuple) -> None:
    if vals.dtype == np.bool_:
        return
    if vals.dtype.kind not in "iuf":
        raise TypeError(f"{name}: {what} of shape {shape} has unsupported dtype {vals.dtype}; "
                        "use bool, int or float with values in {0, 1}")
    if vals.dtype.kind == "f" and not np.isfinite(vals).all():
        raise ValueError(f"{name}: {what} of shape {shape} contains NaN or Inf")
    bad = (vals != 0) & (vals != 1)
    if bad.any():
        example = vals[bad].flat[0]
        raise ValueError(
            f"{name}: {what} of shape {shape} is not binary: {int(bad.sum())} entries are not 0 or 1 "
            f"(e.g. {example!r}); pass a 0/1 mask, and the weights through `weight`"
        )


def _check_weight_dtype(dtype: np.dtype, name: str, shape: tuple) -> None:
    if dtype.kind != "f":
        raise TypeError(f"{name}: weight of shape {shape} has dtype {dtype}; "
                        "weights must be float16, bfloat16, float32 or float64")


def _align_sparse(indptr: np.ndarray, indices: np.ndarray, w: sp.csr_matrix, n_cols: int) -> np.ndarray:
    """Values of the canonical CSR ``w`` at the mask's positions (0 where ``w`` has no entry)."""
    if np.array_equal(w.indptr, indptr) and np.array_equal(w.indices, indices):
        return w.data  # same pattern: the common case (weights stored on the mask's support)
    rows_m = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    keys_m = rows_m * n_cols + indices
    rows_w = np.repeat(np.arange(w.shape[0], dtype=np.int64), np.diff(w.indptr))
    keys_w = rows_w * n_cols + w.indices
    pos = np.minimum(np.searchsorted(keys_w, keys_m), max(len(keys_w) - 1, 0))
    if len(keys_w) == 0:
        return np.zeros(len(keys_m), dtype=w.dtype)
    return np.where(keys_w[pos] == keys_m, w.data[pos], 0).astype(w.dtype, copy=False)


def to_layer(mask: Any, weight: Any = None, *, name: str = "layer") -> LayerCSR:
    """Convert one (mask, weight) pair to a validated :class:`LayerCSR`.

    Raises ``TypeError`` for unsupported types/dtypes or mixed frameworks (torch with numpy/scipy)
    and ``ValueError`` for bad shapes, non-binary masks, NaN/Inf weights or oversized layers,
    always naming the layer and the shapes.
    """
    fw_m = _framework(mask)
    if fw_m == "unknown":
        raise TypeError(
            f"{name}: mask must be a numpy array, torch tensor or scipy.sparse matrix, got {_describe(mask)}"
        )
    if weight is not None:
        fw_w = _framework(weight)
        if fw_w == "unknown":
            raise TypeError(
                f"{name}: weight must be a numpy array, torch tensor or scipy.sparse matrix, got {_describe(weight)}"
            )
        if (fw_m == "torch") != (fw_w == "torch"):
            raise TypeError(
                f"{name}: mask and weight come from different frameworks ({fw_m} vs {fw_w}); "
                "pass both as torch tensors or both as numpy/scipy arrays"
            )

    if fw_m == "scipy":
        shape = tuple(int(s) for s in mask.shape)
        n_rows, n_cols = _flat_shape(shape, "mask", name)
        csr = sp.csr_matrix(mask)  # copy; canonicalise below
        csr.sum_duplicates()
        _check_mask_values(csr.data, "mask", name, shape)
        csr.eliminate_zeros()
        csr.sort_indices()
        indptr = csr.indptr.astype(np.int64, copy=False)
        indices = csr.indices.astype(np.int32, copy=False)
        rows = cols = None
    else:
        arr = _to_numpy(mask, "mask", name)
        shape = tuple(int(s) for s in arr.shape)
        n_rows, n_cols = _flat_shape(shape, "mask", name)
        b = arr.reshape(n_rows, n_cols)
        _check_mask_values(b, "mask", name, shape)
        rows, cols = np.nonzero(b)  # row-major: columns sorted within each row
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        if rows.size:
            np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        indices = cols.astype(np.int32)

    values = None
    if weight is not None:
        if sp.issparse(weight):
            wshape = tuple(int(s) for s in weight.shape)
        else:
            warr = _to_numpy(weight, "weight", name)
            wshape = tuple(int(s) for s in warr.shape)
        if wshape != shape:
            raise ValueError(f"{name}: mask shape {shape} and weight shape {wshape} differ")
        if sp.issparse(weight):
            wcsr = sp.csr_matrix(weight)
            _check_weight_dtype(wcsr.dtype, name, shape)
            if not np.isfinite(wcsr.data).all():
                raise ValueError(f"{name}: weight of shape {shape} contains NaN or Inf")
            wcsr.sum_duplicates()  # canonical: sorted, unique
            picked = _align_sparse(indptr, indices, wcsr, n_cols)
            wdtype = wcsr.dtype
        else:
            _check_weight_dtype(warr.dtype, name, shape)
            w2 = warr.reshape(n_rows, n_cols)
            if not np.isfinite(w2).all():
                raise ValueError(f"{name}: weight of shape {shape} contains NaN or Inf")
            if rows is None:
                r = np.repeat(np.arange(n_rows), np.diff(indptr))
                picked = w2[r, indices]
            else:
                picked = w2[rows, cols]
            wdtype = w2.dtype
        out_dtype = np.float64 if wdtype == np.float64 else np.float32
        values = np.abs(np.asarray(picked)).astype(out_dtype, copy=False)
        values = np.ascontiguousarray(values)
    return LayerCSR(name=name, shape=shape, n_rows=n_rows, n_cols=n_cols,
                    indptr=np.ascontiguousarray(indptr), indices=np.ascontiguousarray(indices),
                    values=values)


def to_layers(masks: Any, weights: Any = None, *, names: Any = None) -> list:
    """Convert a sequence of masks (and optional aligned weights) to LayerCSRs."""
    if isinstance(masks, (np.ndarray,)) or sp.issparse(masks) or _framework(masks) == "torch":
        raise TypeError("expected a sequence of masks (one per layer), got a single array; "
                        "wrap it in a list")
    masks = list(masks)
    if weights is None:
        weights = [None] * len(masks)
    else:
        weights = list(weights)
        if len(weights) != len(masks):
            raise ValueError(f"got {len(masks)} masks but {len(weights)} weights")
    if names is None:
        names = [f"layer{i}" for i in range(len(masks))]
    return [to_layer(m, w, name=n) for m, w, n in zip(masks, weights, names)]

