"""Suites: several experiments (one per dataset and model) run as one preset, with one
combined report.

A suite preset is a TOML file in ``fspai/configs`` with a single ``[suite]`` table::

    [suite]
    presets = ["full-mnist1d-mlp", "full-mnist1d-cnn1d", "full-digits-mlp"]
    optional = ["full-cifar10-resnet18"]     # skipped (and said so) when its data or device
                                             # is not available here

Every case is an ordinary experiment (own run directory, resumable per unit).  The combined
report in ``<out>/<suite name>/`` holds ``results.csv`` (all units, with ``dataset`` and
``model``), ``paired.csv`` (:data:`fspai.stats.PAIRED_COLUMNS` per case, base and density),
``throughput.csv`` and ``report.md`` with the verdict per case and over all cases
(:func:`fspai.stats.claim_verdict`; the seed is the replicate, its differences averaged over
every cell of every case).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .. import stats
from .._jsonio import atomic_write_text, write_json
from .config import ConfigError, _pkg_configs, load_config, read_toml
from .report import paired_markdown, throughput, throughput_markdown, write_csv
from .runner import ExperimentResult, run_experiment

__all__ = ["list_suites", "suite_cases", "run_suite", "SuiteResult", "combined_rows"]

log = logging.getLogger("fspai.experiment")


def _suite_table(name: str) -> Optional[Dict[str, Any]]:
    p = _pkg_configs() / f"{name}.toml"
    if not p.is_file():
        return None
    data = read_toml(p)
    return data.get("suite") if isinstance(data.get("suite"), dict) else None


def list_suites() -> List[str]:
    """Names of the bundled suite presets."""
    return sorted(p.stem for p in _pkg_configs().glob("*.toml") if _suite_table(p.stem))


def suite_cases(name: str) -> Dict[str, List[str]]:
    """``{"presets": [...], "optional": [...]}`` of suite ``name`` (ConfigError if unknown)."""
    table = _suite_table(name)
    if table is None:
        raise ConfigError(f"unknown suite {name!r}; available: {', '.join(list_suites())}")
    bad = sorted(set(table) - {"presets", "optional"})
    if bad:
        raise ConfigError(f"unknown key(s) {bad} in [suite] of {name!r}")
    out = {"presets": list(table.get("presets", [])), "optional": list(table.get("optional", []))}
    for case in out["presets"] + out["optional"]:
        load_config(preset=case)                      # every case validates up front
    return out


@dataclass
class SuiteResult:
    out_dir: Path
    results: Dict[str, ExperimentResult]
    skipped: Dict[str, str]
    rows: List[Dict[str, Any]]
    paired: List[Dict[str, Any]]
    verdict: Any
    files: Dict[str, Path] = field(default_factory=dict)


def combined_rows(results: Dict[str, ExperimentResult]) -> List[Dict[str, Any]]:
    """All units of all cases; ``method``/``base`` prefixed with ``<dataset>/<model>:`` so that
    units of different cases never pair with each other."""
    rows = []
    for res in results.values():
        e = res.config["experiment"]
        tag = f"{e['dataset']}/{e['model']}"
        for r in res.rows:
            rows.append({**r, "dataset": e["dataset"], "model": e["model"], "case": tag,
                         "method": f"{tag}:{r['method']}",
                         "base": None if not r.get("base") else f"{tag}:{r['base']}"})
    return rows


def run_suite(name: str, *, out: Union[str, Path] = "runs", progress: bool = False,
              plots: bool = True, only: Optional[Sequence[str]] = None,
              on_unit: Optional[Callable[..., None]] = None) -> SuiteResult:
    """Run (or resume) every case of suite ``name``, then write the combined report.
    ``only``: run just these cases (e.g. to spread cases over processes); the combined report
    then covers the cases finished so far."""
    cases = suite_cases(name)
    results: Dict[str, ExperimentResult] = {}
    skipped: Dict[str, str] = {}
    for case in cases["presets"] + cases["optional"]:
        if only is not None and case not in only:
            continue
        try:
            results[case] = run_experiment(preset=case, out=out, progress=progress, plots=plots,
                                           on_unit=on_unit)
        except (FileNotFoundError, ValueError) as exc:
            if case not in cases["optional"] or isinstance(exc, ConfigError):
                raise
            skipped[case] = str(exc)
            log.warning("suite %s: skipped %s: %s", name, case, exc)
    return _report(name, Path(out) / name, results, skipped)


def _report(name: str, out_dir: Path, results: Dict[str, ExperimentResult],
            skipped: Dict[str, str]) -> SuiteResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = combined_rows(results)
    paired, tp, md = [], [], [f"# fspai suite `{name}`", ""]
    for case, res in results.items():
        e = res.config["experiment"]
        tag = f"{e['dataset']}/{e['model']}"
        p = stats.paired_rows(res.rows, "test_acc")
        paired += [{"dataset": e["dataset"], "model": e["model"], **r} for r in p]
        tp += throughput(res.rows, model=tag)
        md += [f"## {tag} (`{case}`, run directory `{res.run_dir.name}`)", "",
               res.verdict.text if res.verdict is not None else "No sampler units.", "",
               paired_markdown(p), ""]
    verdict = stats.claim_verdict(rows, "test_acc") if paired else None
    md[2:2] = ["## Over all cases", "",
               verdict.text if verdict is not None else "No sampler units.", ""]
    for case, why in skipped.items():
        md += [f"Skipped `{case}`: {why}", ""]
    md += ["## Sampler throughput (candidates per second)", "", throughput_markdown(tp), ""]
    cols = ["dataset", "model"] + list(stats.PAIRED_COLUMNS)
    files = {"results_csv": write_csv(out_dir / "results.csv", rows),
             "paired_csv": write_csv(out_dir / "paired.csv", paired, cols + [
                 k for k in (paired[0] if paired else {}) if k not in cols]),
             "throughput_csv": write_csv(out_dir / "throughput.csv", tp)}
    files["report_md"] = out_dir / "report.md"
    atomic_write_text(files["report_md"], "\n".join(md))
    write_json(out_dir / "suite.json", {"cases": {c: str(r.run_dir) for c, r in results.items()},
                                        "skipped": skipped}, indent=1)
    return SuiteResult(out_dir, results, skipped, rows, paired, verdict, files)
