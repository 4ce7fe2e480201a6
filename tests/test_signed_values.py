"""The core reads weight values as |v|: signed weights give exactly what their absolute values give.

This is what lets fspai pass a float32/float64 sparse weight stored on the mask's support to the
core without materialising an |W| copy (fspai._convert._pick_sparse). Every place that loads a
value is covered: the CSR step kernels (1, 2 and 4 interleaved vectors), the exact dense path of
small components, the transposed and the extracted-subgraph copies, the ‖C x‖ refinement of tiny
σ, the CUDA plan's host logic, and the public API on scipy input.
"""
import numpy as np
import pytest
import scipy.sparse as sp

import fspai
from fspai import _core


def _signed_layer(shape, density, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    m = sp.random(*shape, density=density, random_state=rng, format="csr", dtype=np.float64)
    m.sort_indices()
    w = rng.standard_normal(m.nnz).astype(dtype)
    w[w == 0] = 1.0
    return m.indptr.astype(np.int64), m.indices.astype(np.int32), w, shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,density", [((40, 60), 0.3), ((300, 700), 0.05), ((700, 300), 0.05),
                                           ((6, 9), 0.5)])
@pytest.mark.parametrize("route", ["", "csr"])
def test_topk_signed_equals_abs(dtype, shape, density, route):
    indptr, indices, w, (r, c) = _signed_layer(shape, density, 1, dtype)
    a, ia = _core.topk_singular_values(indptr, indices, w, r, c, k=3, route=route)
    b, ib = _core.topk_singular_values(indptr, indices, np.abs(w), r, c, k=3, route=route)
    assert np.array_equal(a, b)  # |·| at the load: bit-identical
    assert ia["steps"] == ib["steps"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_apply_signed_equals_abs(dtype):
    indptr, indices, w, (r, c) = _signed_layer((200, 500), 0.05, 2, dtype)
    X = np.random.default_rng(3).standard_normal((4, min(r, c)))
    for nvec in (1, 2, 4):
        ya = _core._gram_apply(indptr, indices, w, r, c, X[:nvec], route="csr", weighted=True)[0]
        yb = _core._gram_apply(indptr, indices, np.abs(w), r, c, X[:nvec], route="csr", weighted=True)[0]
        assert np.array_equal(ya, yb)


@pytest.mark.parametrize("call", [_core.layer_spectra, _core._cuda_host_emulation])
def test_layer_spectra_signed_equals_abs(call):
    layers = [_signed_layer(s, d, i) for i, (s, d) in enumerate([((64, 200), 0.1), ((150, 90), 0.2)])]
    got = call([(p, i, w, *s) for p, i, w, s in layers], k=2)
    ref = call([(p, i, np.abs(w), *s) for p, i, w, s in layers], k=2)
    for g, f in zip(got, ref):
        assert np.array_equal(g["sv"], f["sv"]) and np.array_equal(g["wsv"], f["wsv"])
        assert np.array_equal(np.nan_to_num(g["sub_wsv"], nan=-1), np.nan_to_num(f["sub_wsv"], nan=-1))


def test_rank_deficient_tiny_sigma_signed():
    # σ2 ≈ 0 goes through the ‖C x‖ refinement, which also reads values.
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal(120), rng.standard_normal(400)
    W = np.outer(a, b)
    M = sp.csr_array(np.ones_like(W, dtype=bool))
    sv_signed = fspai.singular_values(M, sp.csr_array(W))
    sv_abs = fspai.singular_values(M, np.abs(W))
    np.testing.assert_array_equal(sv_signed, sv_abs)
    assert sv_signed[1] <= 1e-12 * sv_signed[0]


def test_public_api_sparse_signed_weight():
    rng = np.random.default_rng(5)
    M = sp.random(256, 1152, density=0.1, random_state=rng, format="csr").astype(bool)
    W = M.astype(np.float32).multiply(rng.standard_normal(M.shape).astype(np.float32)).tocsr()
    c_signed = fspai.coordinates([M], [W])[0]
    c_abs = fspai.coordinates([M], [abs(W)])[0]
    assert c_signed == c_abs
    assert np.isfinite(c_signed.weighted_gap) and np.isfinite(c_signed.weighted_imdb)
    assert fspai.weighted_gap(M, W) == fspai.weighted_gap(M, abs(W))
