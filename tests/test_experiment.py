"""fspai.experiment: configuration, the end-to-end run on a tiny grid, output files, resumability,
aggregation and correlations."""
from __future__ import annotations

import csv
import json
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fspai import experiment as ex  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

TINY = {
    "experiment": {"name": "tiny", "dataset": "digits", "model": "mlp", "densities": [0.1],
                   "seeds": [0], "methods": ["random", "snip"], "weights": "pretrained",
                   "pretrain_steps": 10},
    "data": {"batch_size": 64},
    "model": {"hidden": [32]},
    "sampler": {"methods": ["snip"], "population": 2, "save_interval": 1,
                "candidate_batches": 1},
    "train": {"steps": 20, "lr": 0.05},
    "lth": {"rounds": 1, "rewind_steps": 2, "steps": 10},
    "set": {"update_every": 5, "steps": 15},
}


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------

def test_presets_load_and_validate():
    names = ex.list_presets()
    assert {"quick", "grid", "full-mnist1d-mlp", "full-digits-mlp"} <= set(names)
    assert "full" in ex.list_suites() and "full" not in names
    assert ex.suite_cases("full")["presets"][0] == "full-mnist1d-mlp"
    for name in names:
        cfg = ex.load_config(preset=name)
        assert cfg["experiment"]["densities"] and cfg["experiment"]["seeds"]
    quick = ex.load_config(preset="quick")
    assert quick["experiment"]["dataset"] == "mnist1d"


def test_config_layers_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[experiment]\nseeds = [3]\n[sampler]\npopulation = 7\n')
    cfg = ex.load_config(path, preset="quick",
                         overrides=["sampler.rule=\"network\"", "experiment.densities=[0.2]",
                                    "train.lr=0.01"])
    assert cfg["experiment"]["seeds"] == [3]
    assert cfg["sampler"]["population"] == 7 and cfg["sampler"]["rule"] == "network"
    assert cfg["experiment"]["densities"] == [0.2] and cfg["train"]["lr"] == 0.01
    assert ex.parse_override("sampler.budget=preserve") == {"sampler": {"budget": "preserve"}}
    # the hash names the run directory and changes with the configuration
    a, b = ex.load_config(TINY), ex.load_config(TINY, overrides=["sampler.population=3"])
    assert ex.config_hash(a) == ex.config_hash(ex.load_config(TINY))
    assert ex.config_hash(a) != ex.config_hash(b)
    assert ex.run_dir_for(a, tmp_path).name.startswith("tiny-")


@pytest.mark.parametrize("bad, match", [
    ({"experiment": {"densities": [0]}}, "densities"),
    ({"experiment": {"densities": [1.5]}}, "densities"),
    ({"experiment": {"methods": ["obd"]}}, "unknown PaI method"),
    ({"experiment": {"seeds": "x"}}, "seeds"),
    ({"sampler": {"popluation": 3}}, "unknown key"),
    ({"sampler": {"rule": "greedy"}}, "sampler.rule"),
    ({"sampler": {"population": "many"}}, "integer"),
    ({"lth": {"enabled": "yes"}}, "true or false"),
    ({"nonsense": {}}, "unknown config section"),
    ({"experiment": {"name": "a/b"}}, "plain name"),
])
def test_config_errors(bad, match):
    with pytest.raises(ex.ConfigError, match=match):
        ex.load_config(bad)


