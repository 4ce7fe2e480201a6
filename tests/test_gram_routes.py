"""Every CPU step operator (route) against a dense NumPy Gram: Y = CᵀC X on the smaller side."""
import numpy as np
import pytest
import scipy.sparse as sp

import fspai
from fspai import _core


def csr_args(a):
    c = sp.csr_matrix(a)
    c.sort_indices()
    return c.indptr.astype(np.int64), c.indices.astype(np.int32), c


def dense_gram(a):
    a = np.asarray(a, dtype=np.float64)
    return a.T @ a if a.shape[0] >= a.shape[1] else a @ a.T


@pytest.mark.parametrize("route", ["csr", "dense_gram"])
@pytest.mark.parametrize("seed", range(6))
def test_pattern_routes_match_dense_gram(route, seed):
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(1, 300)), int(rng.integers(1, 300))
    mask = rng.random((m, n)) < rng.choice([0.01, 0.1, 0.5, 1.0])
    ip, ix, c = csr_args(mask)
    s = min(m, n)
    X = rng.standard_normal((int(rng.integers(1, 5)), s))
    Y, per, build, used = _core._gram_apply(ip, ix, None, m, n, X, route=route)
    assert used == route
    np.testing.assert_allclose(Y, (dense_gram(mask) @ X.T).T, rtol=1e-12, atol=1e-12 * max(1, np.abs(X).max()) * n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(4))
def test_weighted_csr_route_matches_dense_gram(dtype, seed):
    rng = np.random.default_rng(100 + seed)
    m, n = int(rng.integers(1, 300)), int(rng.integers(1, 300))
    mask = rng.random((m, n)) < 0.2
    w = (np.abs(rng.standard_normal((m, n))) * mask).astype(dtype)
    c = sp.csr_matrix(w)
    c.sort_indices()
    X = rng.standard_normal((3, min(m, n)))
    Y, _, _, used = _core._gram_apply(c.indptr.astype(np.int64), c.indices.astype(np.int32), c.data, m, n, X,
                                      route="csr", weighted=True)
    ref = (dense_gram(c.toarray().astype(np.float64)) @ X.T).T
    np.testing.assert_allclose(Y, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_route_is_deterministic_across_threads():
    rng = np.random.default_rng(1)
    mask = rng.random((2000, 1500)) < 0.4  # many chunks on the CSR route, rows split on the dense Gram
    ip, ix, _ = csr_args(mask)
    X = rng.standard_normal((2, 1500))
    for route in ("csr", "dense_gram"):
        a = _core._gram_apply(ip, ix, None, 2000, 1500, X, route=route, threads=1)[0]
        b = _core._gram_apply(ip, ix, None, 2000, 1500, X, route=route, threads=2)[0]
        assert np.array_equal(a, b), route


@pytest.mark.parametrize("shape,density", [((512, 4608), 0.1), ((300, 2000), 0.5), ((1200, 300), 0.05)])
def test_solver_routes_agree(shape, density):
    rng = np.random.default_rng(7)
    mask = rng.random(shape) < density
    ip, ix, _ = csr_args(mask)
    ref = np.linalg.svd(mask.astype(float), compute_uv=False)[:3]
    for route in ("csr", "dense_gram"):
        sv, info = _core.topk_singular_values(ip, ix, None, *shape, k=3, route=route)
        assert info["route"] == route
        assert np.all(np.abs(sv - ref) <= np.maximum(1e-7 * ref, 5e-8 * ref[0]))


def test_cost_model_picks_dense_gram_for_dense_small_side_patterns():
    rng = np.random.default_rng(2)
    mask = rng.random((512, 4608)) < 0.5
    _, info = fspai.singular_values(mask, return_info=True)
    assert info.method == "lanczos"
    ip, ix, _ = csr_args(mask)
    assert _core.topk_singular_values(ip, ix, None, 512, 4608)[1]["route"] == "dense_gram"


def test_unknown_routes_are_refused():
    c = sp.csr_matrix(np.ones((5, 8)))
    with pytest.raises(ValueError, match="route"):
        _core.topk_singular_values(c.indptr.astype(np.int64), c.indices.astype(np.int32), None, 5, 8,
                                   route="bitmap")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(4))
