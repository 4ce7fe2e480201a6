"""Experiment reports: per-(density, method) summaries, correlations, Markdown, CSV, plots."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..metrics import Coordinate
from .._jsonio import atomic_write_text

__all__ = ["CORR_METRICS", "summarize", "correlations", "markdown_table",
           "correlation_markdown", "write_csv", "make_plots", "axis_value", "num"]

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



def _mean_std(vals: Sequence[float]) -> Tuple[float, float]:
    v = np.array([x for x in vals if x is not None and math.isfinite(float(x))], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def summarize(rows: Sequence[Mapping[str, Any]], method_order: Optional[Sequence[str]] = None
              ) -> List[Dict[str, Any]]:
    """Per (density, method): accuracy mean ± std over seeds, realised density, coordinates."""
    keys = sorted({(r["density"], r["method"]) for r in rows},
                  key=lambda k: (k[0], _order_index(method_order, k[1]), k[1]))
    out = []
    for d, m in keys:
        grp = [r for r in rows if r["density"] == d and r["method"] == m]
        acc, acc_sd = _mean_std([r["accuracy"] for r in grp])
        rec = {"density": d, "method": m, "kind": grp[0].get("kind"), "n_seeds": len(grp),
               "accuracy_mean": acc, "accuracy_std": acc_sd,
               "realised_density": _mean_std([r["realised_density"] for r in grp])[0]}
        for key in CORR_METRICS:
            rec[key] = _mean_std([r.get(key) for r in grp])[0]
        base = grp[0].get("base")
        if grp[0].get("kind") == "sampler" and base:
            ref = {r["seed"]: r["accuracy"] for r in rows
                   if r["density"] == d and r["method"] == base}
            diffs = [r["accuracy"] - ref[r["seed"]] for r in grp if r["seed"] in ref]
            dm, dsd = _mean_std(diffs)
            rec.update({"vs_base_mean": dm, "vs_base_std": dsd,
                        "vs_base_wins": int(sum(x > 0 for x in diffs)), "vs_base_n": len(diffs)})
        out.append(rec)
    return out


def _order_index(order, m) -> int:
    if order and m in order:
        return list(order).index(m)
    return 10_000


def correlations(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = CORR_METRICS,
                 accuracy: str = "accuracy", suffix: str = "") -> List[Dict[str, Any]]:
    """Pearson and Spearman (with p-values) between accuracy and each metric, pooled over all
    units and within each density.  Constant inputs or n < 3 give NaN (no scipy warning)."""
    from scipy import stats
    scopes: List[Tuple[str, List[Mapping[str, Any]]]] = [("all", list(rows))]
    for d in sorted({r["density"] for r in rows}):
        scopes.append((f"density={d:g}", [r for r in rows if r["density"] == d]))
    out = []
    for scope, grp in scopes:
        for m in metrics:
            key = m + suffix
            pairs = [(float(r[key]), float(r[accuracy])) for r in grp
                     if math.isfinite(num(r.get(key))) and math.isfinite(num(r.get(accuracy)))]
            rec = {"scope": scope, "metric": key, "n": len(pairs), "pearson_r": float("nan"),
                   "pearson_p": float("nan"), "spearman_rho": float("nan"),
                   "spearman_p": float("nan")}
            if len(pairs) >= 3:
                x = np.array([p[0] for p in pairs])
                y = np.array([p[1] for p in pairs])
                if np.ptp(x) > 0 and np.ptp(y) > 0:
                    pr = stats.pearsonr(x, y)
                    sr = stats.spearmanr(x, y)
                    rec.update({"pearson_r": float(pr[0]), "pearson_p": float(pr[1]),
                                "spearman_rho": float(sr[0]), "spearman_p": float(sr[1])})
            out.append(rec)
    return out


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
    lines = ["| scope | metric | n | Pearson r | p | Spearman ρ | p |",
             "|---|---|---|---|---|---|---|"]
    for c in corr:
        lines.append(f"| {c['scope']} | {c['metric']} | {c['n']} | {_fmt(c['pearson_r'], 3)} | "
                     f"{_fmt(c['pearson_p'], 2)} | {_fmt(c['spearman_rho'], 3)} | "
                     f"{_fmt(c['spearman_p'], 2)} |")
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
    from .. import plots
    files: Dict[str, Path] = {}
    c = next((c for c in corr if c["scope"] == "all" and c["metric"] == "coordinate_norm"), None)
    note = None
    if c is not None and c["n"] >= 3:
        note = (f"all units: Pearson r={_fmt(c['pearson_r'], 3)} (p={_fmt(c['pearson_p'], 2)}), "
                f"Spearman ρ={_fmt(c['spearman_rho'], 3)}")
    files["plot_acc_vs_norm"] = plots.accuracy_vs_metric(
        rows, run_dir / "acc_vs_norm.png", metric="coordinate_norm", annotation=note)
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
