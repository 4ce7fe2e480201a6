"""Statistics for fspai experiments: paired differences by seed, correlations with confidence
intervals, and a plain-words verdict on "the sampler beats its base method".

Pure NumPy/SciPy (no torch, no compiled core); every statistic the experiment reports is defined
here and nowhere else.

Conventions
-----------
* A *pair* is one seed: the sampler unit and its base-method unit share θ*, the baseline mask and
  the training seed, so their accuracy difference ``d = sampler - base`` removes the seed-to-seed
  spread.  All paired statistics work on these differences.
* Confidence intervals are two-sided at ``confidence`` (default 0.95).  ``ci="t"`` (default) is
  the Student-t interval ``mean ± t_{n-1} · sd / √n``; ``ci="bootstrap"`` the percentile bootstrap
  of the mean (exact enumeration of all ``n**n`` resamples when that is at most ``n_resamples``,
  Monte-Carlo otherwise).  With fewer than 6 pairs the percentile bootstrap is known to be too
  narrow; the t interval is the honest default there.
* p-values are two-sided and come from the sign-flip (paired permutation) distribution: under
  "no difference" each difference is as likely to be positive as negative.  ``test="permutation"``
  uses the mean difference as the statistic, ``test="wilcoxon"`` the signed-rank statistic
  (zeros dropped, mid-ranks for ties; this is the exact conditional Wilcoxon test and equals
  ``scipy.stats.wilcoxon(method="exact")`` when there are no ties or zeros).  Up to
  ``exact_max`` non-zero pairs all ``2**n`` sign patterns are enumerated; beyond that
  ``n_resamples`` random patterns give ``p = (1 + hits) / (1 + n_resamples)``.
* An exact sign-flip test on ``n`` non-zero pairs cannot give a p-value below ``2 / 2**n``
  (``min_p``): 5 seeds can never reach p < 0.05; 6 seeds reach 0.031.  Results say so instead of
  pretending.
* Undefined values are NaN and come with a ``note``; no function here emits a SciPy warning for
  constant input or too few points.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "PAIRED_COLUMNS", "PairedResult", "CorrelationResult", "PairedCell", "CellVerdict", "Verdict",
    "mean_std", "t_interval", "bootstrap_interval", "sign_flip_pvalue", "permutation_pvalue",
    "wilcoxon_pvalue", "paired_difference", "holm", "pearson", "spearman", "correlations",
    "pair_units", "paired_rows", "claim_verdict",
]

#: Columns of ``paired.csv``, in order (one row per sampler method, base method and density).
PAIRED_COLUMNS = ("base", "density", "n_pairs", "mean_diff", "ci_low", "ci_high", "p_value")

_NAN = float("nan")
_CIS, _TESTS = ("t", "bootstrap"), ("permutation", "wilcoxon")


def _vector(x: Any, name: str) -> np.ndarray:
    """1-D float64 copy of ``x``; TypeError/ValueError naming ``name`` otherwise."""
    if isinstance(x, (str, bytes, Mapping)):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(x).__name__}")
    try:
        a = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a sequence of numbers: {exc}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a


def _confidence(confidence: float) -> float:
    c = float(confidence)
    if not (0.0 < c < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return c


def _finite(v: Any) -> Optional[float]:
    """``float(v)`` if it is a finite number (bools and strings are not), else None."""
    try:
        f = None if isinstance(v, (str, bytes, bool)) else float(v)
    except (TypeError, ValueError):
        f = None
    return f if f is not None and math.isfinite(f) else None


def mean_std(values: Sequence[Any]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof 1) of the finite entries of ``values``.

    ``None``, NaN and ±inf are skipped; no finite entry gives ``(nan, nan)``, one gives
    ``(x, 0.0)``.
    """
    v = np.array([f for f in (_finite(x) for x in values) if f is not None], dtype=np.float64)
    return ((_NAN, _NAN) if len(v) == 0 else
            (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0))


# --------------------------------------------------------------------------------------------
# intervals
# --------------------------------------------------------------------------------------------

