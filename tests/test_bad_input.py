"""The bad-input table: clear TypeError/ValueError naming the argument and shape; never a crash."""
import numpy as np
import pytest
import scipy.sparse as sp

import fspai


@pytest.mark.parametrize("mask,exc,match", [
    (np.array(1.0), ValueError, r"at least 2 dims.*shape \(\)"),
    (np.ones(5), ValueError, r"at least 2 dims.*shape \(5,\)"),
    (np.array([[0, 2], [1, 0]]), ValueError, "not binary"),
    (np.array([[0.5, 1.0]]), ValueError, "not binary"),
    (np.array([[np.nan, 1.0]]), ValueError, "NaN"),
    (np.array([[None, 1]], dtype=object), TypeError, "object"),
    (np.array([["a", "b"]]), TypeError, "dtype"),
    ([[0, 1], [1, 0]], TypeError, "numpy array, torch tensor or scipy.sparse"),
    ("mask", TypeError, "numpy array"),
    (np.ones((2, 2), dtype=complex), TypeError, "dtype"),
])
def test_bad_masks(mask, exc, match):
    with pytest.raises(exc, match=match):
        fspai.ramanujan_gap(mask)


def test_mismatched_shapes_name_both():
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(5, 4\)"):
        fspai.weighted_gap(np.ones((4, 5)), np.ones((5, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(bad):
    w = np.ones((4, 5))
    w[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        fspai.weighted_gap(np.ones((4, 5)), w)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, bool])
def test_integer_weights_rejected(dtype):
    with pytest.raises(TypeError, match="weights must be float"):
        fspai.coordinate(np.ones((4, 5)), np.ones((4, 5), dtype=dtype))


def test_weighted_gap_needs_weight():
    with pytest.raises(ValueError, match="weight"):
        fspai.weighted_gap(np.ones((4, 5)), None)


def test_mixed_frameworks():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="different frameworks"):
        fspai.coordinate(torch.ones(4, 5), np.ones((4, 5)))
    with pytest.raises(TypeError, match="different frameworks"):
        fspai.coordinate(np.ones((4, 5)), torch.ones(4, 5))


def test_torch_dtypes_and_devices():
    torch = pytest.importorskip("torch")
    m = torch.rand(16, 8, 3) < 0.5
    for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        assert np.isfinite(fspai.weighted_gap(m, torch.randn(16, 8, 3).to(dt))) or True
    with pytest.raises(TypeError, match="float"):
        fspai.weighted_gap(m, torch.ones(16, 8, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="not binary"):
        fspai.ramanujan_gap(torch.full((4, 4), 3))


def test_oversized_layer_rejected_without_allocating():
    huge = sp.csr_matrix((1, 2**31))
    with pytest.raises(ValueError, match="2\\^31-1"):
        fspai.ramanujan_gap(huge)


def test_bad_options():
    with pytest.raises(ValueError, match="k must be"):
        fspai.singular_values(np.ones((3, 3)), k=0)
    with pytest.raises(ValueError, match="threads"):
        fspai.singular_values(np.ones((3, 3)), threads=-1)
    with pytest.raises(ValueError, match="tol"):
        fspai.singular_values(np.ones((3, 3)), tol=0.0)
    with pytest.raises(ValueError, match="edge_count"):
        fspai.narc(np.ones((5, 5)), edge_count="both")
    with pytest.raises(TypeError, match="Coordinate"):
        fspai.distance([1, 2, 3, 4])
    with pytest.raises(ValueError, match="differ in length"):
        c = fspai.Coordinate(1, 2, 3, 4)
        fspai.distance([c, c], [c])
    with pytest.raises(TypeError, match="sequence"):
        fspai.batch_singular_values(np.ones((3, 3)))
    with pytest.raises(ValueError, match="2 masks but 1 weights"):
        fspai.coordinates([np.ones((3, 3))] * 2, [np.ones((3, 3))])


def test_scipy_mask_values_checked():
    m = sp.csr_matrix(np.array([[0, 2.0], [1, 0]]))
    with pytest.raises(ValueError, match="not binary"):
        fspai.ramanujan_gap(m)
    # explicit zeros and duplicates are canonicalised
    coo = sp.coo_matrix((np.array([1.0, 0.0, 1.0]), (np.array([0, 1, 1]), np.array([0, 1, 0]))), shape=(2, 2))
    assert fspai.ramanujan_gap(coo).edges == 2


def test_model_metrics_bad_inputs():
    with pytest.raises(TypeError, match="model_metrics expects"):
        fspai.model_metrics([np.ones((3, 3))])
    with pytest.raises(ValueError, match=r"layer 'b'.*\(3,\)|b: mask must have at least 2 dims") as ei:
        fspai.layer_metrics(np.ones(3), name="b")
    assert "b" in str(ei.value)


# ------------------------------------------------------------------ hostile sparse structure
def _csr(indptr, indices, data, shape):
    """A csr_matrix whose arrays are set after construction (SciPy checks nothing then)."""
    m = sp.csr_matrix((2, 2))
    m.indptr, m.indices, m.data = np.asarray(indptr), np.asarray(indices), np.asarray(data)
    m._shape = shape
    return m


@pytest.mark.parametrize("indptr,indices,data,match", [
    ([0, 2, 1, 3], [0, 1, 2], [1, 1, 1], "indptr is not non-decreasing"),
    ([0, 1, 3], [0, 1, 2], [1, 1, 1], r"indptr has 3 entries, expected 4"),
    ([1, 1, 2, 3], [0, 1, 2], [1, 1, 1], r"indptr\[0\] = 1"),
    ([0, 1, 2, 9], [0, 1, 2], [1, 1, 1], r"indptr\[-1\] = 9 but only 3 indices"),
    ([0, 1, 2, 3], [0, 1, 7], [1, 1, 1], "indices contains 7, outside 0..3"),
    ([0, 1, 2, 3], [0, -1, 2], [1, 1, 1], "indices contains -1"),
    ([0, 1, 2, 3], [0, 1, 2], [1, 1], "2 data values for 3 stored indices"),
    ([0, 1, 2, 3], [0.0, 1.0, 2.0], [1, 1, 1], "indices must be an integer array"),
    ([0, 1, 2, 3], [0, 1, 2], [[1], [1], [1]], "data must be a 1-D numpy array"),
])
def test_corrupted_csr_is_refused_before_scipy(indptr, indices, data, match):
    m = _csr(indptr, indices, data, (3, 4))
    for fn in (fspai.ramanujan_gap, fspai.singular_values):
        with pytest.raises((ValueError, TypeError), match=match) as ei:
            fn(m)
        assert "mask" in str(ei.value) and "(3, 4)" in str(ei.value)
    with pytest.raises((ValueError, TypeError), match=match):  # the same checks guard a sparse weight
        fspai.weighted_gap(np.ones((3, 4)), _csr(indptr, indices, np.asarray(data, float), (3, 4)))


def test_corrupted_csc_and_coo():
    c = sp.csc_matrix((3, 4))
    c.indptr, c.indices, c.data = np.array([0, 1, 0, 2, 2]), np.array([0, 1]), np.ones(2)
    with pytest.raises(ValueError, match="indptr is not non-decreasing"):
        fspai.ramanujan_gap(c)
    c.indptr, c.indices = np.array([0, 1, 1, 2, 2]), np.array([0, 5])
    with pytest.raises(ValueError, match="indices contains 5, outside 0..2"):
        fspai.ramanujan_gap(c)
    coo = sp.coo_matrix((np.ones(2), (np.array([0, 1]), np.array([0, 1]))), shape=(3, 4))
    coo.col = np.array([0, 9])
    with pytest.raises(ValueError, match=r"coords\[1\] contains 9"):
        fspai.ramanujan_gap(coo)
    coo.col = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="differ in length"):
        fspai.ramanujan_gap(coo)


def test_unsorted_and_duplicate_csr_is_canonicalised_in_numpy():
    m = _csr([0, 3, 3, 4], [2, 0, 2, 1], [1, 1, 1, 1], (3, 4))  # duplicate (0, 2) sums to 2
    with pytest.raises(ValueError, match="not binary"):
        fspai.ramanujan_gap(m)
    m = _csr([0, 2, 2, 3], [3, 0, 1], [1, 1, 1], (3, 4))
    dense = m.toarray()
    assert fspai.singular_values(m) == pytest.approx(fspai.singular_values(dense))
    other_formats = [sp.bsr_matrix(dense), sp.dia_matrix(dense), sp.lil_matrix(dense), sp.dok_matrix(dense),
                     sp.coo_array(dense), sp.csc_array(dense)]
    for o in other_formats:
        assert fspai.singular_values(o) == pytest.approx(fspai.singular_values(dense)), o.format


def test_huge_declared_shape_with_few_entries_costs_O_nnz():
    import tracemalloc

    n = 2**28
    coo = sp.coo_matrix((np.ones(3), (np.array([0, 5, n - 1]), np.array([7, 7, n - 2]))), shape=(n, n))
    tracemalloc.start()
    g = fspai.ramanujan_gap(coo)
    sv = fspai.singular_values(coo, k=3)
    c = fspai.coordinate(coo, coo.astype(np.float32) * 0.5)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20, peak  # O(nnz): far below the 2 GiB an indptr of 2^28 rows would take
    assert g.edges == 3 and g.n_in == 2 and g.n_out == 3
    assert sv == pytest.approx([np.sqrt(2), 1.0, 0.0])
    assert c.as_array().tolist() == [0, 0, 0, 0]  # far too sparse for any gap to be defined
    subs = fspai.regular_decomposition(coo)  # columns are reported in the original numbering
    assert [s.columns.tolist() for s in subs] == []
    lm = fspai.layer_metrics(coo)
    assert lm.n_rows == n and lm.n_cols == n and lm.density == 3 / n**2


def test_unrepresentable_sizes_refused_quickly():
    huge = sp.coo_matrix((np.ones(1), (np.array([0]), np.array([0]))), shape=(2**31, 4))
    with pytest.raises(ValueError, match=r"2\^31-1"):
        fspai.ramanujan_gap(huge)
    with pytest.raises(ValueError, match=r"flattens to \(2, 4294967296\)"):
        fspai.ramanujan_gap(np.broadcast_to(np.zeros(1, bool), (2, 2**16, 2**16)))


def test_broadcast_views_refused_not_hung():
    v = np.broadcast_to(np.zeros(1, bool), (2**20, 2**20))
    with pytest.raises(ValueError, match="broadcast/overlapping view"):
        fspai.ramanujan_gap(v)
    with pytest.raises(ValueError, match="broadcast/overlapping view"):
        fspai.weighted_gap(sp.csr_matrix((2**20, 2**20), dtype=bool), np.broadcast_to(np.float32(1), (2**20, 2**20)))
    small = np.broadcast_to(np.array([[1, 0, 1, 1]], bool), (6, 4))  # small broadcasts are fine
    assert fspai.ramanujan_gap(small).edges == 18


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_torch_broadcast_and_sparse():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="broadcast/overlapping view"):
        fspai.ramanujan_gap(torch.zeros(1, 1, dtype=torch.bool).expand(2**20, 2**20))
    n = 2**28
    t = torch.sparse_coo_tensor(torch.tensor([[0, 5, 5], [7, 7, 7]]), torch.ones(3), (n, n), check_invariants=True)  # duplicate summed
    with pytest.raises(ValueError, match="not binary"):
        fspai.ramanujan_gap(t)
    t = torch.sparse_coo_tensor(torch.tensor([[0, 5], [7, 9]]), torch.ones(2), (n, n), check_invariants=True)
    assert fspai.ramanujan_gap(t).edges == 2
    dense = (torch.rand(6, 8) < 0.5).float()
    assert fspai.singular_values(dense.to_sparse_csr()) == pytest.approx(fspai.singular_values(dense))
    bad = torch.sparse_coo_tensor(torch.tensor([[0, 9], [1, 1]]), torch.ones(2), (4, 4), check_invariants=False)
    with pytest.raises(ValueError, match=r"indices\[0\] contains 9"):
        fspai.ramanujan_gap(bad)


