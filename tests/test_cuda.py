"""The CUDA path: device-array parsing (runs everywhere) and the GPU kernels against the CPU path
(skipped, with the reason, where no CUDA build or no GPU is present).

GPU tests compare every result key of ``_core.cuda_layer_spectra`` with ``_core.layer_spectra`` on
the same data moved to the host (values, subgraph tables, batch shapes, errors), and the layer
values with a dense float64 SVD.
"""
from __future__ import annotations

import ctypes
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fspai
from fspai import _core, _device

INFO = _device.cuda_info()


class HostLayer:
    """Host CSR of a dense (mask, weight) pair in the core's tuple format, built here (not by
    fspai._convert) so stored and original column ids coincide whatever the converter drops."""

    def __init__(self, mask, weight=None):
        shape = np.shape(mask)
        m2d = np.asarray(mask).reshape(shape[0], int(np.prod(shape[1:]))) != 0
        csr = sp.csr_matrix(m2d)
        csr.sort_indices()
        self.m2d, self.n_rows, self.n_cols = m2d, m2d.shape[0], m2d.shape[1]
        self.indptr = csr.indptr.astype(np.int64)
        self.indices = csr.indices.astype(np.int32)
        self.values = None
        if weight is not None:
            w2d = np.asarray(weight).reshape(m2d.shape)
            dt = np.float64 if w2d.dtype == np.float64 else np.float32
            rows = np.repeat(np.arange(self.n_rows), np.diff(self.indptr))
            self.values = np.abs(w2d[rows, self.indices]).astype(dt)

    @property
    def nnz(self):
        return int(self.indptr[-1])

    def core_tuple(self, weighted=True):
        return (self.indptr, self.indices, self.values if weighted else None, self.n_rows, self.n_cols)

    def row_degrees(self):
        return self.m2d.sum(axis=1)

    def col_degrees(self):
        return self.m2d.sum(axis=0)


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


TORCH = _torch_cuda()
GPU_REASON = (
    "fspai was built without CUDA (FSPAI_CUDA=ON pip install . to enable)" if not INFO["compiled"]
    else f"no usable CUDA device: {INFO['status']}" if INFO["device_count"] == 0
    else "torch with CUDA is not installed" if TORCH is None else "")
gpu = pytest.mark.skipif(bool(GPU_REASON), reason=GPU_REASON or "gpu available")


# ----------------------------------------------------------------------------- fakes (CPU)
class FakeCAI:
    """An object exposing only __cuda_array_interface__ (like a Numba device array)."""

    def __init__(self, shape, typestr="|b1", strides=None, ptr=0x7F0000000000, device=None):
        self.__cuda_array_interface__ = {"shape": tuple(shape), "typestr": typestr, "data": (ptr, False),
                                         "strides": strides, "version": 3}
        if device is not None:
            self._device = device

    def __dlpack_device__(self):
        return (2, getattr(self, "_device", 0))


def test_build_info_reports_cuda_keys():
    info = fspai.build_info()
    for key in ("cuda", "cuda_version", "cuda_architectures", "cuda_devices", "cuda_status"):
        assert key in info
    assert info["cuda"] == INFO["compiled"]
    if info["cuda"]:
        assert "90" in info["cuda_architectures"].split()[-1] or "90" in info["cuda_architectures"]
        assert info["cuda_version"].count(".") == 1
    else:
        assert info["cuda_status"] == "fspai was not compiled with CUDA"


def test_cuda_info_never_raises_and_is_consistent():
    assert set(INFO) >= {"compiled", "runtime_version", "driver_version", "device_count", "status", "devices"}
    assert (INFO["status"] == "ok") == (INFO["device_count"] > 0)
    assert _device.available() == (INFO["compiled"] and INFO["device_count"] > 0)


def test_host_arrays_are_not_device_arrays():
    import scipy.sparse as sp

    assert not _device.is_device_array(np.ones((2, 2)))
    assert not _device.is_device_array(sp.eye(3, format="csr"))
    assert not _device.is_device_array(None)
    assert not _device.is_device_array([[1, 0]])
    torch = pytest.importorskip("torch")
    assert not _device.is_device_array(torch.ones(2, 2))
    assert not _device.is_device_array(torch.ones(2, 2, requires_grad=True))


