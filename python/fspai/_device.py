"""Device (CUDA) inputs: torch CUDA tensors, CuPy arrays and other DLPack producers.

This module turns a GPU array into a raw descriptor — device pointer, element type, the
flattened 2-D shape ``B = X.reshape(X.shape[0], -1)`` and its strides in elements — WITHOUT
importing torch or CuPy and without copying anything to the host. It reads the array's
``__cuda_array_interface__`` (torch, CuPy, Numba) or, failing that, its DLPack capsule
(``__dlpack__`` / ``__dlpack_device__``: JAX and any DLPack producer), parsed with ctypes.

The compiled core then builds the CSR form on the device and runs the Gram steps there
(``fspai._core.cuda_layer_spectra``); only degree counts and Lanczos vectors cross the bus.

:class:`DeviceLayer` offers the same interface as :class:`fspai._convert.LayerCSR` that the
metric code uses (``shape``, ``n_rows``, ``n_cols``, ``nnz``, ``density``, ``values``,
``row_degrees()``, ``col_degrees()``, ``weighted_degrees()``, ``core_tuple()``), and
:func:`spectra` is the one call site that sends a list of layers (host or device) to the core.
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
from typing import Any, Optional, Sequence

import numpy as np

from ._core_loader import _core

_INT32_MAX = 2**31 - 1

# Element type codes shared with csrc/cuda/layer_spectra_cuda.h (enum class DType).
DTYPE_CODES = {"bool": 0, "uint8": 1, "int8": 2, "int16": 3, "int32": 4, "int64": 5,
               "float16": 6, "bfloat16": 7, "float32": 8, "float64": 9}
_FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64")
_ITEMSIZE = {"bool": 1, "uint8": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8,
             "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
# __cuda_array_interface__ typestr (byte order '<' or '|'; '=' is native little endian here).
_TYPESTR = {"b1": "bool", "u1": "uint8", "i1": "int8", "i2": "int16", "i4": "int32", "i8": "int64",
            "f2": "float16", "f4": "float32", "f8": "float64"}
# DLPack (type code, bits) -> name. Codes: 0 int, 1 uint, 2 float, 4 bfloat, 6 bool.
_DLPACK_TYPES = {(6, 8): "bool", (1, 8): "uint8", (0, 8): "int8", (0, 16): "int16", (0, 32): "int32",
                 (0, 64): "int64", (2, 16): "float16", (4, 16): "bfloat16", (2, 32): "float32",
                 (2, 64): "float64"}
_DL_CUDA, _DL_CUDA_MANAGED = 2, 13


# ----------------------------------------------------------------------------- build / machine
def cuda_info() -> dict:
    """CUDA status of this build and machine: ``compiled``, ``runtime_version``, ``driver_version``,
    ``device_count``, ``status`` ("ok" or why not), ``devices``, ``architectures``. Never raises."""
    return dict(_core.cuda_info())


@functools.lru_cache(maxsize=None)
def compiled() -> bool:
    """Whether the compiled core has the CUDA kernels (``FSPAI_CUDA=ON`` build)."""
    return bool(_core.cuda_info()["compiled"])


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """Whether CUDA kernels are compiled in AND a CUDA device can be used on this machine
    (asked once per process: the answer cannot change while it runs)."""
    info = _core.cuda_info()
    return bool(info["compiled"]) and int(info["device_count"]) > 0


def set_route(route: str) -> None:
    """Route of the GPU pattern Gram steps: ``"auto"`` (cost model), ``"csr"`` or ``"bitmap"``.

    Process-wide; meant for benchmarks. Raises RuntimeError in a build without CUDA."""
    if route not in ("auto", "csr", "bitmap"):
        raise ValueError(f"route must be 'auto', 'csr' or 'bitmap', got {route!r}")
    _core.cuda_set_route(route)


def step_stats(reset: bool = False) -> dict:
    """Counters of the GPU step operator since the last reset: ``rounds`` (kernel launch pairs),
    ``vectors``, ``seconds`` spent in the step (staging, transfers and kernels), ``bytes_h2d``,
    ``bytes_d2h``. The rest of a solve's wall time is the host-side Lanczos driver."""
    return dict(_core.cuda_step_stats(reset))


