"""Experiment reports: per-(density, method) summaries, Markdown, CSV, plots.

Every statistic (paired differences, CIs, p-values, correlations, the verdict) comes from
:mod:`fspai.stats`; this module only formats them."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..metrics import Coordinate
from ..stats import PAIRED_COLUMNS, claim_verdict, correlations, mean_std, paired_rows
from .._jsonio import atomic_write_text

__all__ = ["CORR_METRICS", "summarize", "correlations", "markdown_table",
           "correlation_markdown", "write_csv", "make_plots", "axis_value", "num",
           "paired_markdown", "throughput", "throughput_markdown", "PAIRED_COLUMNS",
           "claim_verdict", "paired_rows"]

#: metrics correlated with accuracy (network level = mean over layers)
CORR_METRICS = ("coordinate_norm",) + tuple(Coordinate.AXES)


def axis_value(layer: Mapping[str, Any], key: str) -> float:
    """A coordinate axis of a per-layer record (the coordinate's value: undefined -> 0)."""
    if key == "coordinate_norm":
        return num(layer.get("coordinate_norm"))
    return num(layer.get(f"coord_{key}", layer.get(key)))




def num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f



def summarize(rows: Sequence[Mapping[str, Any]], method_order: Optional[Sequence[str]] = None,
              accuracy: str = "accuracy") -> List[Dict[str, Any]]:
    """Per (density, method): ``accuracy`` mean ± std over seeds, realised density,
    coordinates; sampler rows also the seed-paired difference to their base
    (``vs_base_*``, from :func:`fspai.stats.paired_rows`)."""
    keys = sorted({(r["density"], r["method"]) for r in rows},
                  key=lambda k: (k[0], _order_index(method_order, k[1]), k[1]))
    paired = {(p["method"], float(p["density"])): p for p in paired_rows(rows, accuracy)}
    out = []
    for d, m in keys:
        grp = [r for r in rows if r["density"] == d and r["method"] == m]
        acc, acc_sd = mean_std([r.get(accuracy) for r in grp])
        rec = {"density": d, "method": m, "kind": grp[0].get("kind"), "n_seeds": len(grp),
               "accuracy_mean": acc, "accuracy_std": acc_sd,
               "realised_density": mean_std([r["realised_density"] for r in grp])[0]}
        for key in CORR_METRICS:
            rec[key] = mean_std([r.get(key) for r in grp])[0]
        p = paired.get((m, float(d)))
        if p is not None:
            rec.update({"vs_base_mean": p["mean_diff"], "vs_base_std": p["sd_diff"],
                        "vs_base_wins": p["wins"], "vs_base_n": p["n_pairs"],
                        "vs_base_p": p["p_value"]})
        out.append(rec)
    return out


def _order_index(order, m) -> int:
    if order and m in order:
        return list(order).index(m)
    return 10_000


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.{digits}g}"
    return str(v)


def markdown_table(summary: Sequence[Mapping[str, Any]]) -> str:
    """The results table in Markdown (accuracy in %, mean ± std over seeds)."""
    head = ("| density | method | accuracy % (mean ± std) | seeds | Δ vs base (pp) | "
            "realised density | coord. norm | Δr | w-gap | IMDB | w-IMDB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in summary:
        acc = f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f}"
        vs = ""
        if "vs_base_mean" in r and math.isfinite(r["vs_base_mean"]):
            vs = (f"{100 * r['vs_base_mean']:+.2f} ± {100 * r['vs_base_std']:.2f} "
                  f"({r['vs_base_wins']}/{r['vs_base_n']} wins)")
        lines.append(
            f"| {r['density']:g} | {r['method']} | {acc} | {r['n_seeds']} | {vs} | "
            f"{r['realised_density']:.4f} | {_fmt(r['coordinate_norm'])} | {_fmt(r['delta_r'])} | "
            f"{_fmt(r['weighted_gap'])} | {_fmt(r['imdb'])} | {_fmt(r['weighted_imdb'])} |")
    return "\n".join(lines)


def correlation_markdown(corr: Sequence[Mapping[str, Any]]) -> str:
    """Correlation records of :func:`fspai.stats.correlations` as a Markdown table."""
    lines = ["| scope | metric | n | Pearson r [95 % CI] | p | Spearman ρ [95 % CI] | p |",
             "|---|---|---|---|---|---|---|"]
    for c in corr:
        pr = f"{_fmt(c['pearson_r'], 3)} [{_fmt(c.get('pearson_ci_low'), 3)}, " \
             f"{_fmt(c.get('pearson_ci_high'), 3)}]"
        sr = f"{_fmt(c['spearman_rho'], 3)} [{_fmt(c.get('spearman_ci_low'), 3)}, " \
             f"{_fmt(c.get('spearman_ci_high'), 3)}]"
        lines.append(f"| {c['scope']} | {c['metric']} | {c['n']} | {pr} | "
                     f"{_fmt(c['pearson_p'], 2)} | {sr} | {_fmt(c['spearman_p'], 2)} |")
    return "\n".join(lines)


