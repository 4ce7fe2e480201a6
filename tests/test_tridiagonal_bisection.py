"""Sturm-count bisection for the top Ritz values of the Lanczos tridiagonal (private hook)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fspai import _core

top = _core._tridiagonal_top


def ref(d, e, q):
    n = len(d)
    T = np.diag(np.asarray(d, float))
    if n > 1:
        T += np.diag(np.asarray(e[: n - 1], float), 1) + np.diag(np.asarray(e[: n - 1], float), -1)
    return np.sort(np.linalg.eigvalsh(T))[::-1][:q]


def tnorm(d, e):
    return max(np.abs(d).max(), 1e-300) + (2 * np.abs(e).max() if len(e) else 0)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 40, 120])
def test_random_matches_eigvalsh(n):
    rng = np.random.default_rng(n)
    d, e = rng.standard_normal(n), rng.standard_normal(max(n - 1, 0))
    for q in (1, 3, n, n + 2):
        got = top(d, e, q)
        want = ref(d, e, q)
        assert len(got) == min(q, n)
        assert np.all(np.diff(got) <= 0)
        np.testing.assert_allclose(got, want, rtol=0, atol=8 * np.finfo(float).eps * tnorm(d, e) * max(n, 4))


def test_repeated_and_split():
    # zero off-diagonals split T; every copy of a repeated eigenvalue is returned
    d = np.array([1.0, 2.0, 1.0, 2.0, 2.0, 0.5, 2.0])
    e = np.zeros(6)
    assert top(d, e, 5) == pytest.approx([2.0, 2.0, 2.0, 2.0, 1.0], abs=2e-15)
    # a split block that repeats another block's spectrum
    b = np.array([3.0, 1.0]), np.array([0.5])
    d2 = np.concatenate([b[0], b[0], [0.1]])
    e2 = np.array([0.5, 0.0, 0.5, 0.0])
    got = top(d2, e2, 4)
    np.testing.assert_allclose(got, ref(d2, e2, 4), atol=1e-14)
    assert got[0] == pytest.approx(got[1], abs=1e-15)


def test_clustered_and_degenerate():
    # Wilkinson W21+: pairs of eigenvalues agreeing to ~1e-14
    m = 10
    d = np.abs(np.arange(-m, m + 1)).astype(float)
    e = np.ones(2 * m)
    np.testing.assert_allclose(top(d, e, 6), ref(d, e, 6), atol=1e-13)
    assert top(np.zeros(6), np.zeros(5), 3) == pytest.approx([0, 0, 0], abs=1e-300)
    assert top(np.array([4.0]), np.array([]), 3) == [4.0]
    assert top(np.array([3.0, 1.0]), np.array([0.5]), 3) == pytest.approx([2 + np.sqrt(1.25), 2 - np.sqrt(1.25)],
                                                                            abs=2e-15)
    assert top(np.array([1.0, 2.0]), np.array([0.0]), 0) == []


def test_warm_start_wrong_or_right_guesses_same_accuracy():
    rng = np.random.default_rng(7)
    n = 60
    d, e = rng.standard_normal(n), rng.standard_normal(n - 1)
    want = ref(d, e, 3)
    atol = 8 * np.finfo(float).eps * tnorm(d, e) * 8
    for lo, hi in [(want - 1e-12, want + 1e-6), (want + 0.3, want + 0.5), (want - 5, want - 4),
                   ([np.nan] * 3, [np.inf] * 3)]:
        np.testing.assert_allclose(top(d, e, 3, list(lo), list(hi)), want, rtol=0, atol=atol)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=30), st.integers(1, 6), st.data())
def test_hypothesis(d, q, data):
    e = data.draw(st.lists(st.sampled_from([0.0, 1.0, -1e-9, 2.5]) | st.floats(-1e3, 1e3),
                           min_size=len(d) - 1, max_size=len(d) - 1))
    d, e = np.array(d), np.array(e)
    got = top(d, e, q)
    np.testing.assert_allclose(got, ref(d, e, q), rtol=0, atol=16 * np.finfo(float).eps * tnorm(d, e) * len(d) + 1e-300)


@pytest.mark.parametrize("scale", [1e-150, 1e-8, 1.0, 1e8, 1e150])
@pytest.mark.parametrize("case", ["lanczos", "cluster", "near_split", "glued"])
def test_newton_phase_hard_cases(case, scale):
    # Once an interval isolates its eigenvalue the search takes Newton steps on det(T − xI);
    # counts alone move the bounds, so these must match eigvalsh to the bisection accuracy.
    rng = np.random.default_rng(11)
    if case == "lanczos":  # the tridiagonal of a Lanczos run on a Gram with a bulk edge
        lam = np.concatenate(([50.0, 10.0, 9.9999], rng.uniform(0, 9.99, 200)))
        v = rng.standard_normal(lam.size)
        v /= np.linalg.norm(v)
        n = 60
        d, e = np.zeros(n), np.zeros(n - 1)
        Q = np.zeros((lam.size, n))
        Q[:, 0] = v
        for j in range(n):
            w = lam * Q[:, j]
            d[j] = Q[:, j] @ w
            w -= Q[:, :j + 1] @ (Q[:, :j + 1].T @ w)
            w -= Q[:, :j + 1] @ (Q[:, :j + 1].T @ w)
            if j + 1 < n:
                e[j] = np.linalg.norm(w)
                Q[:, j + 1] = w / e[j]
    elif case == "cluster":  # top eigenvalues 1e-12 apart (relative)
        n = 40
        A = np.diag(np.concatenate(([5.0, 5.0 + 5e-12, 5.0 - 5e-12], rng.uniform(0, 4, n - 3))))
        Qm, _ = np.linalg.qr(rng.standard_normal((n, n)))
        from scipy.linalg import hessenberg
        H = hessenberg(Qm @ A @ Qm.T)
        d, e = np.diag(H).copy(), np.diag(H, 1).copy()
    elif case == "near_split":  # an off-diagonal at 1e-14 of the rest: two nearly decoupled blocks
        n = 50
        d, e = rng.standard_normal(n), rng.uniform(0.5, 1.0, n - 1)
        e[20] = 1e-14
    else:  # two copies of Wilkinson's W21+ glued by a tiny coupling
        w = np.abs(np.arange(-10, 11)).astype(float)
        d = np.concatenate((w, w))
        e = np.concatenate((np.ones(20), [1e-10], np.ones(20)))
    d, e = d * scale, e * scale
    for q in (1, 3, 5):
        got = top(d, e, q)
        np.testing.assert_allclose(got, ref(d, e, q), rtol=0, atol=8 * np.finfo(float).eps * tnorm(d, e) * len(d))
        assert np.all(np.diff(got) <= 0)


@pytest.mark.parametrize("scale", [1e-300, 1e-287, 1e-160, 1e160, 1e300])
def test_extreme_scales_do_not_split_or_overflow(scale):
    # e² underflows below ~1e-162 and overflows above ~1e154; T is scaled by a power of two first,
    # so a tiny T is not mistaken for a split one (hypothesis found d = [0, 0], e = [1.29e-287],
    # which had returned 0 for the eigenvalue 1.29e-287) and a huge one does not overflow.
    d, e = np.array([0.0, 0.0]), np.array([1.2856019476602362e-287 / 1e-287 * scale])
    np.testing.assert_allclose(top(d, e, 2), [e[0], -e[0]], rtol=1e-14)
    rng = np.random.default_rng(3)
    d, e = rng.standard_normal(25) * scale, rng.standard_normal(24) * scale
    np.testing.assert_allclose(top(d, e, 4), ref(d, e, 4), rtol=0, atol=16 * np.finfo(float).eps * tnorm(d, e) * 25)
