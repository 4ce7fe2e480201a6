"""The exact dense path (components whose Gram side is ≤ dense_max): Gram built on its upper
triangle and mirrored, Householder tridiagonalisation, then Sturm bisection for the top k (QL
when all are asked for). Against numpy's SVD at the accuracy contract, every k, repeated σ."""
import numpy as np
import pytest
import scipy.sparse as sp

from fspai import _core


def _sv(dense, weighted, k):
    c = sp.csr_matrix(dense)
    c.sort_indices()
    vals = c.data.astype(np.float64) if weighted else None
    return _core.topk_singular_values(c.indptr.astype(np.int64), c.indices.astype(np.int32), vals, *dense.shape, k=k)


def _check(got, ref):
    ref = np.asarray(ref)[:got.size]
    assert np.all(np.abs(got - ref) <= np.maximum(1e-7 * ref, 5e-8 * ref[0]) + 1e-300), (got, ref)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_dense_path_every_k_matches_svd(weighted, seed):
    rng = np.random.default_rng(seed)
    s, L = int(rng.integers(11, 97)), int(rng.integers(100, 400))
    mask = rng.random((s, L)) < 0.3
    mask[:, 0] = True  # one component
    dense = np.where(mask, np.abs(rng.standard_normal((s, L))) if weighted else 1.0, 0.0)
    ref = np.linalg.svd(np.abs(dense), compute_uv=False)
    for k in sorted({1, 2, 5, s - 1, s}):
        got, info = _sv(dense, weighted, k)
        assert info["route"] == "dense" and info["dense_components"] == 1
        _check(got, ref)


def test_dense_path_returns_every_copy_of_a_repeated_value():
    # K_{n,n} minus a perfect matching: σ = n−1 once and 1 with multiplicity n−1.
    n = 40
    dense = np.ones((n, n)) - np.eye(n)
    for k in (2, 5, 39):
        got, info = _sv(dense, False, k)
        assert info["route"] == "dense"
        np.testing.assert_allclose(got, [n - 1] + [1.0] * (k - 1), rtol=1e-12)