def paired_markdown(paired: Sequence[Mapping[str, Any]]) -> str:
    """``paired.csv`` rows (:func:`fspai.stats.paired_rows`) as Markdown, differences in pp."""
    lines = ["| sampler | base | density | pairs | mean diff (pp) | 95 % CI (pp) | p | wins/losses |",
             "|---|---|---|---|---|---|---|---|"]
    for p in paired:
        lines.append(f"| {p['method']} | {p['base']} | {float(p['density']):g} | {p['n_pairs']} | "
                     f"{_pp(p['mean_diff'])} | [{_pp(p['ci_low'])}, {_pp(p['ci_high'])}] | "
                     f"{_fmt(p['p_value'], 3)} | {p['wins']}/{p['losses']} |")
    return "\n".join(lines)


def _pp(v) -> str:
    f = num(v)
    return "n/a" if not math.isfinite(f) else f"{100 * f:+.2f}"


def throughput(rows: Sequence[Mapping[str, Any]], model: str = "") -> List[Dict[str, Any]]:
    """Candidates per second of the sampler per base method (and density): mean and range over
    the sampler units' loops (generation + metrics + acceptance)."""
    out = []
    for base, d in sorted({(r["base"], r["density"]) for r in rows if r.get("kind") == "sampler"}):
        v = [num(r.get("candidates_per_s")) for r in rows if r.get("kind") == "sampler"
             and r["base"] == base and r["density"] == d]
        v = [x for x in v if math.isfinite(x)]
        out.append({"model": model, "base": base, "density": d, "units": len(v),
                    "candidates_per_s": float(np.mean(v)) if v else float("nan"),
                    "min": min(v) if v else float("nan"), "max": max(v) if v else float("nan")})
    return out


def throughput_markdown(tp: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| model | base | density | units | candidates/s (mean) | min | max |",
             "|---|---|---|---|---|---|---|"]
    for t in tp:
        lines.append(f"| {t['model']} | {t['base']} | {float(t['density']):g} | {t['units']} | "
                     f"{_fmt(t['candidates_per_s'], 4)} | {_fmt(t['min'], 4)} | "
                     f"{_fmt(t['max'], 4)} |")
    return "\n".join(lines)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Optional[List[str]] = None
               ) -> Path:
    if columns is None:
        columns = []
        for r in rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k) for k in columns})
    atomic_write_text(path, buf.getvalue())
    return path




def make_plots(run_dir: Path, cfg, rows, results, units, corr, set_res) -> Dict[str, Path]:
    """The paper's figures for one run: test accuracy vs coordinate norm with the least-squares
    fit (correlations and their CIs in the caption), per-layer coordinates of every method at
    the first (density, seed), and per-layer (Δr, weighted gap) of each base mask m0 before and
    of the sampler's reported composite after sampling."""
    from .. import plots
    files: Dict[str, Path] = {}
    c = next((c for c in corr if c["scope"] == "all" and c["metric"] == "coordinate_norm"), None)
    note = None
    if c is not None and c["n"] >= 3:
        note = (f"all {c['n']} units: Pearson r={_fmt(c['pearson_r'], 3)} "
                f"[{_fmt(c.get('pearson_ci_low'), 3)}, {_fmt(c.get('pearson_ci_high'), 3)}] "
                f"(p={_fmt(c['pearson_p'], 2)}),\nSpearman ρ={_fmt(c['spearman_rho'], 3)} "
                f"[{_fmt(c.get('spearman_ci_low'), 3)}, {_fmt(c.get('spearman_ci_high'), 3)}]")
    files["plot_acc_vs_norm"] = plots.accuracy_vs_metric(
        rows, run_dir / "acc_vs_norm.png", metric="coordinate_norm", annotation=note, fit=True)
    d0, s0 = cfg["experiment"]["densities"][0], cfg["experiment"]["seeds"][0]
    profiles = {}
    names = None
    for u in units:
        if u.density == d0 and u.seed == s0:
            layers = results[u.id]["layers"]
            names = [l.get("name", str(i)) for i, l in enumerate(layers)]
            profiles[u.method] = {k: [axis_value(l, k) for l in layers]
                                  for k in CORR_METRICS}
    if profiles:
        files["plot_layer_gaps"] = plots.layer_profiles(
            profiles, run_dir / "layer_gaps.png", layer_names=names,
            title=f"per-layer coordinates at θ*, density {d0:g}, seed {s0}")
        pairs = {}
        for m in list(profiles):
            if m.startswith("fs-") and m[3:] in profiles:
                pairs[f"{m[3:]} (before)"] = profiles[m[3:]]
                pairs[f"{m} (after)"] = profiles[m]
        if pairs:
            files["plot_layer_before_after"] = plots.layer_profiles(
                pairs, run_dir / "layer_before_after.png", layer_names=names,
                axes_to_plot=("delta_r", "weighted_gap"),
                title=f"per-layer (Δr, weighted gap) before/after sampling, density {d0:g}, "
                      f"seed {s0}")
    if set_res is not None and set_res.get("records"):
        recs = set_res["records"]
        series: Dict[str, Any] = {k: [r[k] for r in recs] for k in CORR_METRICS}
        acc = set_res.get("accuracy") or []
        if acc:
            series["accuracy"] = ([a["step"] for a in acc], [a["accuracy"] for a in acc])
        files["plot_set_evolution"] = plots.metric_evolution(
            [r["step"] for r in recs], series,
            run_dir / "set_evolution.png",
            title=f"SET from {set_res['method']} at density {set_res['density']:g}")
    return files
