"""The conversion point: memory bounds, no redundant copies, and every input route agrees."""
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import fspai
from fspai._convert import to_layer


def _peak(fn):
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _layer(shape=(2048, 4096), density=0.1, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.random(shape, dtype=np.float32) < density
    w = rng.standard_normal(shape, dtype=np.float32)
    w[w == 0] = 1.0  # no exact zero weight: the weight CSR has the mask's pattern
    return m, w


def test_dense_input_converted_in_row_blocks():
    m, w = _layer()
    ly, peak = _peak(lambda: to_layer(m, w))
    out = ly.indptr.nbytes + ly.indices.nbytes + ly.values.nbytes
    # the output CSR plus one row block of temporaries: never a multiple of the dense input
    assert peak <= out + (24 << 20), (peak, out)
    assert peak <= 0.5 * (m.nbytes + w.nbytes)
    m32 = m.astype(np.float32)
    ly2, peak2 = _peak(lambda: to_layer(m32))
    assert peak2 <= ly2.indices.nbytes + ly2.indptr.nbytes + (24 << 20)
    assert np.array_equal(ly2.indices, ly.indices) and np.array_equal(ly2.indptr, ly.indptr)


def test_canonical_csr_input_is_not_copied():
    m, w = _layer()
    mc, wc = sp.csr_array(m), sp.csr_array(np.where(m, w, 0))
    ly, peak = _peak(lambda: to_layer(mc, wc))
    assert np.shares_memory(ly.indices, mc.indices)  # the index array is used as given
    assert np.shares_memory(ly.values, wc.data)  # signed weights on the mask's support: no |W| copy
    assert peak <= (12 << 20), peak  # chunked checks only
    ref = to_layer(m, w)
    assert np.array_equal(ly.indptr, ref.indptr) and np.array_equal(ly.indices, ref.indices)
    assert np.array_equal(ly.values, ref.values)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "dia", "lil", "dok"])
def test_every_scipy_format_and_weight_route_agree(fmt):
    m, w = _layer((40, 60), 0.2, seed=3)
    ref = to_layer(m, w)
    mm = sp.csr_matrix(m).asformat(fmt)
    ww = sp.csr_matrix(np.where(m, w, 0)).asformat(fmt)
    for mask, weight in ((mm, ww), (mm, w), (m, ww)):
        ly = to_layer(mask, weight)
        assert np.array_equal(ly.indptr, ref.indptr) and np.array_equal(ly.indices, ref.indices)
        assert np.allclose(ly.values, ref.values)


def test_sparse_weight_with_a_different_pattern_is_aligned():
    m = np.array([[1, 1, 0], [0, 1, 1]], bool)
    w = sp.csr_matrix(np.array([[0.0, -2.0, 5.0], [0.0, 3.0, 0.0]]))  # (0,0) and (1,2) not stored
    ly = to_layer(m, w)
    assert ly.values.tolist() == [0.0, -2.0, 3.0, 0.0]  # signed: the core reads |v|
    np.testing.assert_allclose(fspai.singular_values(m, w), fspai.singular_values(m, np.abs(w.toarray())),
                               rtol=1e-12)


def test_weight_on_the_masks_own_pattern_skips_only_structure_checks():
    # W ⊙ M stored on the mask's validated pattern (indices of any integer dtype): its values are
    # taken as they are, and still checked (dtype, finiteness); a weight whose pattern only looks
    # alike (same row counts, other columns) is aligned entry by entry.
    m, w = _layer((50, 70), 0.3, seed=11)
    mc = sp.csr_array(m)
    wc = sp.csr_array(np.where(m, w, 0))
    ref = to_layer(m, w)
    wide = sp.csr_array((wc.data, wc.indices.astype(np.int64), wc.indptr.astype(np.int64)), shape=wc.shape)
    for weight in (wc, wide):
        ly = to_layer(mc, weight)
        assert np.array_equal(ly.values, ref.values)
    bad = wc.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="weight.*NaN or Inf"):
        to_layer(mc, bad)
    ints = sp.csr_array((np.ones(wc.nnz, np.int32), wc.indices, wc.indptr), shape=wc.shape)
    with pytest.raises(TypeError, match="weight"):
        to_layer(mc, ints)
    shifted = wc.copy()  # same row counts, every column moved by one: aligned by position
    shifted.indices = (shifted.indices + 1) % m.shape[1]
    shifted.sort_indices()
    ly = to_layer(mc, shifted)
    dense = shifted.toarray()
    assert np.array_equal(ly.values, dense[m].astype(ly.values.dtype))


def test_compaction_keeps_metrics_and_original_columns():
    rng = np.random.default_rng(5)
    small = rng.random((30, 40)) < 0.3
    big = sp.coo_matrix(small)
    big = sp.coo_matrix((big.data, (big.row * 1000 + 7, big.col * 5000 + 3)), shape=(30_000, 200_000))
    ly = to_layer(big)
    assert ly.row_ids is not None and ly.col_ids is not None and ly.stored_shape[1] <= 40
    assert fspai.singular_values(big, k=3) == pytest.approx(fspai.singular_values(small, k=3), rel=1e-9)
    g_small, g_big = fspai.ramanujan_gap(small), fspai.ramanujan_gap(big)
    assert (g_big.n_in, g_big.n_out, g_big.edges) == (g_small.n_in, g_small.n_out, g_small.edges)
    subs_s, subs_b = fspai.regular_decomposition(small), fspai.regular_decomposition(big)
    assert [s.columns.tolist() for s in subs_b] == [(s.columns * 5000 + 3).tolist() for s in subs_s]
    assert fspai.narc(big) != fspai.narc(small) or np.isnan(fspai.narc(big))  # NaRC uses the declared sizes


def test_huge_nearly_empty_csr_and_csc_need_no_temporaries_of_their_size():
    n = 2**24
    indptr = np.zeros(n + 1, dtype=np.int32)
    indptr[1000:] = 2
    indptr[n - 5:] = 3  # rows 999 and n-6 hold entries
    csr = sp.csr_matrix((np.ones(3, bool), np.array([4, 2, 9], np.int32), indptr), shape=(n, 16))
    csr.has_sorted_indices = False  # row 999 holds [4, 2]: unsorted, sorted in NumPy
    ly, peak = _peak(lambda: to_layer(csr))
    assert peak < 24 << 20, peak  # the input's indptr alone is 64 MiB
    assert ly.row_ids.tolist() == [999, n - 6] and ly.indices.tolist() == [2, 4, 9]
    csc = sp.csc_matrix((np.ones(3, bool), np.array([4, 2, 9], np.int32), indptr), shape=(16, n))
    ly, peak = _peak(lambda: to_layer(csc))
    assert peak < 24 << 20, peak
    assert fspai.singular_values(csc) == pytest.approx(fspai.singular_values(csc.toarray()[:, [999, n - 6]]))


def test_sorted_check_allows_decreases_across_row_boundaries():
    csr = sp.csr_matrix((np.ones(5, bool), np.array([2, 3, 0, 1, 0], np.int32),
                         np.array([0, 2, 2, 4, 5], np.int32)), shape=(4, 4))
    ly = to_layer(csr)
    assert np.shares_memory(ly.indices, csr.indices)  # canonical: used as given
    bad = sp.csr_matrix((np.ones(3, bool), np.array([1, 3, 2], np.int32), np.array([0, 3, 3], np.int32)),
                        shape=(2, 4))
    assert to_layer(bad).indices.tolist() == [1, 2, 3]