def test_cai_contiguous_conv_is_flattened():
    m = _device.describe(FakeCAI((8, 3, 2, 2), "|u1", device=1), "mask", "conv")
    assert (m.n_rows, m.n_cols, m.stride_row, m.stride_col, m.device) == (8, 12, 12, 1, 1)
    assert m.dtype == "uint8" and m.shape == (8, 3, 2, 2)
    assert m.descriptor() == (0x7F0000000000, _device.DTYPE_CODES["uint8"], 8, 12, 12, 1, 1)


def test_cai_strided_views():
    # transposed float32 (3, 5) view of a (5, 3) buffer: byte strides (4, 12)
    m = _device.describe(FakeCAI((3, 5), "<f4", strides=(4, 12)))
    assert (m.n_rows, m.n_cols, m.stride_row, m.stride_col) == (3, 5, 1, 3)
    # size-1 dims with arbitrary strides merge
    m = _device.describe(FakeCAI((4, 1, 6), "<f8", strides=(48 * 8, 7, 8)))
    assert (m.n_cols, m.stride_row, m.stride_col) == (6, 48, 1)
    # a sliced conv weight whose trailing dims cannot merge
    with pytest.raises(ValueError, match="cannot be flattened"):
        _device.describe(FakeCAI((4, 3, 5), "<f4", strides=(4 * 40, 4 * 10, 4)), "weight", "conv2")


def test_cai_bad_inputs():
    with pytest.raises(TypeError, match="unsupported device dtype"):
        _device.describe(FakeCAI((2, 2), "<c8"))
    with pytest.raises(TypeError, match="unsupported device dtype"):
        _device.describe(FakeCAI((2, 2), ">f4"))
    with pytest.raises(ValueError, match="at least 2 dims"):
        _device.describe(FakeCAI((5,), "|b1"), "mask", "fc")
    with pytest.raises(ValueError, match="not a multiple"):
        _device.describe(FakeCAI((2, 2), "<f4", strides=(8, 2)))
    with pytest.raises(ValueError, match="2\\^31-1"):
        _device.describe(FakeCAI((2, 2**31), "|b1"))
    with pytest.raises(TypeError, match="not a CUDA array"):
        _device.describe(np.zeros((2, 2)))


def test_device_layer_validation():
    mask = FakeCAI((4, 6), "|b1")
    with pytest.raises(TypeError, match="weight is not"):
        _device.to_device_layer(mask, np.ones((4, 6), np.float32), name="fc1")
    with pytest.raises(ValueError, match="fc1: mask shape \\(4, 6\\) and weight shape \\(4, 5\\) differ"):
        _device.to_device_layer(mask, FakeCAI((4, 5), "<f4"), name="fc1")
    with pytest.raises(TypeError, match="weights must be float"):
        _device.to_device_layer(mask, FakeCAI((4, 6), "<i4"), name="fc1")
    with pytest.raises(ValueError, match="cuda:0 but weight is on cuda:1"):
        _device.to_device_layer(mask, FakeCAI((4, 6), "<f4", device=1), name="fc1")
    ly = _device.to_device_layer(mask, FakeCAI((4, 6), "<f2"), name="fc1")
    assert ly.values is not None and ly.shape == (4, 6) and (ly.n_rows, ly.n_cols) == (4, 6)
    assert ly.core_tuple(weighted=False)[1] is None
    assert ly.core_tuple(weighted=True)[1][1] == _device.DTYPE_CODES["float16"]