# ----------------------------------------------------------------------------- array parsing
def _dlpack_device(x: Any) -> Optional[tuple]:
    fn = getattr(type(x), "__dlpack_device__", None)
    if fn is None:
        return None
    try:
        dev = fn(x)
        return int(dev[0]), int(dev[1])
    except Exception:  # a producer that cannot say: not a device array for us
        return None


def _cai(x: Any) -> Optional[dict]:
    try:
        cai = getattr(x, "__cuda_array_interface__", None)
    except Exception:  # e.g. torch raises for tensors that require grad: caller detaches first
        return None
    return cai if isinstance(cai, dict) else None


def _detach(x: Any) -> Any:
    """torch tensors that require grad refuse __cuda_array_interface__; detach (no copy)."""
    if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
        return x.detach()
    return x


def is_device_array(x: Any) -> bool:
    """True for arrays that live in CUDA device memory (torch CUDA tensor, CuPy array, ...).

    Never imports torch/CuPy; host arrays, scipy matrices and CPU tensors give False."""
    if isinstance(x, np.ndarray) or x is None:
        return False
    x = _detach(x)
    if _cai(x) is not None:
        return True
    dev = _dlpack_device(x)
    return dev is not None and dev[0] in (_DL_CUDA, _DL_CUDA_MANAGED)


@dataclasses.dataclass(frozen=True)
class DeviceMatrix:
    """A device array seen as the 2-D matrix ``B = X.reshape(shape[0], -1)``.

    ``ptr`` is the address of ``B[0, 0]``; ``B[r, c]`` is at ``ptr + (r*stride_row +
    c*stride_col) * itemsize``. ``owner`` keeps the producer (and any DLPack capsule) alive.
    """

    ptr: int
    dtype: str
    shape: tuple
    n_rows: int
    n_cols: int
    stride_row: int
    stride_col: int
    device: int
    owner: Any = dataclasses.field(default=None, repr=False, compare=False)

    def descriptor(self) -> tuple:
        """The tuple the core takes: (ptr, dtype_code, n_rows, n_cols, stride_row, stride_col, device)."""
        return (self.ptr, DTYPE_CODES[self.dtype], self.n_rows, self.n_cols, self.stride_row, self.stride_col,
                self.device)


def _flatten(shape: tuple, strides: tuple, what: str, name: str) -> tuple:
    """(n_rows, n_cols, stride_row, stride_col) of reshape(shape[0], -1) as a strided view."""
    if len(shape) < 2:
        raise ValueError(f"{name}: {what} must have at least 2 dims (out, in[, k...]), got shape {tuple(shape)}")
    n_rows = int(shape[0])
    n_cols = 1
    for s in shape[1:]:
        n_cols *= int(s)
    if n_rows > _INT32_MAX or n_cols > _INT32_MAX:
        raise ValueError(f"{name}: {what} of shape {tuple(shape)} flattens to ({n_rows}, {n_cols}); "
                         "sizes above 2^31-1 are not supported (int32 column indices)")
    if n_rows * n_cols == 0:
        return n_rows, n_cols, n_cols, 1
    # trailing dims (size > 1) must merge into one stride: stride[i] == stride[i+1] * shape[i+1]
    dims = [(int(s), int(st)) for s, st in zip(shape[1:], strides[1:]) if int(s) != 1]
    stride_col = dims[-1][1] if dims else 1
    for (s0, st0), (s1, st1) in zip(dims[:-1], dims[1:]):
        if st0 != st1 * s1:
            raise ValueError(f"{name}: {what} of shape {tuple(shape)} with strides {tuple(strides)} (elements) "
                             "cannot be flattened to (out, in) without a copy; pass a contiguous array "
                             "(e.g. x.contiguous())")
    return n_rows, n_cols, int(strides[0]), stride_col