def t_interval(x: Sequence[float], confidence: float = 0.95) -> Tuple[float, float]:
    """Student-t interval for the mean of ``x``: ``mean ± t_{n-1,(1+c)/2} · sd / √n``.

    Needs n >= 2 (otherwise NaN).  Zero spread gives the point ``(mean, mean)``.
    """
    from scipy import stats as st
    a = _vector(x, "x")
    c = _confidence(confidence)
    n = len(a)
    if n < 2 or not np.all(np.isfinite(a)):
        return _NAN, _NAN
    m, sd = float(a.mean()), float(a.std(ddof=1))
    h = float(st.t.ppf(0.5 + c / 2.0, n - 1)) * sd / math.sqrt(n) if sd > 0 else 0.0
    return m - h, m + h


def _bootstrap_indices(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, n) resample indices: all ``n**n`` ordered resamples if that is <= n_resamples."""
    if n ** n <= n_resamples:
        return np.array(list(itertools.product(range(n), repeat=n)), dtype=np.int64)
    return rng.integers(0, n, size=(int(n_resamples), n))


def bootstrap_interval(x: Sequence[float], confidence: float = 0.95, *,
                       statistic: Callable[[np.ndarray], np.ndarray] = None,
                       n_resamples: int = 10_000, seed: int = 0) -> Tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` (default: the mean) of ``x``.

    ``statistic`` maps a (B, n) array of resamples to B values (vectorised).  Resampling is
    exhaustive when ``n**n <= n_resamples`` (deterministic), else seeded Monte-Carlo.  Needs
    n >= 2 (otherwise NaN).
    """
    a = _vector(x, "x")
    c = _confidence(confidence)
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    n = len(a)
    if n < 2 or not np.all(np.isfinite(a)):
        return _NAN, _NAN
    idx = _bootstrap_indices(n, int(n_resamples), np.random.default_rng(seed))
    fn = statistic or (lambda s: s.mean(axis=1))
    vals = np.asarray(fn(a[idx]), dtype=np.float64)
    return _percentiles(vals, c)


def _percentiles(vals: np.ndarray, c: float) -> Tuple[float, float]:
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0:
        return _NAN, _NAN
    lo, hi = np.percentile(vals, [50.0 * (1.0 - c), 50.0 * (1.0 + c)])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------
# sign-flip tests
# --------------------------------------------------------------------------------------------

def _sign_patterns(n: int, start: int, stop: int) -> np.ndarray:
    """Rows ``start..stop-1`` of the 2**n sign patterns (+1/-1), as float64 (rows, n)."""
    codes = np.arange(start, stop, dtype=np.int64)[:, None]
    bits = (codes >> np.arange(n, dtype=np.int64)[None, :]) & 1
    return 1.0 - 2.0 * bits


def sign_flip_pvalue(values: Sequence[float], *, exact_max: int = 16,
                     n_resamples: int = 100_000, seed: int = 0) -> Tuple[float, bool]:
    """Two-sided p-value of ``|sum(values)|`` under random sign flips; returns ``(p, exact)``.

    ``p = P(|Σ s_i v_i| >= |Σ v_i|)`` over independent fair signs ``s_i``.  Exact (all 2**n
    patterns, in chunks) when ``n <= exact_max``; otherwise Monte-Carlo with the +1 correction.
    Comparisons allow a relative rounding slack of 1e-12.  Empty input gives ``(nan, True)``.
    """
    v = _vector(values, "values")
    if len(v) == 0 or not np.all(np.isfinite(v)):
        return _NAN, True
    n = len(v)
    obs = abs(float(v.sum()))
    slack = 1e-12 * max(float(np.abs(v).sum()), np.finfo(float).tiny)
    if n <= int(exact_max):
        total, hits, chunk = 1 << n, 0, 1 << 16
        for start in range(0, total, chunk):
            s = _sign_patterns(n, start, min(total, start + chunk))
            hits += int(np.count_nonzero(np.abs(s @ v) >= obs - slack))
        return hits / total, True
    rng = np.random.default_rng(seed)
    hits, left = 0, int(n_resamples)
    while left > 0:
        b = min(left, 1 << 14)
        s = 1.0 - 2.0 * rng.integers(0, 2, size=(b, n))
        hits += int(np.count_nonzero(np.abs(s @ v) >= obs - slack))
        left -= b
    return (1 + hits) / (1 + int(n_resamples)), False


def permutation_pvalue(diffs: Sequence[float], **kw) -> float:
    """Paired permutation (sign-flip) test of mean difference 0; two-sided p-value."""
    return sign_flip_pvalue(diffs, **kw)[0]


