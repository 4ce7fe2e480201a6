"""The block Lanczos process (csrc/lanczos.cpp, BlockRun) and its band eigensolver.

* ``_core._band_top`` (Givens band reduction + tridiagonal bisection + inverse iteration) against
  ``numpy.linalg.eigh`` on banded matrices, including repeated and split spectra;
* the solver's use of it: block vs independent runs (``block_components``), the fallback to
  independent restarted runs when the block basis fills, breakdown (rank-deficient and
  invariant-subspace starts), repeated σ within a component, thread independence.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fspai import _core


def _band(n, w, rng, scale=1.0):
    a = rng.standard_normal((n, n)) * scale
    a = a + a.T
    i, j = np.indices((n, n))
    a[np.abs(i - j) > w] = 0.0
    return a


def _check_band(a, w, q):
    lam, z = _core._band_top(a, w, q)
    ref = np.linalg.eigvalsh(a)[::-1][:q]
    nrm = max(np.abs(a).sum(axis=1).max(), 1e-300)
    assert lam.shape == (min(q, a.shape[0]),) and z.shape == (a.shape[0], lam.size)
    np.testing.assert_allclose(lam, ref, rtol=0, atol=1e-12 * nrm)
    assert np.all(np.linalg.norm(a @ z - z * lam, axis=0) <= 1e-11 * nrm)
    np.testing.assert_allclose(z.T @ z, np.eye(lam.size), atol=1e-9)


@pytest.mark.parametrize("n,w", [(1, 1), (2, 2), (7, 3), (10, 2), (11, 2), (40, 1), (60, 2), (61, 3), (90, 4), (64, 16)])
def test_band_top_matches_numpy(n, w):
    rng = np.random.default_rng(n * 31 + w)
    _check_band(_band(n, w, rng), w, 4)


def test_band_top_repeated_and_split():
    rng = np.random.default_rng(5)
    blk = _band(12, 2, rng)
    a = np.kron(np.eye(4), blk)          # four identical blocks: every eigenvalue 4 times, T split
    _check_band(a, 2, 6)
    _check_band(np.zeros((9, 9)), 2, 3)  # all zero
    d = np.diag(np.r_[np.full(5, 3.0), np.arange(20.0)])  # diagonal with a repeated top value
    _check_band(d, 2, 6)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 70), w=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       exp10=st.integers(-150, 150))
def test_band_top_property(n, w, seed, exp10):
    _check_band(_band(n, w, np.random.default_rng(seed), 10.0 ** exp10), w, 3)


def _core_sv(mask, **kw):
    c = sp.csr_matrix(mask.astype(bool)).astype(np.float64)
    c.sort_indices()
    return _core.topk_singular_values(c.indptr.astype(np.int64), c.indices.astype(np.int32), None, *c.shape, **kw)


def _dense(mask, k):
    return np.linalg.svd(mask.astype(float), compute_uv=False)[:k]


def _contract(got, ref):
    assert np.all(np.abs(got - ref) <= np.maximum(1e-7 * ref, 5e-8 * ref[0])), (got, ref)


def test_block_process_serves_ordinary_layers_and_small_sides_use_runs():
    rng = np.random.default_rng(0)
    mask = rng.random((300, 900)) < 0.05
    sv, info = _core_sv(mask, k=2, dense_max=0)
    assert info["lanczos_components"] == 1 and info["block_components"] == 1 and info["restarts"] == 0
    _contract(sv, _dense(mask, 2))
    small = rng.random((40, 200)) < 0.2           # Gram side 40 < the block minimum: independent runs
    sv, info = _core_sv(small, k=2, dense_max=0)
    assert info["lanczos_components"] == 1 and info["block_components"] == 0
    _contract(sv, _dense(small, 2))


def test_full_block_basis_falls_back_to_restarted_runs():
    # A basis of 12 vectors cannot certify σ2 of this layer: the block process fills it and the
    # independent runs (thick restart) finish the solve.
    rng = np.random.default_rng(1)
    mask = rng.random((400, 1200)) < 0.05
    sv, info = _core_sv(mask, k=2, max_basis=12)
    assert info["block_components"] == 0 and info["restarts"] > 0
    _contract(sv, _dense(mask, 2))


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_repeated_sigma_within_a_component(k):
    # circulant graph: σ2 = σ3 (and further pairs) within one connected component
    n = 150
    mask = np.zeros((n, n), bool)
    for o in (0, 1, 3, 7):
        mask[np.arange(n), (np.arange(n) + o) % n] = True
    sv, info = _core_sv(mask, k=k)
    assert info["block_components"] == 1 and info["starts"] == max(2, k)
    _contract(sv, _dense(mask, k))


def test_rank_one_and_low_rank_patterns_break_down_cleanly():
    for mask in (np.ones((300, 400), bool), np.kron(np.ones((3, 5), bool), np.eye(100, dtype=bool))[:, :420]):
        for k in (2, 3, 5):
            sv, info = _core_sv(mask, k=k)
            ref = _dense(mask, k)
            assert abs(sv[0] - ref[0]) <= 1e-12 * ref[0]
            assert np.all(np.abs(sv - ref) <= 1e-9 * ref[0])


def test_block_results_thread_independent():
    rng = np.random.default_rng(2)
    mask = rng.random((700, 2000)) < 0.1
    a, ia = _core_sv(mask, k=3, threads=1)
    b, ib = _core_sv(mask, k=3, threads=2)
    assert ia["block_components"] == 1 and np.array_equal(a, b) and ia["steps"] == ib["steps"]