def _from_cai(x: Any, cai: dict, what: str, name: str) -> DeviceMatrix:
    shape = tuple(int(s) for s in cai["shape"])
    typestr = str(cai["typestr"])
    dtype = _TYPESTR.get(typestr[1:])
    if typestr[:1] == ">" or dtype is None:
        raise TypeError(f"{name}: {what} has unsupported device dtype {typestr!r}")
    item = _ITEMSIZE[dtype]
    ptr = int(cai["data"][0] or 0)
    strides_b = cai.get("strides")
    if strides_b is None:  # C-contiguous
        strides, acc = [], 1
        for s in reversed(shape):
            strides.append(acc)
            acc *= max(s, 1)
        strides = tuple(reversed(strides))
    else:
        if any(int(b) % item and n != 1 for b, n in zip(strides_b, shape)):  # size-1 dims: stride unused
            raise ValueError(f"{name}: {what} has strides {tuple(strides_b)} bytes, not a multiple of the item size")
        strides = tuple(int(b) // item for b in strides_b)
    dev = _dlpack_device(x)
    device = dev[1] if dev is not None else 0
    n_rows, n_cols, sr, sc = _flatten(shape, strides, what, name)
    return DeviceMatrix(ptr, dtype, shape, n_rows, n_cols, sr, sc, device, owner=x)


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


def _capsule_pointer(capsule: Any) -> int:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return int(get(capsule, b"dltensor") or 0)


def parse_dltensor(t: _DLTensor, owner: Any, what: str, name: str) -> DeviceMatrix:
    """DeviceMatrix of a DLTensor (the first member of a legacy DLManagedTensor)."""
    if t.device.device_type not in (_DL_CUDA, _DL_CUDA_MANAGED):
        raise TypeError(f"{name}: {what} is not in CUDA memory (DLPack device type {t.device.device_type})")
    dtype = _DLPACK_TYPES.get((int(t.dtype.code), int(t.dtype.bits)))
    if dtype is None or t.dtype.lanes != 1:
        raise TypeError(f"{name}: {what} has unsupported DLPack dtype (code {t.dtype.code}, bits {t.dtype.bits}, "
                        f"lanes {t.dtype.lanes})")
    ndim = int(t.ndim)
    shape = tuple(int(t.shape[i]) for i in range(ndim))
    if t.strides:
        strides = tuple(int(t.strides[i]) for i in range(ndim))
    else:
        strides, acc = [], 1
        for s in reversed(shape):
            strides.append(acc)
            acc *= max(s, 1)
        strides = tuple(reversed(strides))
    ptr = int(t.data or 0) + int(t.byte_offset)
    n_rows, n_cols, sr, sc = _flatten(shape, strides, what, name)
    return DeviceMatrix(ptr, dtype, shape, n_rows, n_cols, sr, sc, int(t.device.device_id), owner=owner)


def _from_dlpack(x: Any, what: str, name: str) -> DeviceMatrix:
    try:
        capsule = x.__dlpack__()
    except Exception as exc:  # e.g. sparse or quantized tensors
        raise TypeError(f"{name}: {what} ({type(x).__name__}) cannot be exported as a dense CUDA array "
                        f"({exc}); pass a dense tensor") from exc
    addr = _capsule_pointer(capsule)
    if not addr:
        raise TypeError(f"{name}: {what}.__dlpack__() did not return a DLPack tensor capsule")
    t = _DLTensor.from_address(addr)
    # the capsule stays unconsumed: its destructor releases the producer's tensor when `owner` dies
    return parse_dltensor(t, (x, capsule), what, name)


def describe(x: Any, what: str = "mask", name: str = "layer") -> DeviceMatrix:
    """DeviceMatrix of a CUDA array (no copy). TypeError for host arrays and unsupported dtypes."""
    x = _detach(x)
    cai = _cai(x)
    if cai is not None:
        return _from_cai(x, cai, what, name)
    dev = _dlpack_device(x)
    if dev is not None and dev[0] in (_DL_CUDA, _DL_CUDA_MANAGED) and hasattr(x, "__dlpack__"):
        return _from_dlpack(x, what, name)
    raise TypeError(f"{name}: {what} is not a CUDA array (no __cuda_array_interface__ or CUDA DLPack device)")


# ----------------------------------------------------------------------------- layers
class DeviceLayer:
    """A layer whose mask (and optional weight) live on a CUDA device.

    Same interface as :class:`fspai._convert.LayerCSR` for the metric code. Degrees are
    computed on the device on first use (one batched pass) and cached; the mask is never
    copied to the host. ``values`` is the weight's :class:`DeviceMatrix` (or None), so
    ``layer.values is not None`` means "weighted" as for host layers.
    """

    def __init__(self, name: str, mask: DeviceMatrix, weight: Optional[DeviceMatrix] = None):
        self.name = name
        self.mask = mask
        self.values = weight
        self.shape = mask.shape
        self.n_rows = mask.n_rows
        self.n_cols = mask.n_cols
        self._deg: Optional[dict] = None

    @property
    def stored_shape(self) -> tuple:
        """(n_rows, n_cols): a device layer stores every row and column (nothing is dropped)."""
        return (self.n_rows, self.n_cols)

    def original_columns(self, cols: np.ndarray) -> np.ndarray:
        """Stored column indices → input column indices (the identity here)."""
        return np.asarray(cols)

    def weighted_group_degrees(self, groups: Sequence) -> list:
        """Per column group: ``(E_w, n_in_w, n_out_w)`` of the nonzero pattern of ``|W ⊙ M|``
        restricted to the group's columns, computed on the device (one pass over the layer)."""
        if self.values is None:
            raise ValueError(f"{self.name}: weighted group degrees need a weight")
        groups = [np.asarray(g, dtype=np.int32).tolist() for g in groups]
        return [tuple(t) for t in _core.cuda_weighted_group_degrees(self.core_tuple(True), groups)]

    def core_tuple(self, weighted: bool = True) -> tuple:
        w = self.values.descriptor() if (weighted and self.values is not None) else None
        return (self.mask.descriptor(), w)

    def _degrees(self) -> dict:
        if self._deg is None:
            self._deg = dict(_core.cuda_degrees([self.core_tuple(True)])[0])
        return self._deg

    @property
    def nnz(self) -> int:
        return int(self._degrees()["row"].sum())

    @property
    def density(self) -> float:
        total = self.n_rows * self.n_cols
        return self.nnz / total if total else float("nan")

    def row_degrees(self) -> np.ndarray:
        return self._degrees()["row"]

    def col_degrees(self) -> np.ndarray:
        return self._degrees()["col"]

    def weighted_degrees(self) -> tuple:
        """(row, column) degrees of the nonzero pattern of |W ⊙ M|."""
        d = self._degrees()
        if self.values is None:
            return d["row"], d["col"]
        return d["wrow"], d["wcol"]

    def __repr__(self) -> str:
        return (f"DeviceLayer({self.name!r}, shape={self.shape}, dtype={self.mask.dtype}, cuda:{self.mask.device}, "
                f"weighted={self.values is not None})")


def to_device_layer(mask: Any, weight: Any = None, *, name: str = "layer") -> DeviceLayer:
    """Describe a (mask, weight) pair of CUDA arrays as a :class:`DeviceLayer` (no copy).

    TypeError: weight not on a CUDA device while the mask is, unsupported dtypes (masks: bool,
    int, float with values in {0, 1}, checked on the device; weights: float16/bfloat16/
    float32/float64). ValueError: shapes differ, < 2 dims, sizes above 2^31-1, arrays on
    different devices, or views that cannot be flattened without a copy.
    """
    m = describe(mask, "mask", name)
    w = None
    if weight is not None:
        if not is_device_array(weight):
            raise TypeError(f"{name}: the mask is a CUDA array but the weight is not ({type(weight).__name__}); "
                            "pass both on the same CUDA device")
        w = describe(weight, "weight", name)
        if w.shape != m.shape:
            raise ValueError(f"{name}: mask shape {m.shape} and weight shape {w.shape} differ")
        if w.dtype not in _FLOAT_NAMES:
            raise TypeError(f"{name}: weight of shape {w.shape} has dtype {w.dtype}; "
                            "weights must be float16, bfloat16, float32 or float64")
        if w.device != m.device:
            raise ValueError(f"{name}: mask is on cuda:{m.device} but weight is on cuda:{w.device}")
    return DeviceLayer(name, m, w)


def is_device_layer(layer: Any) -> bool:
    return isinstance(layer, DeviceLayer)


def spectra(layers: Sequence[Any], weighted: bool, **kwargs: Any) -> list:
    """The one call site for batched spectra: ``_core.layer_spectra`` for host layers,
    ``_core.cuda_layer_spectra`` for device layers (same keyword arguments, same result dicts).

    Mixing host and device layers in one call is a TypeError (pass them separately)."""
    layers = list(layers)
    n_dev = sum(isinstance(ly, DeviceLayer) for ly in layers)
    tuples = [ly.core_tuple(weighted) for ly in layers]
    if n_dev == 0:
        return _core.layer_spectra(tuples, **kwargs)
    if n_dev != len(layers):
        raise TypeError("cannot mix CUDA and host layers in one call; pass them in separate calls")
    if not available():
        raise RuntimeError(f"fspai CUDA path unavailable: {cuda_info()['status']}")
    return _core.cuda_layer_spectra(tuples, **kwargs)