def _signed_ranks(diffs: np.ndarray) -> np.ndarray:
    """sign(d) · midrank(|d|) over the non-zero differences (Wilcoxon's zero_method 'wilcox')."""
    from scipy.stats import rankdata
    nz = diffs[diffs != 0.0]
    return np.sign(nz) * rankdata(np.abs(nz)) if len(nz) else nz


def wilcoxon_pvalue(diffs: Sequence[float], **kw) -> float:
    """Wilcoxon signed-rank test, two-sided, exact conditional on ties (zeros dropped).

    All-zero differences give p = 1.  Equals ``scipy.stats.wilcoxon(d, method="exact")`` when the
    ``|d|`` are distinct and non-zero.
    """
    d = _vector(diffs, "diffs")
    if len(d) == 0 or not np.all(np.isfinite(d)):
        return _NAN
    r = _signed_ranks(d)
    return sign_flip_pvalue(r, **kw)[0] if len(r) else 1.0


# --------------------------------------------------------------------------------------------
# paired differences
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PairedResult:
    """Summary of paired differences ``d = a - b``.

    ``p_value`` is two-sided (``p_method`` says which test, exact or Monte-Carlo); ``min_p`` is
    the smallest p-value the exact test could give with this many non-zero pairs; ``note``
    explains NaNs and degenerate cases.
    """

    n: int
    mean_diff: float
    sd_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    wins: int
    losses: int
    ties: int
    min_p: float
    ci_method: str
    p_method: str
    confidence: float
    note: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def paired_difference(a: Sequence[float], b: Optional[Sequence[float]] = None, *,
                      confidence: float = 0.95, ci: str = "t", test: str = "permutation",
                      n_resamples: int = 10_000, exact_max: int = 16,
                      seed: int = 0) -> PairedResult:
    """Mean paired difference ``a - b`` (or of ``a`` alone when ``b`` is None) with a CI and a
    two-sided sign-flip p-value.  See the module docstring for ``ci`` and ``test``.

    Pairs where either side is not finite are dropped (the count is in ``note``).
    """
    if ci not in _CIS:
        raise ValueError(f"ci must be one of {_CIS}, got {ci!r}")
    if test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS}, got {test!r}")
    c = _confidence(confidence)
    x = _vector(a, "a")
    if b is not None:
        y = _vector(b, "b")
        if y.shape != x.shape:
            raise ValueError(f"a and b must have the same length, got {len(x)} and {len(y)}")
        x = x - y
    keep = np.isfinite(x)
    notes = [f"{int((~keep).sum())} non-finite pair(s) dropped"] if not keep.all() else []
    d = x[keep]
    n = len(d)
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    nz = wins + losses
    p_method = "exact" if nz <= exact_max else "monte-carlo"
    p_method += " sign-flip " + ("mean" if test == "permutation" else "signed-rank (Wilcoxon)")
    if n == 0:
        return PairedResult(0, _NAN, _NAN, _NAN, _NAN, _NAN, 0, 0, 0, _NAN, ci, p_method, c,
                            "; ".join(notes + ["no pairs"]))
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else _NAN
    if ci == "t":
        lo, hi = t_interval(d, c)
    else:
        lo, hi = bootstrap_interval(d, c, n_resamples=n_resamples, seed=seed)
    if n < 2:
        notes.append("one pair: no interval")
    elif nz == 0:
        notes.append("all differences are zero")
    elif sd == 0.0:
        notes.append("all differences are equal: the interval is a point")
    if nz == 0:
        p = 1.0
    elif test == "permutation":
        p = sign_flip_pvalue(d[d != 0.0], exact_max=exact_max, n_resamples=n_resamples,
                             seed=seed)[0]
    else:
        p = wilcoxon_pvalue(d, exact_max=exact_max, n_resamples=n_resamples, seed=seed)
    min_p = min(1.0, 2.0 / 2.0 ** nz) if nz else 1.0
    if 0 < nz < 6:
        notes.append(f"{nz} non-zero pair(s): the smallest attainable p-value is {min_p:.3g}")
    return PairedResult(n, mean, sd, lo, hi, float(p), wins, losses, n - nz, min_p, ci, p_method,
                        c, "; ".join(notes))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaN stays NaN and
    does not count towards the number of tests."""
    p = _vector(pvalues, "pvalues")
    out = np.full(len(p), _NAN)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


# --------------------------------------------------------------------------------------------
# correlations
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CorrelationResult:
    """A correlation coefficient with its two-sided p-value and confidence interval."""

    method: str
    n: int
    r: float
    p_value: float
    ci_low: float
    ci_high: float
    ci_method: str
    confidence: float
    note: str = ""


def _pairs(x: Sequence[float], y: Sequence[float]) -> Tuple[np.ndarray, np.ndarray, str]:
    a, b = _vector(x, "x"), _vector(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same length, got {len(a)} and {len(b)}")
    keep = np.isfinite(a) & np.isfinite(b)
    note = f"{int((~keep).sum())} non-finite pair(s) dropped" if not keep.all() else ""
    return a[keep], b[keep], note


def _undefined(a: np.ndarray, b: np.ndarray) -> str:
    if len(a) < 3:
        return f"{len(a)} point(s): at least 3 are needed"
    return "constant input" if np.ptp(a) == 0 or np.ptp(b) == 0 else ""


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def pearson(x: Sequence[float], y: Sequence[float], confidence: float = 0.95
            ) -> CorrelationResult:
    """Pearson r, its p-value (``scipy.stats.pearsonr``) and the Fisher-z interval
    ``tanh(atanh(r) ± z_{(1+c)/2} / √(n-3))`` (n >= 4).  Non-finite pairs are dropped; fewer than
    3 points or a constant input give NaN."""
    from scipy import stats as st
    c = _confidence(confidence)
    a, b, note = _pairs(x, y)
    why = _undefined(a, b)
    if why:
        return CorrelationResult("pearson", len(a), _NAN, _NAN, _NAN, _NAN, "fisher-z", c,
                                 _join(note, why))
    res = st.pearsonr(a, b)                              # (r, p): indexable on every SciPy
    r = float(np.clip(res[0], -1.0, 1.0))
    lo = hi = _NAN
    if len(a) >= 4:
        with np.errstate(divide="ignore"):
            z = float(np.arctanh(r))
        h = float(st.norm.ppf(0.5 + c / 2.0)) / math.sqrt(len(a) - 3)
        lo, hi = math.tanh(z - h), math.tanh(z + h)
    else:
        note = _join(note, "3 points: no interval")
    return CorrelationResult("pearson", len(a), r, float(res[1]), lo, hi, "fisher-z", c, note)


def _rowwise_spearman(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata
    rx = rankdata(xs, axis=1)
    ry = rankdata(ys, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(axis=1) / den, np.nan)


def spearman(x: Sequence[float], y: Sequence[float], confidence: float = 0.95, *,
             n_resamples: int = 2_000, seed: int = 0) -> CorrelationResult:
    """Spearman ρ, its p-value (``scipy.stats.spearmanr``) and a percentile bootstrap interval
    over resampled pairs (resamples with a constant side are skipped; exhaustive when
    ``n**n <= n_resamples``).  Same NaN rules as :func:`pearson`."""
    from scipy import stats as st
    c = _confidence(confidence)
    a, b, note = _pairs(x, y)
    why = _undefined(a, b)
    if why:
        return CorrelationResult("spearman", len(a), _NAN, _NAN, _NAN, _NAN, "bootstrap", c,
                                 _join(note, why))
    res = st.spearmanr(a, b)
    idx = _bootstrap_indices(len(a), int(n_resamples), np.random.default_rng(seed))
    lo, hi = _percentiles(_rowwise_spearman(a[idx], b[idx]), c)
    return CorrelationResult("spearman", len(a), float(res[0]), float(res[1]),
                             lo, hi, "bootstrap", c, note)


def correlations(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str],
                 accuracy: str = "accuracy", suffix: str = "", *, confidence: float = 0.95,
                 n_resamples: int = 2_000, seed: int = 0) -> List[Dict[str, Any]]:
    """Pearson and Spearman between ``accuracy`` and each ``metric + suffix`` of per-unit rows,
    pooled over all rows (scope ``"all"``) and within each density (``"density=<d>"``).

    One record per (scope, metric): ``scope, metric, n, pearson_r, pearson_p, pearson_ci_low,
    pearson_ci_high, spearman_rho, spearman_p, spearman_ci_low, spearman_ci_high``.  Rows whose
    metric or accuracy is missing or not finite are left out; constant inputs or n < 3 give NaN.
    """
    scopes: List[Tuple[str, List[Mapping[str, Any]]]] = [("all", list(rows))]
    for d in sorted({float(r["density"]) for r in rows}):
        scopes.append((f"density={d:g}", [r for r in rows if float(r["density"]) == d]))
    out = []
    for scope, grp in scopes:
        for m in metrics:
            key = m + suffix
            pts = [(_finite(r.get(key)), _finite(r.get(accuracy))) for r in grp]
            pts = [p for p in pts if p[0] is not None and p[1] is not None]
            x = [p[0] for p in pts]
            y = [p[1] for p in pts]
            pr = pearson(x, y, confidence)
            sr = spearman(x, y, confidence, n_resamples=n_resamples, seed=seed)
            out.append({"scope": scope, "metric": key, "n": len(pts),
                        "pearson_r": pr.r, "pearson_p": pr.p_value,
                        "pearson_ci_low": pr.ci_low, "pearson_ci_high": pr.ci_high,
                        "spearman_rho": sr.r, "spearman_p": sr.p_value,
                        "spearman_ci_low": sr.ci_low, "spearman_ci_high": sr.ci_high})
    return out


# --------------------------------------------------------------------------------------------
# pairing units and the verdict
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PairedCell:
    """The seed-paired differences ``sampler - base`` of one (sampler method, base, density)."""

    method: str
    base: str
    density: float
    seeds: Tuple[Any, ...]
    diffs: Tuple[float, ...]
    unmatched: int


def pair_units(rows: Sequence[Mapping[str, Any]], metric: str = "test_acc", *,
               kind: str = "sampler", match: Sequence[str] = ("density", "seed")
               ) -> List[PairedCell]:
    """Pair every ``kind`` row (it names its ``base`` method) with the row of that base method
    that agrees on the ``match`` fields.  Rows: mappings with ``method``, ``kind``, ``base``,
    ``density``, ``seed`` and ``metric``.  A sampler row without a partner, or a pair with a
    non-finite metric, counts as ``unmatched``; two base rows for one key raise ValueError.
    Cells are ordered by (base, density, method)."""
    index: Dict[Tuple[Any, ...], Mapping[str, Any]] = {}
    for r in rows:
        if r.get("kind") == kind:
            continue
        key = (r["method"],) + tuple(r[f] for f in match)
        if key in index:
            raise ValueError(f"two units for method {key[0]!r} with {dict(zip(match, key[1:]))}")
        index[key] = r
    groups: Dict[Tuple[str, str, float], List[Tuple[Any, Optional[float]]]] = {}
    for r in rows:
        if r.get("kind") != kind:
            continue
        if not r.get("base"):
            raise ValueError(f"{kind} unit {r.get('method')!r} names no base method")
        partner = index.get((r["base"],) + tuple(r[f] for f in match))
        a = _finite(r.get(metric))
        b = None if partner is None else _finite(partner.get(metric))
        diff = None if a is None or b is None else a - b
        groups.setdefault((str(r["method"]), str(r["base"]), float(r["density"])), []).append(
            (r.get("seed"), diff))
    cells = []
    for (method, base, density), items in sorted(groups.items(),
                                                 key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        ok = sorted(((s, d) for s, d in items if d is not None), key=lambda sd: repr(sd[0]))
        cells.append(PairedCell(method, base, density, tuple(s for s, _ in ok),
                                tuple(d for _, d in ok), len(items) - len(ok)))
    return cells


def paired_rows(rows: Sequence[Mapping[str, Any]], metric: str = "test_acc", *,
                kind: str = "sampler", **options) -> List[Dict[str, Any]]:
    """Rows of ``paired.csv``: :data:`PAIRED_COLUMNS` first, then ``method, wins, losses, ties,
    sd_diff, min_p, p_method, ci_method, unmatched, note``.  ``options`` go to
    :func:`paired_difference` (``confidence``, ``ci``, ``test``, ...)."""
    out = []
    for cell in pair_units(rows, metric, kind=kind):
        res = paired_difference(cell.diffs, **options)
        out.append({"base": cell.base, "density": cell.density, "n_pairs": res.n,
                    "mean_diff": res.mean_diff, "ci_low": res.ci_low, "ci_high": res.ci_high,
                    "p_value": res.p_value, "method": cell.method, "wins": res.wins,
                    "losses": res.losses, "ties": res.ties, "sd_diff": res.sd_diff,
                    "min_p": res.min_p, "p_method": res.p_method, "ci_method": res.ci_method,
                    "unmatched": cell.unmatched, "note": res.note})
    return out


@dataclasses.dataclass(frozen=True)
class CellVerdict:
    cell: PairedCell
    result: PairedResult
    p_adjusted: float
    outcome: str          # "better" | "worse" | "no difference detected" | "untestable"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether "the sampler beats its base method" holds on a run; ``text`` says it in words."""

    holds: bool
    overall: PairedResult
    overall_outcome: str
    cells: Tuple[CellVerdict, ...]
    alpha: float
    correction: str
    text: str