# ------------------------------------------------------------------ scalar options
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(k=0), ValueError, r"k must be in 1\.\."),
    (dict(k=4), ValueError, r"mask: k=4 exceeds min\(n_rows, n_cols\) = 3 .*\(3, 5\)"),
    (dict(k=2_000_000_000), ValueError, "k=2000000000 exceeds"),
    (dict(k=2**31), ValueError, r"k must be in 1\.\.2147483647"),
    (dict(k=2.0), TypeError, "k must be an int"),
    (dict(k=True), TypeError, "k must be an int"),
    (dict(seed=-1), ValueError, r"seed must be in 0\.\.18446744073709551615"),
    (dict(seed=2**64), ValueError, "seed must be in"),
    (dict(seed="1"), TypeError, "seed must be an int"),
    (dict(threads=-1), ValueError, r"threads must be in 0\.\.1024"),
    (dict(threads=10**6), ValueError, "threads must be in"),
    (dict(threads=1.5), TypeError, "threads must be an int"),
    (dict(tol=0.0), ValueError, r"tol must be a float in \(0, 1\)"),
    (dict(tol=1.0), ValueError, "tol must be"),
    (dict(tol=float("nan")), ValueError, "tol must be"),
    (dict(tol="1e-5"), TypeError, "tol must be"),
    (dict(return_info=None), TypeError, "return_info"),
])
def test_option_ranges_checked_in_python(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fspai.singular_values(np.ones((3, 5)), **kwargs)


def test_option_ranges_everywhere():
    m = [np.ones((3, 5))]
    with pytest.raises(ValueError, match="k=4 exceeds"):
        fspai.batch_singular_values(m, k=4)
    with pytest.raises(ValueError, match="seed"):
        fspai.batch_singular_values(m, seed=-1)
    with pytest.raises(ValueError, match="threads"):
        fspai.coordinates(m, m, threads=-2)
    with pytest.raises(ValueError, match="threads"):
        fspai.model_metrics({"a": m[0]}, threads=2**40)
    assert fspai.singular_values(np.ones((3, 5)), seed=2**64 - 1) == pytest.approx([np.sqrt(15), 0], abs=1e-7)


# ------------------------------------------------------------------ names, weights
def test_non_string_layer_names():
    with pytest.raises(TypeError, match=r"layer names must be strings; the dict of masks has the key 1 of type int"):
        fspai.model_metrics({1: np.ones((3, 3))})
    with pytest.raises(TypeError, match="weights has the key"):
        fspai.model_metrics({"a": np.ones((3, 3))}, weights={("a",): np.ones((3, 3))})
    with pytest.raises(TypeError, match="layer names must be strings"):
        fspai.layer_metrics(np.ones((3, 3)), name=3)


def test_coordinate_and_weighted_gap_both_need_weights():
    m = np.ones((4, 5))
    for call in (lambda: fspai.coordinate(m, None), lambda: fspai.weighted_gap(m, None),
                 lambda: fspai.coordinates([m], None)):
        with pytest.raises(ValueError, match=r"needs a weight.*pass weight=mask"):
            call()
    with pytest.raises(ValueError, match="layer1: no weight given"):
        fspai.coordinates([m, m], [m, None])
    # |W| = M is available explicitly, and equals the pattern's spectrum
    s = fspai.singular_values(m)
    assert fspai.weighted_gap(m, m.astype(np.float32)) == pytest.approx(s[0] - s[1])


def test_convention_argument_checked():
    with pytest.raises(TypeError, match="convention must be a preset name"):
        fspai.ramanujan_gap(np.ones((4, 4)), convention=3)
    with pytest.raises(ValueError, match="weighted_validity"):
        import dataclasses
        dataclasses.replace(fspai.conventions.NEURIPS23, weighted_validity="maybe")


def test_fuzzed_sparse_structure_is_refused_or_exact():
    """Random single-field corruptions of CSR/CSC/COO: a clear ValueError/TypeError, or (when the
    result is still a valid matrix) exactly SciPy's reading of it. Never a crash."""
    rng = np.random.default_rng(0)
    accepted = 0
    for _ in range(300):
        m, n = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        x = sp.random(m, n, density=0.4, random_state=int(rng.integers(1 << 30)), format="csr")
        x.data[:] = 1
        x = x.asformat(str(rng.choice(["csr", "csc", "coo"]))).copy()
        field = str(rng.choice(["indptr", "indices", "data"] if x.format != "coo" else ["row", "col", "data"]))
        a = getattr(x, field).copy()
        if a.size:
            a[int(rng.integers(a.size))] = int(rng.integers(-3, 12))
            if rng.random() < 0.2:
                a = a[:-1]
        setattr(x, field, a)
        try:
            got = fspai.singular_values(x, k=1)
        except (ValueError, TypeError):
            continue
        accepted += 1
        ref = np.linalg.svd(x.toarray().astype(float), compute_uv=False)[:1]  # safe: fspai validated it
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
    assert 20 < accepted < 300


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weight_outside_the_mask_is_ignored(bad):
    # |W ⊙ M| reads W only where the mask keeps it: a NaN in a pruned position changes nothing.
    rng = np.random.default_rng(3)
    m = (rng.random((20, 30)) < 0.4).astype(np.float32)
    w = rng.standard_normal((20, 30))
    w2 = w.copy()
    w2[m == 0] = bad
    assert fspai.weighted_gap(m, w2) == fspai.weighted_gap(m, w)
    w2[np.argwhere(m == 1)[0][0], np.argwhere(m == 1)[0][1]] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        fspai.weighted_gap(m, w2)
    import scipy.sparse as sp
    with pytest.raises(ValueError, match="NaN or Inf"):
        fspai.weighted_gap(sp.csr_matrix(m), w2)
