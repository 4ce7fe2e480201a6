"""Malformed CSR passed straight to fspai._core raises, never crashes (binding boundary fuzz)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fspai import _core


def call(indptr, indices, values, n_rows, n_cols, **kw):
    return _core.topk_singular_values(indptr, indices, values, n_rows, n_cols, **kw)


GOOD = (np.array([0, 2, 3], np.int64), np.array([0, 2, 1], np.int32))


@pytest.mark.parametrize("args,exc", [
    ((np.array([1, 2, 3], np.int64), GOOD[1], None, 2, 3), ValueError),             # indptr[0] != 0
    ((np.array([0, 3, 2], np.int64), GOOD[1], None, 2, 3), ValueError),             # decreasing
    ((GOOD[0], np.array([0, 5, 1], np.int32), None, 2, 3), ValueError),             # out of range
    ((GOOD[0], np.array([0, -1, 1], np.int32), None, 2, 3), ValueError),            # negative
    ((GOOD[0], np.array([2, 0, 1], np.int32), None, 2, 3), ValueError),             # unsorted
    ((GOOD[0], np.array([1, 1, 1], np.int32), None, 2, 3), ValueError),             # duplicate
    ((GOOD[0], GOOD[1][:2], None, 2, 3), ValueError),                               # nnz mismatch
    ((GOOD[0], GOOD[1], None, 3, 3), ValueError),                                   # indptr length
    ((GOOD[0], GOOD[1], None, -1, 3), ValueError),                                  # negative shape
    ((GOOD[0].astype(np.int32), GOOD[1], None, 2, 3), TypeError),                   # dtype
    ((GOOD[0], GOOD[1].astype(np.int64), None, 2, 3), TypeError),
    ((GOOD[0], GOOD[1], np.ones(3, np.int32), 2, 3), TypeError),
    ((GOOD[0], GOOD[1], np.array([1.0, np.nan, 1.0]), 2, 3), ValueError),
    ((GOOD[0], GOOD[1], np.array([1.0, -np.inf, 1.0]), 2, 3), ValueError),
    ((GOOD[0], GOOD[1], np.ones(2), 2, 3), ValueError),
    ((list(GOOD[0]), GOOD[1], None, 2, 3), TypeError),
    ((GOOD[0][::-1].copy()[::-1], GOOD[1], None, 2, 3), ValueError),                # strided view
    ((GOOD[0].copy(), GOOD[1].copy(), None, 2, 3), None),                           # fine
    ((np.zeros((3, 1), np.int64), GOOD[1], None, 2, 3), ValueError),                # 2-D
])
def test_malformed_csr(args, exc):
    if exc is None:
        sv, _ = call(*args)
        assert sv.shape == (2,)
    else:
        with pytest.raises(exc):
            call(*args)


def test_bad_options_raise():
    with pytest.raises(ValueError):
        call(*GOOD, None, 2, 3, k=0)
    with pytest.raises(ValueError):
        call(*GOOD, None, 2, 3, tol=2.0)
    with pytest.raises(ValueError):
        call(*GOOD, None, 2, 3, max_basis=1)
    with pytest.raises(ValueError):
        call(*GOOD, None, 2, 3, threads=-2)
    with pytest.raises(ValueError):
        _core.layer_spectra([(GOOD[0], GOOD[1], None, 2, 3)], min_nodes=0)
    with pytest.raises(ValueError):
        _core.layer_spectra([(GOOD[0], GOOD[1], None)])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 6), st.integers(0, 6), st.lists(st.integers(-3, 12), max_size=14),
       st.lists(st.integers(-3, 8), max_size=8), st.booleans())
def test_fuzz_never_crashes(n_rows, n_cols, idx, ptr_tail, weighted):
    indptr = np.array([0] + ptr_tail, np.int64)
    indices = np.array(idx, np.int32)
    values = np.abs(np.random.default_rng(0).standard_normal(len(idx))) if weighted else None
    try:
        sv, _ = call(indptr, indices, values, n_rows, n_cols)
    except (ValueError, TypeError):
        return
    assert sv.shape == (2,) and np.all(np.isfinite(sv)) and np.all(sv >= 0)


def test_option_ranges_raise_value_error():
    for kw in ({"k": 2_000_000_000}, {"starts": -1}, {"starts": 65}, {"route": "bitmap"}, {"max_restarts": -1}):
        with pytest.raises(ValueError):
            call(*GOOD, None, 2, 3, **kw)
    with pytest.raises(ValueError, match="too large"):  # a dense s×s Gram beyond 2^15 is refused
        n = 40_000  # one path-shaped component (bidiagonal): both sides 40 000
        indptr = np.concatenate([[0], np.minimum(2 * np.arange(1, n + 1), 2 * n - 1)]).astype(np.int64)
        indices = np.stack([np.arange(n), np.arange(1, n + 1)], 1).ravel()[:2 * n - 1].astype(np.int32)
        call(indptr, indices, None, n, n, route="dense_gram")


def test_layer_spectra_malformed_entries_raise():
    with pytest.raises(TypeError):
        _core.layer_spectra([[GOOD[0], GOOD[1], None, 2, 3]])          # list, not tuple
    with pytest.raises(TypeError):
        _core.layer_spectra([(GOOD[0], GOOD[1], None, "2", 3)])        # n_rows not int
    with pytest.raises(ValueError):
        _core.layer_spectra([(GOOD[0], GOOD[1], None, 2**70, 3)])      # out of int64
    with pytest.raises(ValueError):
        _core.layer_spectra([(np.array([0, 5, 3], np.int64), GOOD[1], None, 2, 3)])


def test_gram_apply_hook_validates():
    with pytest.raises(ValueError):
        _core._gram_apply(*GOOD, None, 2, 3, np.ones((1, 3)))          # wrong vector length
    with pytest.raises(ValueError):
        _core._gram_apply(*GOOD, None, 2, 3, np.ones(2))               # not 2-D
    with pytest.raises(ValueError):
        _core._gram_apply(*GOOD, None, 2, 3, np.ones((1, 2)), weighted=True)  # no values
    with pytest.raises(ValueError):
        _core._gram_apply(np.array([0, 3, 2], np.int64), GOOD[1], None, 2, 3, np.ones((1, 2)))


def test_huge_declared_column_count_costs_o_nnz():
    # 3 entries in a 3 × 2^28 matrix: per-node arrays must not be sized by the declared shape
    # (that would be > 2 GB); the core compacts the used columns first.
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    indptr = np.array([0, 1, 2, 3], np.int64)
    indices = np.array([5, 2**28 - 1, 123456789], np.int32)
    sv, _ = call(indptr, indices, None, 3, 2**28, k=3)
    np.testing.assert_allclose(sv, [1, 1, 1])
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024
