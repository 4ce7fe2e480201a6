"""Hypothesis properties (research notes §6 claim 10)."""
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fspai

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layers(draw, max_rows=60, max_cols=90):
    m = draw(st.integers(1, max_rows))
    n = draw(st.integers(1, max_cols))
    density = draw(st.sampled_from([0.02, 0.05, 0.1, 0.3, 0.6, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    mask = rng.random((m, n)) < density
    weight = rng.standard_normal((m, n))
    return mask, weight, rng


def close(a, b, tol=1e-7):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


@SETTINGS
@given(layers())
def test_invariant_to_permuting_nodes(data):
    mask, weight, rng = data
    pr, pc = rng.permutation(mask.shape[0]), rng.permutation(mask.shape[1])
    a = fspai.layer_metrics(mask, weight)
    b = fspai.layer_metrics(mask[pr][:, pc], weight[pr][:, pc])
    for key in ("mu0", "mu_hat", "delta_r", "delta_s", "weighted_gap", "imdb", "imdb_norm", "weighted_imdb", "narc"):
        assert close(getattr(a, key), getattr(b, key), 1e-6), key
    assert a.imdb_count == b.imdb_count


@SETTINGS
@given(layers(), st.floats(1e-3, 1e3))
def test_weighted_gap_scales_linearly(data, scale):
    mask, weight, _ = data
    g1 = fspai.weighted_gap(mask, weight)
    g2 = fspai.weighted_gap(mask, weight * scale)
    assert close(g2, scale * g1, 1e-6) if not math.isnan(g1) else math.isnan(g2)
    w1 = fspai.imdb(mask, weight).weighted_imdb
    w2 = fspai.imdb(mask, weight * scale).weighted_imdb
    assert close(w2, scale * w1, 1e-6)
    # the structural axes do not see the weights at all
    assert close(fspai.imdb(mask, weight).imdb, fspai.imdb(mask, weight * scale).imdb, 1e-12)


@SETTINGS
@given(layers(), st.integers(1, 20), st.integers(1, 20))
def test_isolated_nodes_change_only_degree_averages(data, extra_rows, extra_cols):
    mask, weight, _ = data
    m, n = mask.shape
    big = np.zeros((m + extra_rows, n + extra_cols), bool)
    big[:m, :n] = mask
    wbig = np.zeros(big.shape)
    wbig[:m, :n] = weight
    a = fspai.ramanujan_gap(mask)
    b = fspai.ramanujan_gap(big)
    assert close(a.mu0, b.mu0, 1e-9) and close(a.mu_hat, b.mu_hat, 1e-9)
    assert (a.n_in, a.n_out, a.edges) == (b.n_in, b.n_out, b.edges)  # isolated nodes are removed
    assert close(a.delta_r, b.delta_r, 1e-9)
    np.testing.assert_allclose(fspai.singular_values(big, wbig), fspai.singular_values(mask, weight), rtol=1e-9)
    # NaRC is the one metric that sees the original sizes N_in, N_out
    na, nb = fspai.narc(mask), fspai.narc(big)
    assert (math.isnan(na) and math.isnan(nb)) or na != nb or (extra_rows == 0 and extra_cols == 0)


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 40))
def test_complete_bipartite(a, b):
    s = fspai.singular_values(np.ones((a, b), bool))
    assert close(s[0], math.sqrt(a * b), 1e-12) and abs(s[1]) <= 1e-7 * s[0]


@SETTINGS
@given(layers(max_rows=30, max_cols=30))
def test_transpose_has_same_spectrum(data):
    mask, weight, _ = data
    np.testing.assert_allclose(fspai.singular_values(mask.T, weight.T), fspai.singular_values(mask, weight),
                               rtol=1e-9, atol=1e-12)


@SETTINGS
@given(layers(max_rows=400, max_cols=200), st.integers(-100, 100), st.integers(1, 3))
def test_gram_builds_agree_to_the_bit(data, exponent, threads):
    # The dense |W| Gram (pattern too) by scattered updates and by 64×64 tiles: every entry adds
    # the same products in the same row order, so the two builds and any thread count agree exactly.
    import scipy.sparse as sp

    from fspai import _core

    mask, weight, _ = data
    c = sp.csr_matrix(mask * weight * 10.0 ** exponent)
    c.sort_indices()
    args = (c.indptr.astype(np.int64), c.indices.astype(np.int32), c.data, *c.shape)
    for weighted in (False, True):
        a = _core._gram_dense(*args, weighted=weighted, threads=1, build="scatter")
        b = _core._gram_dense(*args, weighted=weighted, threads=threads, build="tiles")
        assert np.array_equal(a, b)