def _outcome(res: PairedResult, p: float, alpha: float) -> str:
    if res.n == 0 or not math.isfinite(p):
        return "untestable"
    if p < alpha:
        return "better" if res.mean_diff > 0 else "worse"
    return "untestable" if res.min_p >= alpha else "no difference detected"


def _fmt_diff(res: PairedResult, scale: float, unit: str) -> str:
    def f(v: float) -> str:
        return "n/a" if not math.isfinite(v) else f"{scale * v:+.2f}"
    return f"{f(res.mean_diff)} {unit} ({100 * res.confidence:g} % CI [{f(res.ci_low)}, " \
           f"{f(res.ci_high)}])"


def claim_verdict(rows: Sequence[Mapping[str, Any]], metric: str = "test_acc", *,
                  alpha: float = 0.05, correction: str = "holm", kind: str = "sampler",
                  scale: float = 100.0, unit: str = "pp", **options) -> Verdict:
    """Decide, and state in words, whether the sampler beats its base method on a run.

    Per cell (sampler method, base, density): the paired test of :func:`paired_difference`,
    p-values adjusted over the cells by Holm (``correction="holm"``) or not (``"none"``).
    Overall: for each seed the mean of its differences over all cells, then the same paired test
    across seeds -- the seed is the independent replicate (cells at one seed share θ* and the
    data order).  The claim holds iff the overall difference is positive with p < ``alpha``.
    ``scale``/``unit`` only format the text (accuracy fractions -> percentage points).
    """
    if correction not in ("holm", "none"):
        raise ValueError(f"correction must be 'holm' or 'none', got {correction!r}")
    a = float(alpha)
    if not (0.0 < a < 1.0):  # noqa: SIM201 - also rejects NaN
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    cells = pair_units(rows, metric, kind=kind)
    results = [paired_difference(c.diffs, **options) for c in cells]
    raw = [r.p_value for r in results]
    adj = holm(raw) if correction == "holm" else np.array(raw, dtype=np.float64)
    verdicts = tuple(CellVerdict(c, r, float(p), _outcome(r, float(p), a))
                     for c, r, p in zip(cells, results, adj))
    per_seed: Dict[str, List[float]] = {}
    for s, d in ((s, d) for c in cells for s, d in zip(c.seeds, c.diffs)):
        per_seed.setdefault(repr(s), []).append(d)
    overall = paired_difference([float(np.mean(v)) for v in per_seed.values()], **options)
    oo = _outcome(overall, overall.p_value, a)
    lines = [f"Claim: the sampler beats its base method ({metric}, paired by seed, "
             f"two-sided α = {a:g})."]
    head = (f"Overall ({len(cells)} cell(s), mean per seed over cells, {overall.n} seed(s)): "
            f"{_fmt_diff(overall, scale, unit)}, p = {overall.p_value:.3g} ({overall.p_method}).")
    tail = {"better": "The claim HOLDS on this run.",
            "worse": "The claim does NOT hold: the sampler is significantly worse than its base.",
            "untestable": f"The claim cannot be decided on this run: with {overall.n} seed(s) the "
                          f"smallest attainable p-value is {overall.min_p:.3g} (not below α); "
                          "add seeds.",
            }.get(oo, "The claim does NOT hold on this run: no significant difference.")
    lines += [head + " " + tail, ""]
    label = "Holm-adjusted" if correction == "holm" else "unadjusted"
    lines.append(f"Per cell ({label} p over {int(np.isfinite(adj).sum())} test(s); cells share "
                 "seeds and θ*, so they are not independent):")
    for v in verdicts:
        c, r = v.cell, v.result
        lines.append(f"* {c.method} vs {c.base} at density {c.density:g}: "
                     f"{_fmt_diff(r, scale, unit)}, {r.wins}/{r.n} wins, p = {r.p_value:.3g} "
                     f"(adjusted {v.p_adjusted:.3g}) -> {v.outcome}"
                     + (f" [{r.note}]" if r.note else ""))
    return Verdict(oo == "better", overall, oo, verdicts, a, correction, "\n".join(lines))