class _DLManaged(ctypes.Structure):
    _fields_ = [("dl_tensor", _device._DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


class FakeDLPack:
    """A DLPack-only producer (like a JAX array): a legacy 'dltensor' capsule, CUDA device."""

    def __init__(self, shape, code, bits, strides=None, device=(2, 0), offset=0):
        self._shape = (ctypes.c_int64 * len(shape))(*shape)
        self._strides = (ctypes.c_int64 * len(shape))(*strides) if strides else None
        t = _DLManaged()
        t.dl_tensor.data = 0x7E0000000000
        t.dl_tensor.device.device_type, t.dl_tensor.device.device_id = device
        t.dl_tensor.ndim = len(shape)
        t.dl_tensor.dtype.code, t.dl_tensor.dtype.bits, t.dl_tensor.dtype.lanes = code, bits, 1
        t.dl_tensor.shape = ctypes.cast(self._shape, ctypes.POINTER(ctypes.c_int64))
        if self._strides is not None:
            t.dl_tensor.strides = ctypes.cast(self._strides, ctypes.POINTER(ctypes.c_int64))
        t.dl_tensor.byte_offset = offset
        self._managed = t
        self._device = device

    def __dlpack_device__(self):
        return self._device

    def __dlpack__(self, stream=None):
        new = ctypes.pythonapi.PyCapsule_New
        new.restype = ctypes.py_object
        new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        return new(ctypes.addressof(self._managed), b"dltensor", None)


class FailingDLPack(FakeDLPack):
    def __dlpack__(self, stream=None):
        raise RuntimeError("sparse tensors cannot be exported")


def test_dlpack_export_failure_is_a_type_error():
    with pytest.raises(TypeError, match="cannot be exported as a dense CUDA array"):
        _device.describe(FailingDLPack((3, 5), code=6, bits=8), "mask", "fc")


def test_dlpack_capsule_path():
    x = FakeDLPack((16, 4, 3, 3), code=4, bits=16, device=(2, 3), offset=64)  # bfloat16 conv weight
    assert _device.is_device_array(x)
    m = _device.describe(x, "weight", "conv")
    assert (m.dtype, m.n_rows, m.n_cols, m.stride_row, m.stride_col, m.device) == ("bfloat16", 16, 36, 36, 1, 3)
    assert m.ptr == 0x7E0000000000 + 64
    t = _device.describe(FakeDLPack((3, 5), code=6, bits=8, strides=(1, 3)))  # bool, transposed
    assert (t.dtype, t.stride_row, t.stride_col) == ("bool", 1, 3)
    assert not _device.is_device_array(FakeDLPack((3, 5), code=6, bits=8, device=(1, 0)))  # host DLPack
    with pytest.raises(TypeError, match="unsupported DLPack dtype"):
        _device.describe(FakeDLPack((3, 5), code=5, bits=64))  # complex


def test_device_entry_points_without_gpu():
    if _device.available():
        pytest.skip("a usable CUDA device is present")
    ly = _device.to_device_layer(FakeCAI((4, 6), "|b1"), name="fc")
    with pytest.raises(RuntimeError, match="not compiled with CUDA|unavailable"):
        _device.spectra([ly], weighted=False, subgraphs=False)
    expected = "not compiled with CUDA" if not INFO["compiled"] else INFO["status"]
    with pytest.raises(RuntimeError, match=expected):
        _core.cuda_layer_spectra([ly.core_tuple(False)])
    with pytest.raises(RuntimeError, match=expected):
        _core.cuda_degrees([ly.core_tuple(False)])
    host = HostLayer(np.eye(4, 6, dtype=bool))
    with pytest.raises(TypeError, match="cannot mix"):
        _device.spectra([host, ly], weighted=False, subgraphs=False)


def test_spectra_host_layers_go_to_the_cpu_core():
    host = [HostLayer(np.eye(4, 6, dtype=bool)), HostLayer(np.ones((3, 3), bool))]
    res = _device.spectra(host, weighted=False, k=2, subgraphs=False)
    np.testing.assert_allclose(res[0]["sv"], [1, 1], atol=1e-12)
    np.testing.assert_allclose(res[1]["sv"], [3, 0], atol=1e-7)


# ----------------------------------------------------------------------------- host emulation (CPU)
# _core._cuda_host_emulation runs the CUDA path's host logic (degree groups, column order, CSR
# slices per subgraph, orientation, value scaling, the shared driver, result assembly) with a host
# twin of the GPU step kernels. Only the device kernels themselves are left for the GPU tests.
def _emulated(layers, weighted, route="csr", **kw):
    return _core._cuda_host_emulation([ly.core_tuple(weighted) for ly in layers], route=route, **kw)


def _host_case(shape, density, seed, wdtype=np.float32, scale=1.0):
    rng = np.random.default_rng(seed)
    m = rng.random(shape) < density
    w = (rng.standard_normal(shape) * scale).astype(wdtype)
    return HostLayer(m, w)


@pytest.mark.parametrize("route", ["csr", "bitmap", "auto"])
@pytest.mark.parametrize("shape,density", [((64, 288), 0.1), ((300, 40), 0.3), ((128, 512), 0.5),
                                           ((10, 3, 3, 3), 0.6), ((256, 2304), 0.01)])
def test_host_emulation_matches_cpu(route, shape, density):
    ly = _host_case(shape, density, seed=len(shape) * 100 + int(density * 100))
    _compare(_emulated([ly], True, route), _core.layer_spectra([ly.core_tuple(True)]), weighted=True)


@pytest.mark.parametrize("k,min_nodes,subgraphs", [(1, 2, True), (3, 3, True), (2, 2, False)])
def test_host_emulation_batch_options(k, min_nodes, subgraphs):
    layers = [_host_case((48, 200), 0.08, seed=s, wdtype=np.float64 if s % 2 else np.float32) for s in range(6)]
    kw = dict(k=k, min_nodes=min_nodes, subgraphs=subgraphs)
    _compare(_emulated(layers, True, **kw), _core.layer_spectra([ly.core_tuple(True) for ly in layers], **kw),
             weighted=True)
    pat = _emulated(layers, False, **kw)
    _compare(pat, _core.layer_spectra([ly.core_tuple(False) for ly in layers], **kw), weighted=False)
    assert all(r["wsv"] is None for r in pat)
    if not subgraphs:  # weighted only (pattern=False), as batch_singular_values asks
        wonly = _emulated(layers, True, pattern=False, **kw)
        assert all(r["sv"] is None for r in wonly)
        _compare([dict(r, sv=None) for r in _emulated(layers, True, **kw)], wonly, weighted=True)


def test_host_emulation_edge_cases():
    cases = [np.zeros((5, 7), bool), np.ones((3, 40), bool), np.eye(6, 9, dtype=bool), np.eye(1, 4, 1, dtype=bool),
             np.zeros((0, 4), bool)]
    layers = [HostLayer(c) for c in cases]
    for k in (1, 3):
        _compare(_emulated(layers, False, k=k), _core.layer_spectra([ly.core_tuple(False) for ly in layers], k=k),
                 weighted=False)


def test_host_emulation_weight_scale_covariance():
    base = _emulated([_host_case((40, 120), 0.2, 7, np.float64)], True, subgraphs=False)[0]["wsv"]
    for c in (1e-150, 1e150):
        got = _emulated([_host_case((40, 120), 0.2, 7, np.float64, scale=c)], True, subgraphs=False)[0]["wsv"]
        np.testing.assert_allclose(got, base * c, rtol=1e-7)


def test_step_counters_count_the_host_twin():
    _core.cuda_step_stats(reset=True)
    _emulated([_host_case((30, 90), 0.2, 4)], True, subgraphs=False)
    st = _core.cuda_step_stats(reset=True)
    assert st["rounds"] > 0 and st["vectors"] >= 2 * st["rounds"] and st["seconds"] > 0
    assert _core.cuda_step_stats()["rounds"] == 0


def test_host_emulation_rejects_bad_route():
    ly = _host_case((4, 6), 0.5, 1)
    with pytest.raises(ValueError, match="route"):
        _emulated([ly], True, route="gpu")


# ----------------------------------------------------------------------------- GPU (vs CPU)
KEYS_SUB = ("sub_degree", "sub_n_in", "sub_n_out", "sub_nnz")


def _close(got, ref):
    """Each σ within 2e-7·σ_i + 1e-7·σ_1 of the reference (twice the solver contract: both sides err)."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape
    if ref.size == 0:
        return
    s1 = ref[..., :1]
    assert np.all(np.abs(got - ref) <= 2e-7 * np.abs(ref) + 1e-7 * s1 + 1e-300), (got, ref)


def _compare(gpu_res, cpu_res, weighted):
    assert len(gpu_res) == len(cpu_res)
    for g, c in zip(gpu_res, cpu_res):
        for key in ("sv", "wsv") if weighted else ("sv",):
            if c[key] is None:
                assert g[key] is None
            else:
                _close(g[key], c[key])
        for key in KEYS_SUB:
            np.testing.assert_array_equal(g[key], c[key])
        assert len(g["sub_columns"]) == len(c["sub_columns"])
        for a, b in zip(g["sub_columns"], c["sub_columns"]):
            np.testing.assert_array_equal(a, b)
        for key in ("sub_sv", "sub_wsv") if weighted else ("sub_sv",):
            _close(g[key], c[key])


def _pair(shape, density, seed, mask_dtype="bool", weight_dtype="float32", transposed=False):
    torch = TORCH
    gen = torch.Generator(device="cuda").manual_seed(seed)
    m = torch.rand(shape, generator=gen, device="cuda") < density
    w = torch.randn(shape, generator=gen, device="cuda", dtype=getattr(torch, weight_dtype))
    if mask_dtype != "bool":
        m = m.to(getattr(torch, mask_dtype))
    if transposed:  # a non-contiguous (transposed) view of the same values
        m = m.t().contiguous().t()
        w = w.t().contiguous().t()
    return m, w


def _both(masks, weights, *, subgraphs=True, k=2, min_nodes=2):
    weighted = weights is not None
    ws = weights if weighted else [None] * len(masks)
    dev = [_device.to_device_layer(m, w, name=f"l{i}") for i, (m, w) in enumerate(zip(masks, ws))]
    host = [HostLayer(m.cpu().numpy(), None if w is None else w.float().cpu().numpy() if w.dtype == TORCH.bfloat16
                      else w.cpu().numpy()) for m, w in zip(masks, ws)]
    kw = dict(k=k, subgraphs=subgraphs, min_nodes=min_nodes)
    return (_device.spectra(dev, weighted, **kw), _device.spectra(host, weighted, **kw), dev, host)


@gpu
@pytest.mark.parametrize("route", ["auto", "csr", "bitmap"])
@pytest.mark.parametrize("shape,density", [((64, 288), 0.1), ((300, 40), 0.3), ((128, 512), 0.5),
                                           ((10, 3, 3, 3), 0.6), ((256, 2304), 0.01)])
def test_layer_spectra_matches_cpu(route, shape, density):
    _device.set_route(route)
    try:
        m, w = _pair(shape, density, seed=hash((shape, density)) % 1000)
        g, c, dev, host = _both([m], [w])
        _compare(g, c, weighted=True)
        b = m.reshape(shape[0], -1).double().cpu().numpy()
        _close(g[0]["sv"], np.linalg.svd(b, compute_uv=False)[:2])
        np.testing.assert_array_equal(dev[0].row_degrees(), host[0].row_degrees())
        np.testing.assert_array_equal(dev[0].col_degrees(), host[0].col_degrees())
        wnz = host[0].m2d & (w.reshape(shape[0], -1).cpu().numpy() != 0)
        for a, b2 in zip(dev[0].weighted_degrees(), (wnz.sum(axis=1), wnz.sum(axis=0))):
            np.testing.assert_array_equal(a, b2)
    finally:
        _device.set_route("auto")


def _step_reference(D, m2d, a2d, sub_columns, subgraphs):
    """Dense float64 (y1, y2, half_norm, |y| bound) of one _cuda_debug_apply entry."""
    A = a2d if D["weighted"] else m2d.astype(np.float64)
    if D["group"] >= 0:  # Gram on the smaller of (group columns, all outputs)
        C = A[:, sub_columns[D["group"]]]
        C = C if C.shape[1] <= C.shape[0] else C.T
    else:
        cols = np.concatenate(list(sub_columns) + [np.zeros(0, np.int64)]).astype(np.int64) if subgraphs else None
        if cols is not None:
            rest = np.setdiff1d(np.arange(A.shape[1]), cols)
            A = A[:, np.concatenate([cols, rest])]
        C = A if A.shape[1] <= A.shape[0] else A.T
    c = D["scale"]
    y1, y2 = (c * c * (C.T @ (C @ x)) for x in (D["x1"], D["x2"]))
    bound = c * c * (np.abs(C).T @ (np.abs(C) @ np.abs(D["x1"])))
    return y1, y2, float(np.linalg.norm(c * (C @ D["x1"]))), bound


STEP_SPECS = [((64, 288), 0.1, "float32"), ((300, 40), 0.3, "float64"), ((10, 3, 3, 3), 0.6, "float32"),
              ((96, 1000), 0.02, "float64"), ((33, 65), 0.5, "float16")]


def _check_steps(got, dense, route):
    """`got` from _cuda_debug_apply / _cuda_host_debug_apply; dense[i] = (m2d, |W|·m2d float64)."""
    host = [HostLayer(m2d, a2d) for m2d, a2d in dense]
    cpu = _core.layer_spectra([h.core_tuple(True) for h in host])
    assert len(got) == sum(2 * (1 + len(c["sub_degree"])) - (h.nnz == 0) * 2 for c, h in zip(cpu, host))
    kinds = set()
    for D in got:
        m2d, a2d = dense[D["layer"]]
        y1, y2, hn, bound = _step_reference(D, m2d, a2d, cpu[D["layer"]]["sub_columns"], True)
        what = f"layer {D['layer']} group {D['group']} weighted {D['weighted']} route {D['route']}"
        assert np.all(np.abs(D["y1"] - y1) <= 1e-12 * bound + 1e-300), what
        assert np.allclose(D["y2"], y2, rtol=1e-12, atol=1e-12 * float(bound.max())), what
        assert D["half_norm"] == pytest.approx(hn, rel=1e-12, abs=1e-300), what
        kinds.add((D["group"] >= 0, D["weighted"], D["route"]))
    assert (False, False, "bitmap" if route == "bitmap" else "csr") in kinds
    assert (True, True, "csr") in kinds


@pytest.mark.parametrize("route", ["csr", "bitmap"])
def test_host_step_twin_matches_dense_reference(route):
    """The host twin of the step kernels (same lane code, gram_lane.h) against dense products:
    also checks the reference the GPU test below uses."""
    rng = np.random.default_rng(0)
    dense = []
    for shape, d, wd in STEP_SPECS:
        m2d = rng.random(shape).reshape(shape[0], -1) < d
        w = rng.standard_normal(m2d.shape).astype(wd)
        dense.append((m2d, np.abs(w.astype(np.float64)) * m2d))
    layers = [HostLayer(m2d, a2d) for m2d, a2d in dense]
    got = _core._cuda_host_debug_apply([h.core_tuple(True) for h in layers], route=route, seed=3)
    _check_steps(got, dense, route)


@gpu
@pytest.mark.parametrize("route", ["csr", "bitmap"])
def test_step_kernels_match_dense_reference(route):
    """Each GPU Gram step (one batched launch pair, ids repeated) against a dense float64 product:
    pinpoints a kernel error to the problem kind (layer/subgraph, pattern/weighted, orientation)."""
    pairs = [_pair(shape, d, seed=i, weight_dtype=wd) for i, (shape, d, wd) in enumerate(STEP_SPECS)]
    dev = [_device.to_device_layer(m, w, name=f"l{i}") for i, (m, w) in enumerate(pairs)]
    dense = []
    for m, w in pairs:
        m2d = m.reshape(m.shape[0], -1).cpu().numpy()
        dense.append((m2d, np.abs(w.reshape(m.shape[0], -1).double().cpu().numpy()) * m2d))
    _device.set_route(route)
    try:
        got = _core._cuda_debug_apply([d.core_tuple(True) for d in dev], subgraphs=True, min_nodes=2, seed=3)
    finally:
        _device.set_route("auto")
    _check_steps(got, dense, route)


@gpu
@pytest.mark.parametrize("mask_dtype", ["bool", "uint8", "int32", "float16", "float32", "float64"])
@pytest.mark.parametrize("weight_dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dtypes_and_strides(mask_dtype, weight_dtype):
    m, w = _pair((96, 200), 0.2, seed=3, mask_dtype=mask_dtype, weight_dtype=weight_dtype,
                 transposed=mask_dtype == "float32")
    g, c, _, _ = _both([m], [w], subgraphs=True)
    _compare(g, c, weighted=True)


@gpu
def test_batch_of_candidates_equals_single_calls_and_is_deterministic():
    masks, weights = zip(*[_pair((64, 576), 0.05, seed=s) for s in range(40)])
    g, c, dev, _ = _both(list(masks), list(weights))
    _compare(g, c, weighted=True)
    assert len(g) == 40 and all(r["sv"].shape == (2,) and r["sub_sv"].shape[1] == 2 for r in g)
    again = _device.spectra(dev, True, k=2, subgraphs=True)
    single = _device.spectra(dev[7:8], True, k=2, subgraphs=True)
    for a, b in zip(g, again):  # bit-identical run to run
        assert np.array_equal(a["sv"], b["sv"]) and np.array_equal(a["wsv"], b["wsv"])
        assert np.array_equal(a["sub_sv"], b["sub_sv"])
    np.testing.assert_allclose(single[0]["sv"], g[7]["sv"], rtol=1e-12)
    np.testing.assert_allclose(single[0]["wsv"], g[7]["wsv"], rtol=1e-12)


@gpu
@pytest.mark.parametrize("k", [1, 3, 6])
def test_k_and_edge_cases(k):
    torch = TORCH
    cases = [torch.zeros((5, 7), dtype=torch.bool, device="cuda"),           # empty
             torch.ones((3, 40), dtype=torch.bool, device="cuda"),            # rank 1
             torch.eye(6, 9, dtype=torch.bool, device="cuda"),                # repeated σ = 1
             torch.zeros((1, 4), dtype=torch.bool, device="cuda").index_fill_(1, torch.tensor([1], device="cuda"), True)]
    g, c, _, _ = _both(cases, None, k=k)
    _compare(g, c, weighted=False)


@gpu
def test_weighted_group_degrees_on_device():
    m, w = _pair((70, 260), 0.15, seed=9)
    w[::3] = 0.0  # exact zeros: the weighted pattern differs from the mask's
    dev = _device.to_device_layer(m, w)
    deg = m.cpu().numpy().sum(axis=0)
    groups = [np.flatnonzero(deg == d) for d in np.unique(deg[deg > 0]) if np.count_nonzero(deg == d) >= 2]
    got = dev.weighted_group_degrees(groups)
    b = m.cpu().numpy() & (w.cpu().numpy() != 0)
    for g, cols in enumerate(groups):
        sub = b[:, cols]
        assert got[g] == (int(sub.sum()), int(sub.any(axis=0).sum()), int(sub.any(axis=1).sum()))


@gpu
def test_weight_scale_covariance():
    m, w = _pair((80, 300), 0.2, seed=11, weight_dtype="float64")
    base = _device.spectra([_device.to_device_layer(m, w)], True, subgraphs=False)[0]["wsv"]
    for c in (1e-150, 1e150):
        r = _device.spectra([_device.to_device_layer(m, w * c)], True, subgraphs=False)[0]["wsv"]
        np.testing.assert_allclose(r, base * c, rtol=1e-7)


@gpu
def test_bad_values_raise_naming_the_layer():
    torch = TORCH
    m = torch.zeros((4, 5), device="cuda")
    m[1, 2] = 2.0
    with pytest.raises(ValueError, match="layer 1: mask .* not binary"):
        _core.cuda_layer_spectra([_device.to_device_layer(torch.eye(4, 5, device="cuda")).core_tuple(),
                                  _device.to_device_layer(m).core_tuple()])
    w = torch.ones((4, 5), device="cuda")
    w[0, 0] = float("nan")
    with pytest.raises(ValueError, match="layer 0: weight contains NaN"):
        _core.cuda_layer_spectra([_device.to_device_layer(torch.eye(4, 5, device="cuda"), w).core_tuple()])
    if torch.cuda.device_count() > 1:
        with pytest.raises(ValueError, match="one CUDA device"):
            _core.cuda_layer_spectra([_device.to_device_layer(torch.eye(4, 5, device="cuda:0")).core_tuple(),
                                      _device.to_device_layer(torch.eye(4, 5, device="cuda:1")).core_tuple()])


@gpu
def test_public_api_routes_cuda_tensors_to_the_gpu():
    """fspai.singular_values(cuda_tensor) must run on the GPU: no host-copy warning (the test suite
    turns warnings into errors) and the CPU values."""
    m, w = _pair((128, 576), 0.1, seed=5)
    got = fspai.singular_values(m, w)
    ref = fspai.singular_values(m.cpu().numpy(), w.cpu().numpy())
    np.testing.assert_allclose(got, ref, rtol=1e-7)
    got_imdb = fspai.imdb(m, w)
    ref_imdb = fspai.imdb(m.cpu().numpy(), w.cpu().numpy())
    assert got_imdb.count == ref_imdb.count
    for field in ("imdb", "imdb_norm", "weighted_imdb"):
        assert getattr(got_imdb, field) == pytest.approx(getattr(ref_imdb, field), rel=1e-6, abs=1e-9, nan_ok=True)


@gpu
def test_cupy_arrays():
    with warnings.catch_warnings():  # CuPy may warn about its own CUDA setup at import
        warnings.simplefilter("ignore")
        cp = pytest.importorskip("cupy")
    rng = np.random.default_rng(0)
    b = rng.random((50, 120)) < 0.2
    g = _device.spectra([_device.to_device_layer(cp.asarray(b))], False, subgraphs=True)
    c = _device.spectra([HostLayer(b)], False, subgraphs=True)
    _compare(g, c, weighted=False)