def test_config_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ex.load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[experiment\nname=")
    with pytest.raises(ex.ConfigError, match="invalid TOML"):
        ex.load_config(broken)
    with pytest.raises(ex.ConfigError, match="unknown preset"):
        ex.load_config(preset="nope")
    with pytest.raises(ex.ConfigError, match="section.key=value"):
        ex.parse_override("population 3")


def test_plan_units():
    cfg = ex.load_config(TINY, overrides=["experiment.seeds=[0, 1]"])
    ids = [u.id for u in ex.plan_units(cfg)]
    assert len(ids) == 2 * (2 + 1 + 1) and len(set(ids)) == len(ids)
    assert "fs-snip__d0.1__s1" in ids and "lth__d0.1__s0" in ids
    u = ex.Unit("fs-snip", 0.1, 0)
    assert (u.kind, u.base) == ("sampler", "snip")


# --------------------------------------------------------------------------------------------
# aggregation and statistics
# --------------------------------------------------------------------------------------------

def _rows():
    rows = []
    for seed, (a_base, a_fs) in enumerate([(0.5, 0.6), (0.7, 0.7), (0.6, 0.8)]):
        rows.append({"method": "snip", "kind": "pai", "base": "snip", "density": 0.1,
                     "seed": seed, "accuracy": a_base, "realised_density": 0.1,
                     "coordinate_norm": a_base * 2, "delta_r": 1.0, "weighted_gap": seed,
                     "imdb": a_base, "weighted_imdb": 0.0})
        rows.append({"method": "fs-snip", "kind": "sampler", "base": "snip", "density": 0.1,
                     "seed": seed, "accuracy": a_fs, "realised_density": 0.11,
                     "coordinate_norm": a_fs * 2, "delta_r": 1.0, "weighted_gap": seed,
                     "imdb": a_fs, "weighted_imdb": 0.0})
    return rows


def test_summarize_means_stds_and_paired_difference():
    summ = ex.summarize(_rows(), ["snip", "fs-snip"])
    assert [r["method"] for r in summ] == ["snip", "fs-snip"]
    base, fs = summ
    assert base["accuracy_mean"] == pytest.approx(0.6)
    assert base["accuracy_std"] == pytest.approx(0.1)        # ddof=1
    assert fs["vs_base_mean"] == pytest.approx(0.1)
    assert fs["vs_base_wins"] == 2 and fs["vs_base_n"] == 3
    md = ex.markdown_table(summ)
    assert "| 0.1 | fs-snip | 70.00 ± 10.00 | 3 | +10.00" in md


def test_correlations_match_scipy_and_handle_constants():
    from scipy import stats
    rows = _rows()
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # constant inputs must not reach scipy
        corr = ex.correlations(rows, ex.CORR_METRICS)
    by = {(c["scope"], c["metric"]): c for c in corr}
    x = [r["coordinate_norm"] for r in rows]
    y = [r["accuracy"] for r in rows]
    c = by[("all", "coordinate_norm")]
    assert c["n"] == 6
    assert c["pearson_r"] == pytest.approx(1.0)
    assert c["spearman_rho"] == pytest.approx(stats.spearmanr(x, y)[0])
    assert math.isnan(by[("all", "delta_r")]["pearson_r"])     # constant metric
    assert math.isnan(by[("all", "weighted_imdb")]["spearman_p"])
    assert by[("all", "weighted_gap")]["pearson_p"] == pytest.approx(
        stats.pearsonr([r["weighted_gap"] for r in rows], y)[1])
    assert ("density=0.1", "imdb") in by


# --------------------------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    seen = []
    res = ex.run_experiment(TINY, out=out, on_unit=lambda u, row, skipped: seen.append(
        (u.id, skipped)))
    return out, res, seen


def test_experiment_writes_tables_and_plots(tiny_run):
    out, res, seen = tiny_run
    assert res.run_dir.parent == out and res.run_dir.name.startswith("tiny-")
    assert [s for _, s in seen] == [False] * 4
    assert set(res.ran) == {"random__d0.1__s0", "snip__d0.1__s0", "fs-snip__d0.1__s0",
                            "lth__d0.1__s0", "set_evolution"}
    with open(res.run_dir / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    cols = set(rows[0])
    assert {"method", "density", "seed", "accuracy", "val_acc", "test_acc", "realised_density",
            "coordinate_norm", "delta_r", "weighted_gap", "imdb", "weighted_imdb",
            "coordinate_norm_trained"} <= cols
    for r in rows:
        assert 0.0 <= float(r["accuracy"]) <= 1.0
        assert float(r["realised_density"]) == pytest.approx(0.1, rel=0.2)
        assert float(r["coordinate_norm"]) >= 0
    with open(res.run_dir / "summary.csv", newline="") as f:
        summ = list(csv.DictReader(f))
    assert [r["method"] for r in summ] == ["random", "snip", "fs-snip", "lth"]
    assert summ[2]["vs_base_n"] == "1"
    with open(res.run_dir / "correlations.csv", newline="") as f:
        corr = list(csv.DictReader(f))
    assert {"scope", "metric", "n", "pearson_r", "pearson_p", "pearson_ci_low",
            "pearson_ci_high", "spearman_rho", "spearman_p", "spearman_ci_low",
            "spearman_ci_high"} == set(corr[0])
    assert any(c["metric"] == "coordinate_norm" and c["scope"] == "all" and c["n"] == "4"
               for c in corr)
    md = (res.run_dir / "results.md").read_text()
    assert "| density | method |" in md and "fs-snip" in md and "Pearson" in md
    for png in ("acc_vs_norm.png", "layer_gaps.png", "set_evolution.png"):
        data = (res.run_dir / png).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 2000, png
    cfg = json.loads((res.run_dir / "config.json").read_text())
    assert ex.config_hash(cfg) == res.run_dir.name.split("-")[-1]
    unit = json.loads((res.run_dir / "units" / "fs-snip__d0.1__s0.json").read_text())
    assert unit["sampler"]["timings"]["candidates"] == 2
    assert (res.run_dir / "masks" / "fs-snip__d0.1__s0.pt").is_file()
    set_res = json.loads((res.run_dir / "units" / "set_evolution.json").read_text())
    assert [r["step"] for r in set_res["records"]][:2] == [0, 5]


def test_experiment_resumes_and_skips_finished_units(tiny_run):
    out, first, _ = tiny_run
    seen = []
    again = ex.run_experiment(TINY, out=out, on_unit=lambda u, row, sk: seen.append(sk))
    assert again.run_dir == first.run_dir
    assert again.ran == [] and len(again.skipped) == 5
    assert seen == [True] * 4
    assert [r["accuracy"] for r in again.rows] == [r["accuracy"] for r in first.rows]
    # a lost unit file is recomputed, identically (everything is seeded)
    (first.run_dir / "units" / "snip__d0.1__s0.json").unlink()
    third = ex.run_experiment(TINY, out=out, plots=False)
    assert third.ran == ["snip__d0.1__s0"]
    assert third.rows[1]["accuracy"] == first.rows[1]["accuracy"]


def test_released_protocol_shares_the_seed0_theta_and_writes_paired_csv(tmp_path):
    cfg = {**TINY, "experiment": {**TINY["experiment"], "seeds": [0, 1], "methods": ["random"]},
           "sampler": {**TINY["sampler"], "methods": ["random"], "protocol": "released"},
           "lth": {"enabled": False}, "set": {"enabled": False}}
    res = ex.run_experiment(cfg, out=tmp_path, plots=False)
    assert sorted(p.name for p in (res.run_dir / "theta").iterdir()) == ["seed0.pt"]
    rows = {r["unit"]: r for r in res.rows}
    assert set(rows) == {"random__d0.1__s0", "fs-random__d0.1__s0", "random__d0.1__s1",
                         "fs-random__d0.1__s1"}
    for r in rows.values():
        assert 0 <= r["val_acc"] <= 1 and r["test_acc"] == r["accuracy"]
    fs = rows["fs-random__d0.1__s0"]
    assert fs["best_test_acc_released"] >= rows["random__d0.1__s0"]["test_acc"] - 1e-12
    with open(res.run_dir / "paired.csv", newline="") as f:
        paired = list(csv.DictReader(f))
    assert list(paired[0])[:7] == ["base", "density", "n_pairs", "mean_diff", "ci_low",
                                   "ci_high", "p_value"]
    assert paired[0]["n_pairs"] == "2"
    md = (res.run_dir / "results.md").read_text()
    assert "protocol **released**" in md and "cannot be decided" in md
    with pytest.raises(ex.ConfigError, match="sampler.protocol"):
        ex.load_config(TINY, overrides=["sampler.protocol=\"paper\""])