def test_weighted_dense_gram_matches_dense_reference(dtype, seed):
    # float64 Gram from the rows' outer products (either orientation: rows or columns as the
    # Gram side), signed values read as |v|, pre-scaled by a power of two (undone by the hook).
    rng = np.random.default_rng(200 + seed)
    m, n = int(rng.integers(1, 300)), int(rng.integers(1, 300))
    mask = rng.random((m, n)) < rng.choice([0.02, 0.2, 1.0])
    exp = 15 if dtype == np.float32 else 100  # G = CᵀC stays finite in float64 (the binding unscales)
    w = (rng.standard_normal((m, n)) * mask * 10.0 ** rng.integers(-exp, exp)).astype(dtype)
    c = sp.csr_matrix(w)
    c.sort_indices()
    X = rng.standard_normal((3, min(m, n)))
    Y, _, _, used = _core._gram_apply(c.indptr.astype(np.int64), c.indices.astype(np.int32), c.data, m, n, X,
                                      route="dense_gram", weighted=True)
    assert used == "dense_gram"
    ref = (dense_gram(np.abs(c.toarray().astype(np.float64))) @ X.T).T
    np.testing.assert_allclose(Y, ref, rtol=1e-10, atol=1e-10 * max(np.abs(ref).max(), 1e-300))


@pytest.mark.parametrize("shape,density,expect", [((128, 1152), 0.1, "dense_gram"), ((1152, 128), 0.1, "dense_gram"),
                                                  ((300, 700), 0.3, None),  # a tie: either route
                                                  ((512, 4608), 0.01, "csr")])
def test_weighted_routes_agree_and_model_picks_dense_for_small_sides(shape, density, expect):
    rng = np.random.default_rng(9)
    mask = sp.random(*shape, density=density, random_state=rng, format="csr")
    mask.sort_indices()
    ip, ix = mask.indptr.astype(np.int64), mask.indices.astype(np.int32)
    w = rng.standard_normal(mask.nnz)
    ref = np.linalg.svd(np.abs(sp.csr_matrix((w, ix, ip), shape=shape).toarray()), compute_uv=False)[:3]
    used = {}
    for route in ("", "csr", "dense_gram"):
        sv, info = _core.topk_singular_values(ip, ix, w, *shape, k=3, route=route, dense_max=0)
        assert np.all(np.abs(sv - ref) <= np.maximum(1e-7 * ref, 5e-8 * ref[0])), (route, sv, ref)
        used[route] = info["route"]
    assert used["csr"] == "csr" and used["dense_gram"] == "dense_gram"
    # the cost model (priced for k = 2): dense Gram for a small side at 10 %, the CSR pass at 1 %
    auto = _core.topk_singular_values(ip, ix, w, *shape, k=2, dense_max=0)[1]["route"]
    assert auto == expect or expect is None
    pair = _core.layer_spectra([(ip, ix, w, *shape)], k=2, subgraphs=False)[0]
    np.testing.assert_allclose(pair["wsv"], ref[:2], rtol=1e-7)


