"""fspai.stats: parity with scipy.stats, known answers, properties, edge cases."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from scipy import stats as st

from fspai import stats

SEEDS = [0, 1, 2, 3, 4]


# ------------------------------------------------------------------ parity with scipy.stats
@pytest.mark.parametrize("seed", SEEDS)
def test_t_interval_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(0.3, 1.0, size=int(rng.integers(2, 30)))
    lo, hi = stats.t_interval(d, 0.9)
    ci = st.ttest_1samp(d, 0.0).confidence_interval(0.9)
    assert lo == pytest.approx(ci.low, rel=1e-12, abs=1e-12)
    assert hi == pytest.approx(ci.high, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_sign_flip_matches_scipy_permutation_test(seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(0.2, 1.0, size=int(rng.integers(1, 12)))
    ref = st.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf,
                              alternative="two-sided").pvalue
    p, exact = stats.sign_flip_pvalue(d)
    assert exact
    assert p == pytest.approx(ref, rel=1e-12)
    assert stats.permutation_pvalue(d) == p


@pytest.mark.parametrize("seed", SEEDS)
def test_wilcoxon_matches_scipy_exact(seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(0.5, 1.0, size=int(rng.integers(1, 15)))   # distinct, non-zero
    assert stats.wilcoxon_pvalue(d) == pytest.approx(st.wilcoxon(d, method="exact").pvalue,
                                                     rel=1e-12)


@pytest.mark.parametrize("d", [[1, 1, 2, -2, 3, 4, -0.5, 5], [0, 1, 2, -3, 4, 0, 5],
                               [2, 2, 2, -2, 1, 1]])
def test_wilcoxon_with_ties_and_zeros_matches_scipy_permutation(d):
    ref = st.wilcoxon(d, method=st.PermutationMethod(n_resamples=np.inf)).pvalue
    assert stats.wilcoxon_pvalue(d) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_pearson_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 40))
    x = rng.normal(size=n)
    y = 0.5 * x + rng.normal(size=n)
    r = stats.pearson(x, y, 0.9)
    ref = st.pearsonr(x, y)
    ci = ref.confidence_interval(0.9)
    assert r.n == n
    assert r.r == pytest.approx(ref.statistic, rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_spearman_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 40))
    x = rng.normal(size=n)
    y = np.round(x + rng.normal(size=n), 1)               # some ties
    r = stats.spearman(x, y, n_resamples=4000, seed=seed)
    ref = st.spearmanr(x, y)
    assert r.r == pytest.approx(ref.statistic, rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    boot = st.bootstrap((x, y), lambda a, b: st.spearmanr(a, b).statistic, paired=True,
                        vectorized=False, n_resamples=4000, method="percentile",
                        rng=np.random.default_rng(seed)).confidence_interval
    assert r.ci_low == pytest.approx(boot.low, abs=0.06)
    assert r.ci_high == pytest.approx(boot.high, abs=0.06)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_bootstrap_interval_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(size=25)
    lo, hi = stats.bootstrap_interval(d, n_resamples=20_000, seed=seed)
    ci = st.bootstrap((d,), np.mean, n_resamples=20_000, method="percentile",
                      rng=np.random.default_rng(seed + 100)).confidence_interval
    sd = d.std(ddof=1) / math.sqrt(len(d))
    assert abs(lo - ci.low) < 0.1 * sd and abs(hi - ci.high) < 0.1 * sd


def test_monte_carlo_agrees_with_exact():
    d = np.random.default_rng(7).normal(0.4, 1.0, size=18)
    exact, e = stats.sign_flip_pvalue(d, exact_max=18)
    mc, m = stats.sign_flip_pvalue(d, exact_max=10, n_resamples=200_000, seed=3)
    assert e and not m
    assert mc == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 200_000) + 1e-5)


# ------------------------------------------------------------------ known answers
def test_known_paired_answer():
    r = stats.paired_difference([1, 2, 3, 4, 5])
    assert r.n == 5 and r.mean_diff == 3.0 and r.wins == 5 and r.losses == 0
    assert (r.ci_low, r.ci_high) == pytest.approx((1.0367568385224428, 4.963243161477557))
    assert r.p_value == pytest.approx(2 / 32)                 # only all-+ and all-- reach |3|
    assert r.min_p == pytest.approx(0.0625)
    assert "smallest attainable p-value is 0.0625" in r.note
    assert stats.paired_difference([1, 2, 3, 4, 5, 6], test="wilcoxon").p_value == \
        pytest.approx(2 / 64)


def test_paired_difference_of_two_samples():
    a, b = [0.90, 0.85, 0.88], [0.80, 0.86, 0.83]
    r = stats.paired_difference(a, b)
    assert r.mean_diff == pytest.approx(np.mean(np.subtract(a, b)))
    assert (r.wins, r.losses, r.ties) == (2, 1, 0)


def test_holm_known_answer():
    adj = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adj == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adj = stats.holm([0.5, float("nan"), 0.01])
    assert adj[0] == pytest.approx(0.5) and math.isnan(adj[1]) and adj[2] == pytest.approx(0.02)
    assert stats.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def test_mean_std_compatible():
    assert stats.mean_std([1.0, None, float("nan"), 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert stats.mean_std([2.0]) == (2.0, 0.0)
    m, s = stats.mean_std([])
    assert math.isnan(m) and math.isnan(s)


def test_bootstrap_exhaustive_is_deterministic():
    d = [0.0, 1.0, 3.0]                                          # 27 resamples, all enumerated
    assert stats.bootstrap_interval(d, seed=1) == stats.bootstrap_interval(d, seed=2)
    means = np.array([np.mean(t) for t in np.array(np.meshgrid(d, d, d)).reshape(3, -1).T])
    assert stats.bootstrap_interval(d) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))


# ------------------------------------------------------------------ properties
finite = hst.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)
diff_lists = hst.lists(finite, min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(diff_lists)
def test_sign_flip_symmetry(d):
    r = stats.paired_difference(d)
    m = stats.paired_difference([-x for x in d])
    assert m.mean_diff == pytest.approx(-r.mean_diff, abs=1e-12)
    assert (m.ci_low, m.ci_high) == pytest.approx((-r.ci_high, -r.ci_low), abs=1e-12)
    assert m.p_value == pytest.approx(r.p_value)
    assert (m.wins, m.losses) == (r.losses, r.wins)


@settings(max_examples=60, deadline=None)
@given(diff_lists, hst.floats(-5, 5, allow_nan=False))
def test_shift_invariance(b, c):
    a = [x + 0.1 * i for i, x in enumerate(b)]
    r1 = stats.paired_difference(a, b)
    r2 = stats.paired_difference([x + c for x in a], [x + c for x in b])
    assert r2.mean_diff == pytest.approx(r1.mean_diff, abs=1e-9)
    assert r2.ci_low == pytest.approx(r1.ci_low, abs=1e-9)
    assert r2.p_value == pytest.approx(r1.p_value, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(diff_lists, hst.sampled_from(["t", "bootstrap"]), hst.sampled_from(["permutation",
                                                                            "wilcoxon"]))
def test_ci_contains_mean_and_p_in_range(d, ci, test):
    r = stats.paired_difference(d, ci=ci, test=test, n_resamples=500)
    assert r.ci_low - 1e-12 <= r.mean_diff <= r.ci_high + 1e-12
    assert 0.0 < r.p_value <= 1.0
    assert r.p_value >= r.min_p - 1e-12 or r.wins + r.losses > 16


@settings(max_examples=60, deadline=None)
@given(hst.lists(hst.floats(0, 1, allow_nan=False), min_size=1, max_size=10))
def test_holm_properties(p):
    adj = stats.holm(p)
    assert np.all(adj >= np.asarray(p) - 1e-15) and np.all(adj <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adj[order]) >= -1e-15)


# ------------------------------------------------------------------ edge cases
def test_no_pairs_and_one_pair():
    r = stats.paired_difference([])
    assert r.n == 0 and math.isnan(r.mean_diff) and math.isnan(r.p_value) and "no pairs" in r.note
    r = stats.paired_difference([0.02])
    assert r.mean_diff == 0.02 and math.isnan(r.ci_low) and r.p_value == 1.0
    assert "one pair" in r.note


def test_all_zero_and_all_equal_differences():
    r = stats.paired_difference([0.0] * 6)
    assert r.p_value == 1.0 and r.ties == 6 and (r.ci_low, r.ci_high) == (0.0, 0.0)
    assert "all differences are zero" in r.note
    r = stats.paired_difference([0.01] * 6)
    assert (r.ci_low, r.ci_high) == (0.01, 0.01) and "point" in r.note
    assert r.p_value == pytest.approx(2 / 64)


def test_nonfinite_pairs_dropped():
    r = stats.paired_difference([0.1, float("nan"), 0.2], [0.0, 0.0, float("inf")])
    assert r.n == 1 and "2 non-finite pair(s) dropped" in r.note


def test_bad_input():
    with pytest.raises(TypeError, match="a must be"):
        stats.paired_difference("abc")
    with pytest.raises(ValueError, match="same length"):
        stats.paired_difference([1, 2], [1])
    with pytest.raises(ValueError, match="1-D"):
        stats.paired_difference([[1, 2]])
    with pytest.raises(ValueError, match="ci must be"):
        stats.paired_difference([1, 2], ci="z")
    with pytest.raises(ValueError, match="test must be"):
        stats.paired_difference([1, 2], test="sign")
    with pytest.raises(ValueError, match="confidence"):
        stats.t_interval([1, 2, 3], confidence=1.5)
    with pytest.raises(ValueError, match="same length"):
        stats.pearson([1, 2, 3], [1, 2])


def test_correlation_undefined_cases_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = stats.pearson([1, 1, 1, 1], [1, 2, 3, 4])
        assert math.isnan(r.r) and r.note == "constant input"
        r = stats.spearman([1, 2], [2, 1])
        assert math.isnan(r.r) and "at least 3" in r.note
        r = stats.pearson([1, 2, 3], [1, 3, 2])
        assert math.isfinite(r.r) and math.isnan(r.ci_low)
        r = stats.pearson([1, 2, 3, 4], [2, 4, 6, 8])
        assert r.r == pytest.approx(1.0) and r.ci_high == pytest.approx(1.0)


# ------------------------------------------------------------------ experiment-level helpers
def _rows(diffs_by_cell, base_acc=0.8, seeds=range(5)):
    rows = []
    for (base, density), diffs in diffs_by_cell.items():
        for s, d in zip(seeds, diffs):
            acc = base_acc + 0.01 * s
            rows.append({"method": base, "kind": "pai", "base": None, "density": density,
                         "seed": s, "test_acc": acc, "accuracy": acc, "coordinate_norm": s})
            rows.append({"method": f"fs-{base}", "kind": "sampler", "base": base,
                         "density": density, "seed": s, "test_acc": acc + d,
                         "accuracy": acc + d, "coordinate_norm": s + d})
    return rows


def test_correlations_records():
    rows = _rows({("random", 0.05): [0.01, 0.02, -0.01, 0.0, 0.03],
                  ("snip", 0.1): [0.0, 0.01, 0.02, 0.01, 0.0]})
    out = stats.correlations(rows, ["coordinate_norm"])
    assert [r["scope"] for r in out] == ["all", "density=0.05", "density=0.1"]
    rec = out[0]
    assert rec["n"] == 20 and rec["metric"] == "coordinate_norm"
    x = [r["coordinate_norm"] for r in rows]
    y = [r["accuracy"] for r in rows]
    assert rec["pearson_r"] == pytest.approx(st.pearsonr(x, y).statistic)
    assert rec["spearman_rho"] == pytest.approx(st.spearmanr(x, y).statistic)
    assert rec["pearson_ci_low"] <= rec["pearson_r"] <= rec["pearson_ci_high"]


def test_paired_rows_columns_and_pairing():
    rows = _rows({("random", 0.05): [0.01, 0.02, -0.01, 0.0, 0.03]})
    rows.append({"method": "fs-random", "kind": "sampler", "base": "random", "density": 0.05,
                 "seed": 99, "test_acc": 0.5})                     # no partner
    out = stats.paired_rows(rows)
    assert len(out) == 1
    r = out[0]
    assert list(r)[:len(stats.PAIRED_COLUMNS)] == list(stats.PAIRED_COLUMNS)
    assert r["base"] == "random" and r["density"] == 0.05 and r["n_pairs"] == 5
    assert r["mean_diff"] == pytest.approx(0.01) and r["unmatched"] == 1
    assert r["method"] == "fs-random"
    dup = rows + [dict(rows[0])]
    with pytest.raises(ValueError, match="two units"):
        stats.paired_rows(dup)


def test_verdict_holds_worse_and_untestable():
    good = {("random", 0.05): [0.02, 0.03, 0.025, 0.01, 0.04, 0.03, 0.02, 0.035],
            ("snip", 0.05): [0.01, 0.02, 0.015, 0.03, 0.02, 0.01, 0.025, 0.02]}
    v = stats.claim_verdict(_rows(good, seeds=range(8)))
    assert v.holds and v.overall_outcome == "better" and "HOLDS" in v.text
    assert v.overall.n == 8 and len(v.cells) == 2
    assert all(c.outcome == "better" for c in v.cells)
    assert "Holm-adjusted" in v.text

    bad = {k: [-x for x in d] for k, d in good.items()}
    v = stats.claim_verdict(_rows(bad, seeds=range(8)))
    assert not v.holds and v.overall_outcome == "worse" and "significantly worse" in v.text

    v = stats.claim_verdict(_rows({("random", 0.05): [0.02, 0.03, 0.025, 0.01, 0.04]}))
    assert not v.holds and v.overall_outcome == "untestable"
    assert "smallest attainable p-value is 0.0625" in v.text

    mixed = {("random", 0.05): [0.02, -0.03, 0.01, -0.01, 0.0, 0.02, -0.02, 0.01]}
    v = stats.claim_verdict(_rows(mixed, seeds=range(8)))
    assert not v.holds and v.overall_outcome == "no difference detected"
