"""Dense bool mask -> CSR in the core (``_core.dense_to_csr``) against SciPy, and the conversion
point (``fspai._convert.to_layer``) giving the same layer through the core scan and the NumPy path."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fspai import _core
from fspai._convert import to_layer


def _check(m, w=None, threads=0):
    indptr, indices, values = _core.dense_to_csr(m, w, threads)
    ref = sp.csr_matrix(np.asarray(m, dtype=bool))
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    assert np.array_equal(indptr, ref.indptr) and np.array_equal(indices, ref.indices)
    if w is None:
        assert values is None
    else:
        assert values.dtype == w.dtype
        assert np.array_equal(values, w[np.asarray(m, dtype=bool)])  # signed, row-major order
    return indptr, indices, values


@pytest.mark.parametrize("shape", [(1, 1), (3, 63), (5, 64), (7, 65), (16, 129), (40, 1000), (1, 300), (300, 1)])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.3, 1.0])
def test_matches_scipy(shape, density):
    rng = np.random.default_rng(hash((shape, density)) % 2**32)
    m = rng.random(shape) < density
    _check(m)
    _check(m, rng.standard_normal(shape).astype(np.float32))
    _check(m, rng.standard_normal(shape))


def test_padded_rows_and_threads():
    rng = np.random.default_rng(1)
    big = rng.random((300, 700)) < 0.05
    wbig = rng.standard_normal((300, 700)).astype(np.float32)
    m, w = big[:, 3:517], wbig[:, 3:517]  # rows padded: row stride 700, not the row length
    assert not m.flags.c_contiguous
    a = _check(m, w, threads=1)
    b = _check(m, w, threads=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # a tall matrix spans several row blocks of the parallel scan
    tall = rng.random((5000, 300)) < 0.02
    assert all(np.array_equal(x, y) for x, y in zip(_check(tall, threads=1), _check(tall, threads=2)))


def test_zero_sized():
    for shape in [(0, 5), (4, 0), (0, 0)]:
        indptr, indices, _ = _check(np.zeros(shape, dtype=bool))
        assert indptr.shape == (shape[0] + 1,) and indices.size == 0


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 12), cols=st.integers(1, 200), seed=st.integers(0, 2**32 - 1),
       density=st.floats(0.0, 1.0), offset=st.integers(0, 70))
def test_property_any_layout(rows, cols, seed, density, offset):
    rng = np.random.default_rng(seed)
    full = rng.random((rows, cols + offset)) < density
    wfull = rng.standard_normal((rows, cols + offset))
    _check(full[:, offset:], wfull[:, offset:])


def test_bad_arguments_raise():
    m = np.zeros((4, 8), dtype=bool)
    with pytest.raises(TypeError, match="bool"):
        _core.dense_to_csr(m.astype(np.uint8))
    with pytest.raises(TypeError, match="numpy array"):
        _core.dense_to_csr([[True]])
    with pytest.raises(ValueError, match="2-D"):
        _core.dense_to_csr(np.zeros(8, dtype=bool))
    with pytest.raises(ValueError, match="contiguous"):
        _core.dense_to_csr(np.zeros((8, 4), dtype=bool).T)
    with pytest.raises(ValueError, match="contiguous"):
        _core.dense_to_csr(np.zeros((8, 4), dtype=bool)[::-1])
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.dense_to_csr(m, np.zeros((4, 8), dtype=np.float16))
    with pytest.raises(ValueError, match="shape"):
        _core.dense_to_csr(m, np.zeros((4, 9), dtype=np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        _core.dense_to_csr(m, np.zeros((8, 4), dtype=np.float32).T)


def _same_layer(a, b):
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert (a.values is None) == (b.values is None)
    if a.values is not None:
        assert a.values.dtype == b.values.dtype and np.array_equal(a.values, b.values)


@pytest.mark.parametrize("wdtype", [np.float32, np.float64, np.float16])
def test_to_layer_core_scan_equals_numpy_path(wdtype):
    rng = np.random.default_rng(3)
    m = rng.random((64, 32, 3, 3)) < 0.1  # conv layer: rows = 64 outputs, 288 columns
    w = rng.standard_normal(m.shape).astype(wdtype)
    fast = to_layer(m, w)                       # bool, contiguous rows: the core scan (float16: NumPy)
    slow = to_layer(m.astype(np.uint8), w)      # integer mask: validated 0/1, NumPy path
    _same_layer(fast, slow)
    strided = np.asfortranarray(m)              # same values, rows not contiguous: NumPy path
    _same_layer(fast, to_layer(strided, w))
    tm = to_layer(torch.from_numpy(m), torch.from_numpy(w))  # torch input: the same conversion point
    _same_layer(fast, tm)


def test_to_layer_nan_weight_on_the_mask_raises():
    m = np.zeros((4, 70), dtype=bool)
    m[2, 66] = True
    w = np.ones((4, 70), dtype=np.float32)
    w[0, 0] = np.nan  # off the mask: never read
    to_layer(m, w, name="fc")
    w[2, 66] = np.inf
    with pytest.raises(ValueError, match=r"fc: weight of shape \(4, 70\) contains NaN or Inf"):
        to_layer(m, w, name="fc")