@pytest.mark.parametrize("weighted", [False, True])
def test_short_rows_in_length_order_parallel_chunks(weighted):
    # The long side's rows average < 24 entries: the CSR route visits them grouped by length
    # (Part::order), in several chunks, in parallel when threads > 1. Same
    # product as the dense Gram, bit-identical for any thread count, both orientations.
    rng = np.random.default_rng(7)
    for shape in ((160, 120_000), (120_000, 160)):
        mask = sp.random(*shape, density=0.06, random_state=rng, format="csr")
        mask.data[:] = np.abs(rng.standard_normal(mask.nnz)) + 0.1 if weighted else 1.0
        mask.sort_indices()
        assert mask.nnz > (1 << 20) and mask.nnz < 24 * max(shape)
        ip, ix = mask.indptr.astype(np.int64), mask.indices.astype(np.int32)
        vals = mask.data if weighted else None
        s = min(shape)
        X = rng.standard_normal((4 if weighted else 2, s))
        a = _core._gram_apply(ip, ix, vals, *shape, X, route="csr", weighted=weighted, threads=1)[0]
        b = _core._gram_apply(ip, ix, vals, *shape, X, route="csr", weighted=weighted, threads=2)[0]
        assert np.array_equal(a, b)
        d = mask.toarray()
        ref = (dense_gram(d) @ X.T).T
        np.testing.assert_allclose(a, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_dense_gram_bit_rows_from_sorted_and_scattered_entries():
    # Both bitset builds (rows are the Gram side: one byte row per row, packed; columns are the
    # Gram side: bits scattered per entry), at densities from one entry to full rows.
    rng = np.random.default_rng(8)
    for shape in ((70, 1000), (1000, 70), (64, 64 * 5 + 3)):
        for density in (0.001, 0.3, 1.0):
            mask = rng.random(shape) < density
            ip, ix, _ = csr_args(mask)
            X = rng.standard_normal((2, min(shape)))
            Y = _core._gram_apply(ip, ix, None, *shape, X, route="dense_gram")[0]
            np.testing.assert_allclose(Y, (dense_gram(mask) @ X.T).T, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("vectors", [1, 2, 3, 4])
@pytest.mark.parametrize("weighted", [False, True])
def test_short_rows_of_every_length(vectors, weighted):
    # Rows of the long side with 0..12 entries (rows of ≤ 8 entries take the unrolled kernels, the
    # longer ones the general loop), shuffled so each length appears in every chunk, against the
    # dense Gram for 1..4 vectors (pattern and |W|, signed values on the weighted side).
    rng = np.random.default_rng(40 + vectors)
    s, rows = 64, 3000
    lengths = rng.integers(0, 13, rows)
    dense = np.zeros((rows, s))
    for r, ln in enumerate(lengths):
        cols = rng.choice(s, size=ln, replace=False)
        dense[r, cols] = rng.standard_normal(ln) if weighted else 1.0
    c = sp.csr_matrix(dense)
    c.sort_indices()
    assert c.nnz < 24 * rows  # the length-ordered visit
    X = rng.standard_normal((vectors, s))
    args = (c.indptr.astype(np.int64), c.indices.astype(np.int32), c.data if weighted else None, rows, s, X)
    Y = _core._gram_apply(*args, route="csr", weighted=weighted, threads=1)[0]
    np.testing.assert_allclose(Y, (dense_gram(np.abs(dense)) @ X.T).T, rtol=1e-12,
                               atol=1e-12 * np.abs(X).max() * c.nnz)
    assert np.array_equal(Y, _core._gram_apply(*args, route="csr", weighted=weighted, threads=2)[0])


@pytest.mark.parametrize("shape", [(1024, 3000), (3000, 1100), (1029, 2999), (1024, 65600)])
def test_dense_gram_large_side_storage(shape):
    # From s = 1024 the pattern Gram is stored as uint16 counts when L < 2^16 (exact; only the
    # lower triangle, each entry used for y_i and y_j), as a full float32 matrix otherwise
    # (1024 × 65600); the popcount build runs in cache-sized column tiles. Same product as the
    # dense Gram for a pair and a single vector, bit-identical for any thread count.
    rng = np.random.default_rng(shape[1])
    mask = sp.random(*shape, density=0.3 if max(shape) < 10_000 else 0.004, random_state=rng, format="csr")
    mask.data[:] = 1
    ip, ix, c = csr_args(mask)
    s = min(shape)
    X = rng.standard_normal((3, s))
    Y = _core._gram_apply(ip, ix, None, *shape, X, route="dense_gram", threads=1)[0]
    ref = (dense_gram(mask.toarray()) @ X.T).T
    np.testing.assert_allclose(Y, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    assert np.array_equal(Y, _core._gram_apply(ip, ix, None, *shape, X, route="dense_gram", threads=2)[0])
    if max(shape) < 10_000:  # a whole solve on this storage meets the accuracy contract
        sv, info = _core.topk_singular_values(ip, ix, None, *shape, k=3, route="dense_gram")
        want = np.sqrt(np.linalg.eigvalsh(dense_gram(mask.toarray()))[::-1][:3])
        assert info["route"] == "dense_gram"
        assert np.all(np.abs(sv - want) <= np.maximum(1e-7 * want, 5e-8 * want[0]))


@pytest.mark.parametrize("shape,density,skew", [((2000, 300), 0.2, False), ((300, 2000), 0.2, False),
                                                ((3000, 257), 0.3, True), ((129, 5000), 0.5, True)])
def test_weighted_dense_gram_parallel_build_is_bit_identical(shape, density, skew):
    # Above ~5e5 multiply-adds the |W| Gram is built by bands of G rows on several threads; every
    # entry still sums its terms in row order, so the product is bit-identical for any thread
    # count (skew: the entries crowd into the first Gram-side nodes, so the bands are uneven).
    rng = np.random.default_rng(shape[0] + shape[1])
    p = rng.random(shape) < density
    if skew:
        side = 1 if shape[0] >= shape[1] else 0
        p &= (rng.random(shape) < np.linspace(1.0, 0.02, shape[side])[None, :] if side == 1 else
              rng.random(shape) < np.linspace(1.0, 0.02, shape[side])[:, None])
    p[rng.integers(0, shape[0], 5), :] = False  # a few empty long- or short-side rows
    w = (rng.standard_normal(shape) * p).astype(np.float32)
    c = sp.csr_matrix(w)
    c.sort_indices()
    args = (c.indptr.astype(np.int64), c.indices.astype(np.int32), c.data, *shape)
    X = rng.standard_normal((2, min(shape)))
    ys = [_core._gram_apply(*args, X, route="dense_gram", weighted=True, threads=t)[0] for t in (1, 2, 3)]
    assert np.array_equal(ys[0], ys[1]) and np.array_equal(ys[0], ys[2])
    ref = (dense_gram(np.abs(w.astype(np.float64))) @ X.T).T
    np.testing.assert_allclose(ys[0], ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(300, 5000), (64, 40000)])
def test_transposed_copy_in_bands_is_thread_independent(shape, weighted):
    # A part whose rows are the Gram side is transposed for the fused CSR pass; the copy is written
    # in cache-sized column bands (here several, and more with threads), each transposed row by one
    # band in row order: the product is bit-identical for any thread count and matches NumPy.
    rng = np.random.default_rng(shape[1])
    d = sp.random(*shape, density=0.05, random_state=rng, format="csr", dtype=np.float64).toarray()
    d[d != 0] = rng.standard_normal(np.count_nonzero(d))
    d[:, rng.integers(0, shape[1], 50)] = 0  # empty columns, some at band edges
    c = sp.csr_matrix(d)
    c.sort_indices()
    args = (c.indptr.astype(np.int64), c.indices.astype(np.int32), c.data if weighted else None, *shape)
    X = rng.standard_normal((2, min(shape)))
    ys = [_core._gram_apply(*args, X, route="csr", weighted=weighted, threads=t)[0] for t in (1, 2, 3)]
    assert np.array_equal(ys[0], ys[1]) and np.array_equal(ys[0], ys[2])
    a = np.abs(c.toarray()) if weighted else (c.toarray() != 0).astype(np.float64)
    ref = (dense_gram(a) @ X.T).T
    np.testing.assert_allclose(ys[0], ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("words_mod_8", range(8))
def test_dense_gram_popcount_at_every_bit_row_length(words_mod_8):
    # The AND+popcount build runs 8 words at a time and takes the last 1–7 words of a bit row by
    # masked loads: every row length mod 8 words (and a partial last word) gives the exact counts.
    rng = np.random.default_rng(words_mod_8)
    L = 64 * (16 + words_mod_8) - int(rng.integers(0, 64))
    for shape in ((37, L), (L, 41)):
        mask = rng.random(shape) < 0.2
        ip, ix, _ = csr_args(mask)
        s = min(shape)
        X = np.eye(s)[:2]  # G's first two columns, exactly
        for threads in (1, 2):
            Y = _core._gram_apply(ip, ix, None, *shape, X, route="dense_gram", threads=threads)[0]
            assert np.array_equal(Y, dense_gram(mask)[:, :2].T)


@pytest.mark.parametrize("shape,density", [((700, 300), 0.5), ((2000, 130), 0.3), ((5000, 64), 0.9), ((400, 257), 0.05),
                                           ((90, 200), 1.0)])
@pytest.mark.parametrize("weighted", [False, True])
def test_weighted_gram_tiled_build_is_bit_identical_to_scattered(shape, density, weighted):
    # The tiled build (rows with many entries: 64×64 tiles fed by dense 64-wide row slices) adds
    # every entry's row terms in the same order with the same operands as the scattered build,
    # and an empty slot adds exactly 0: both give the same G to the bit, for any thread count,
    # with partial last tiles (s = 130, 257) and a one-tile side (64).
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    w = rng.standard_normal(shape) * (rng.random(shape) < density)
    w[rng.integers(0, shape[0], 3)] = 0.0  # empty rows
    w[:, rng.integers(0, shape[1], 3)] = 0.0  # empty Gram-side nodes
    w *= 10.0 ** rng.integers(-30, 30)
    c = sp.csr_matrix(w)
    c.sort_indices()
    args = (c.indptr.astype(np.int64), c.indices.astype(np.int32), c.data, *shape)
    gs = [_core._gram_dense(*args, weighted=weighted, threads=t, build=b) for b in ("scatter", "tiles")
          for t in (1, 2)]
    for g in gs[1:]:
        assert np.array_equal(g, gs[0])
    a = np.abs(w) if weighted else (w != 0).astype(np.float64)
    np.testing.assert_allclose(gs[0], a.T @ a, rtol=1e-12, atol=1e-12 * np.abs(a.T @ a).max())
    assert np.array_equal(gs[0], gs[0].T)
