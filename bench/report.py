"""Measure every benchmark row of the kernel contract in ONE run and write bench/RESULTS.md.

    python -m bench.report                 # full run, ~4-6 min on the 2-core reference machine
    python -m bench.report --smoke --out /tmp/R.md --json ''   # tiny stand-ins, seconds

Every ratio is baseline time ÷ fspai time measured in this same process (fspai's conversion of
the CSR inputs inside its timed call; baseline (b)'s float64 CSR / transpose setup outside it,
which favours the baseline). Rows (targets in ``TARGETS``; methods in bench/README.md):

1. per layer: ``fspai.singular_values`` on each ResNet-34 layer (scipy CSR) at 1/10/50 %, default
   threads and ``threads=1``, vs (b) ARPACK on the Gram operator per layer;
   and the same loop on ``|W ⊙ M|`` (``singular_values(mask, weight)``, the solve behind
   ``weighted_gap``) vs (b) on ``|W ⊙ M|``, default threads (informational, no target);
2. whole network at 1/10 %: ``batch_singular_values`` vs (b) per layer, ``model_metrics`` vs the
   honest SciPy loop over the layer and every degree-group subgraph;
3. full coordinate of ResNet-34 at 10 % vs the papers' loop (a) and vs the honest loop (b);
4. 4096x11008 at 10/50 %: vs (b) and vs the bandwidth floor (Lanczos steps × 4 B/nnz ÷ read
   bandwidth measured in this run, at its start and end);
5. peak extra memory of ``coordinate`` (8192x28672 10 % CSR; dense 4096x11008) and of the dense
   conversion, each in a fresh process (bench/memory.py);
6. Full-Spectrum sampler throughput (bench/sampler_throughput.py): ResNet-18 at 1 % candidates per
   second for random / ERK / magnitude candidates, and 2 torchrun ranks vs one process.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import numpy as np  # noqa: E402
import scipy  # noqa: E402

from bench import baselines, fspai_api, memory, timing  # noqa: E402

ACCURACY = 1e-7   # the accuracy contract: every σ_i within max(1e-7 σ_i, 5e-8 σ_1) of dense float64
NOISY = 0.15      # cores used by other processes during a measurement above which a cell gets †
TARGETS = {"per_layer": {0.01: 5.0, 0.1: 10.0, 0.5: 10.0}, "per_layer_1t": 5.0, "batch": 10.0,
           "model_metrics": 10.0, "coord_authors": 100.0, "coord_scipy": 10.0, "big_b": 8.0,
           "big_floor": 3.0, "memory": 1.5, "convert": 1.0, "sampler_cps": 20.0, "sampler_ranks": 1.7}
SAMPLER_METHODS = ("random", "erk", "magnitude")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fx(r: float) -> str:
    return "—" if r != r else (f"{r:.1f}×" if r < 100 else f"{r:.0f}×")


def fe(e: float) -> str:
    return "—" if e != e else f"{e:.1e}"


def cell(t) -> str:
    return "—" if t is None else f"{timing.fmt_time(t.median)} (n={t.n}){' †' if t.foreign > NOISY else ''}"


class Runner:
    """Measurement with an idle-wait budget shared by the whole run."""

    def __init__(self, wait: bool, budget: float, quick: bool):
        self.wait, self.budget, self.quick = wait, budget, quick

    def __call__(self, label: str, fn):
        log(label)
        if not self.wait or self.budget <= 0:
            return timing.measure(fn, quick=self.quick)
        t0 = time.perf_counter()
        t, res = timing.measure_clean(fn, quick=self.quick, threshold=NOISY, log=log, retries=1,
                                      max_wait=min(30.0, self.budget))
        self.budget -= max(0.0, time.perf_counter() - t0 - t.first - sum(t.samples))
        return t, res

    def group(self, labelled: list) -> list:
        """[(label, fn), ...] measured interleaved (timing.measure_group): the sides of a ratio
        share the machine's state. Returns [(Timing, result), ...] in the same order."""
        log(" + ".join(label for label, _ in labelled) + " (interleaved)")
        fns = [fn for _, fn in labelled]
        if not self.wait or self.budget <= 0:
            return timing.measure_group(fns, quick=self.quick)
        t0 = time.perf_counter()
        got = timing.measure_group_clean(fns, quick=self.quick, threshold=NOISY, log=log,
                                         max_wait=min(30.0, self.budget))
        spent = sum(t.first + sum(t.samples) for t, _ in got)
        self.budget -= max(0.0, time.perf_counter() - t0 - spent)
        return got


def machine_info(fs) -> dict:
    info = {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(),
            "fspai_build_info": fspai_api.build_info(fs)}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        info["cpu"] = "; ".join(line.split(":", 1)[1].strip() for line in out.splitlines()
                                if line.split(":")[0].strip() in ("Model name", "L3 cache"))
        head = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(_REPO), "status", "--porcelain", "--", "csrc", "python"],
                               capture_output=True, text=True, check=False).stdout.strip()
        info["git"] = head + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        pass
    return info


def probe_bandwidth(smoke: bool) -> dict:
    mon = timing.CpuMonitor().start()
    bw = baselines.read_bandwidth(nbytes=(64 << 20) if smoke else (1 << 30), repeats=3 if smoke else 7,
                                  cache_bytes=None)
    bw["foreign_cores"] = mon.stop()
    log(f"read bandwidth {bw['dram_1t'] / 1e9:.1f} / {bw['dram_2t'] / 1e9:.1f} GB/s (1 / 2 threads)")
    return bw


# ----------------------------------------------------------------------------- sections
def run_per_layer(fs, m: Runner, net: str, densities) -> list:
    rows = []
    for d in densities:
        layers = cases.network(net, d)
        masks, ref = [l.mask for l in layers], cases.network_reference(net, d)
        solvers = [baselines.GramBaseline(l.mask) for l in layers]
        wl = f"{net} {cases.pct(d)}"
        got = m.group([(f"{wl}: (b) per layer", lambda: [s() for s in solvers])] +
                      [(f"{wl}: fspai per layer, {cases.threads_id(th)}",
                        lambda th=th: fspai_api.per_layer_top2(fs, masks, th)) for th in cases.THREADS])
        (t_b, vb), per_thread = got[0], got[1:]
        row = dict(workload=wl, density=d, layers=len(layers), nnz=sum(l.nnz for l in layers), gram=t_b,
                   err_b=cases.max_rel_err(vb, ref))
        for th, (t_f, vf) in zip(cases.THREADS, per_thread):
            row[f"fspai_{th}"], row[f"ratio_{th}"] = t_f, t_b.median / t_f.median
            row[f"rounds_{th}"] = timing.paired_ratios(t_b, t_f)
            row[f"err_{th}"] = cases.max_rel_err(vf, ref)
        rows.append(row)
    return rows


def run_per_layer_weighted(fs, m: Runner, net: str, densities) -> list:
    rows = []
    for d in densities:
        layers = cases.network(net, d)
        masks, weights = cases.inputs(layers, "weighted")
        ref = cases.network_reference(net, d, "weighted")
        solvers = [baselines.GramBaseline(g) for g in cases.graphs(layers, "weighted")]
        wl = f"{net} {cases.pct(d)}"
        (t_b, vb), (t_f, vf) = m.group([
            (f"{wl}: (b) per layer on |W ⊙ M|", lambda: [s() for s in solvers]),
            (f"{wl}: fspai per layer on |W ⊙ M|", lambda: fspai_api.per_layer_top2(fs, masks, None, weights))])
        rows.append(dict(workload=wl, density=d, layers=len(layers), nnz=sum(l.nnz for l in layers), gram=t_b,
                         fspai=t_f, ratio=t_b.median / t_f.median, err=cases.max_rel_err(vf, ref),
                         err_b=cases.max_rel_err(vb, ref)))
    return rows


def run_networks(fs, m: Runner, nets) -> list:
    rows = []
    for net, d in nets:
        layers = cases.network(net, d)
        names, masks, ref = [l.name for l in layers], [l.mask for l in layers], cases.network_reference(net, d)
        wl = f"{net} {cases.pct(d)}"
        solvers = [baselines.GramBaseline(l.mask) for l in layers]
        (t_b, _), (t_f, vf) = m.group([(f"{wl}: (b) per layer", lambda: [s() for s in solvers]),
                                       (f"{wl}: fspai.batch_singular_values", lambda: fspai_api.batch_top2(fs, masks))])
        (t_l, vl), (t_t, tab) = m.group([
            (f"{wl}: (b) loop over layers and subgraphs", lambda: baselines.subgraph_loop(masks)),
            (f"{wl}: fspai.model_metrics", lambda: fspai_api.model_metrics(fs, names, masks))])
        rows.append(dict(workload=wl, density=d, layers=len(layers), nnz=sum(l.nnz for l in layers),
                         gram=t_b, batch=t_f, loop=t_l, table=t_t, solves=sum(len(x) for x in vl),
                         batch_ratio=t_b.median / t_f.median, table_ratio=t_l.median / t_t.median,
                         batch_rounds=timing.paired_ratios(t_b, t_f), table_rounds=timing.paired_ratios(t_l, t_t),
                         err_batch=cases.max_rel_err(vf, ref),
                         err_table=cases.max_rel_err([(r.mu0, r.mu_hat) for r in tab], ref)))
    return rows


def run_coordinates(fs, m: Runner, nets) -> list:
    rows = []
    for net, d in nets:
        layers = cases.network(net, d)
        masks, weights = [l.mask for l in layers], [l.weight for l in layers]
        wl = f"{net} {cases.pct(d)}"
        log(f"{wl}: float64 reference coordinate")
        ref = cases.coordinate_reference(net, d)
        (t_f, cf), (t_s, cs) = m.group([(f"{wl}: fspai.coordinates", lambda: fspai_api.coordinates(fs, masks, weights)),
                                        (f"{wl}: (b) SciPy loop", lambda: baselines.gram_coordinates(masks, weights))])
        # (a) takes ~10 s per call: one cold sample of its own (interleaving would leave fspai one too)
        t_a, ca = m(f"{wl}: (a) papers' loop", lambda: baselines.authors_coordinates(masks, weights))
        rows.append(dict(workload=wl, density=d, layers=len(layers), nnz=sum(l.nnz for l in layers),
                         fspai=t_f, authors=t_a, scipy=t_s, solves=sum(c.eigsolves for c in cs),
                         subgraphs=sum(c.subgraphs for c in cs), valid=sum(c.valid_subgraphs for c in cs),
                         a_ratio=t_a.median / t_f.median, s_ratio=t_s.median / t_f.median,
                         s_rounds=timing.paired_ratios(t_s, t_f),
                         err=cases.max_abs_err([fspai_api.coord_array(c) for c in cf], ref),
                         err_a=cases.max_abs_err([c.as_array() for c in ca], ref),
                         err_s=cases.max_abs_err([c.as_array() for c in cs], ref)))
    return rows


def run_big(fs, m: Runner, big) -> list:
    rows = []
    for key, d in big:
        layer = cases.single(key, d)
        wl = f"{key} {cases.pct(d)}"
        solver = baselines.GramBaseline(layer.mask)
        (t_b, vb), (t_f, vf) = m.group([(f"{wl}: (b)", solver),
                                        (f"{wl}: fspai.singular_values", lambda: fspai_api.top2(fs, layer.mask))])
        _, info = fspai_api.top2(fs, layer.mask, info=True)
        log(f"{wl}: float64 reference")
        ref = cases.single_reference(key, d)
        rows.append(dict(workload=wl, density=d, nnz=layer.nnz, gram=t_b, fspai=t_f,
                         steps=fspai_api.info_get(info, "steps"), route=fspai_api.info_get(info, "route", ""),
                         ratio=t_b.median / t_f.median, rounds=timing.paired_ratios(t_b, t_f),
                         err=baselines.rel_err_top2(vf, ref),
                         err_b=baselines.rel_err_top2(vb, ref)))
    return rows


def run_memory(mem_cases) -> list:
    rows = []
    for case, key, d in mem_cases:
        log(f"memory: {case} {key} {cases.pct(d)} (fresh process)")
        res = memory.measure(case, key, d)
        if case == "coordinate-csr":  # the weighted CSR alone (the "input CSR")
            lay = cases.single(key, d)
            res["weight_bytes"] = int(lay.weight.data.nbytes + lay.weight.indices.nbytes + lay.weight.indptr.nbytes)
            res["ratio_weight"] = res["extra"] / res["weight_bytes"]
        rows.append(res)
    return rows


def run_sampler(smoke: bool) -> dict:
    from bench import sampler_throughput as st
    out = {"resnet18": [], "ranks": [], "width": st.WIDTH}
    for method in SAMPLER_METHODS:
        log(f"sampler: resnet18 1% {method}")
        out["resnet18"].append(dict(method=method, **st.resnet18(method, 3 if smoke else 24)))
    for world in (1, 2, 1, 2):  # alternated: a load change hits both
        log(f"sampler: MNIST-1D CNN, {world} process(es) (fresh)")
        try:
            out["ranks"].append(st.ranks(world))
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            log(f"sampler ranks: {exc}")
            return out
    return out


# ----------------------------------------------------------------------------- report
def _rank_speedup(samp) -> float:
    one = [r["loop_s"] for r in samp["ranks"] if r["world"] == 1]
    two = [r["loop_s"] for r in samp["ranks"] if r["world"] == 2]
    return min(one) / min(two) if one and two else float("nan")


def targets(per, wper, nets, coords, big, mem, bw, samp) -> list:
    out = []

    def add(what, value, target, higher=True, fmt=fx, rounds=None):
        met = value >= target if higher else value <= target
        spread = ""
        if rounds:  # the same ratio round by round (paired samples): how close the verdict is
            q1, q3 = timing.quartiles(rounds)
            spread = (f"; per round {fmt(q1)}–{fmt(q3)} (quartiles), "
                      f"{sum(x >= target for x in rounds)} of {len(rounds)} rounds ≥ {fmt(target)}")
        out.append((met, f"{what}: {fmt(value)} ({'≥' if higher else '≤'} {fmt(target)}{spread})"))

    for r in per:
        add(f"per layer {r['workload']}, default threads, vs (b)", r["ratio_None"],
            TARGETS["per_layer"].get(r["density"], 10.0), rounds=r["rounds_None"])
        add(f"per layer {r['workload']}, threads=1, vs (b)", r["ratio_1"], TARGETS["per_layer_1t"],
            rounds=r["rounds_1"])
    for r in nets:
        add(f"batch_singular_values {r['workload']} vs (b)", r["batch_ratio"], TARGETS["batch"],
            rounds=r["batch_rounds"])
        add(f"model_metrics {r['workload']} vs (b) loop over layers + subgraphs", r["table_ratio"],
            TARGETS["model_metrics"], rounds=r["table_rounds"])
    for r in coords:
        add(f"coordinate {r['workload']} vs (a) papers' loop", r["a_ratio"], TARGETS["coord_authors"])
        add(f"coordinate {r['workload']} vs (b) SciPy loop", r["s_ratio"], TARGETS["coord_scipy"],
            rounds=r["s_rounds"])
    for r in big:
        add(f"{r['workload']} vs (b)", r["ratio"], TARGETS["big_b"], rounds=r["rounds"])
        floor = r["steps"] * 4 * r["nnz"] / bw["dram"] if r["steps"] else float("nan")
        r["floor"], r["x_floor"] = floor, r["fspai"].median / floor
        add(f"{r['workload']} fspai ÷ bandwidth floor", r["x_floor"], TARGETS["big_floor"], higher=False)
    for r in mem:
        if r["case"] == "coordinate-csr":
            add(f"coordinate {r['key']} {cases.pct(r['density'])} CSR: peak extra ÷ weighted CSR bytes",
                r["ratio_weight"], TARGETS["memory"], higher=False)
        elif r["case"] == "coordinate-dense":
            add(f"coordinate {r['key']} dense: peak extra ÷ dense input bytes", r["ratio"], TARGETS["memory"],
                higher=False)
        else:
            add(f"dense conversion {r['key']}: peak extra ÷ dense input bytes", r["ratio"], TARGETS["convert"],
                higher=False)
    for r in samp["resnet18"]:
        add(f"sampler resnet18 1% {r['method']} candidates: candidates/s", r["candidates_per_s"],
            TARGETS["sampler_cps"], fmt=lambda v: f"{v:.1f}")
    add("sampler MNIST-1D CNN, 2 ranks vs 1 process (loop time)", _rank_speedup(samp),
        TARGETS["sampler_ranks"])
    errs = [r[f"err_{t}"] for r in per for t in cases.THREADS] + [r["err"] for r in wper] + \
        [r["err_batch"] for r in nets] + [r["err_table"] for r in nets] + [r["err"] for r in big]
    add("accuracy: worst fspai relative σ error over every top-2 workload", max(errs), ACCURACY, higher=False, fmt=fe)
    return out


def render(info, bw, per, wper, nets, coords, big, mem, samp, tg, wall, cmd) -> str:
    L = ["# fspai benchmark results", "",
         f"Generated by `{cmd}` on {info['date']} (wall time {wall / 60:.1f} min; git {info.get('git', '?')}). "
         "Ratios are baseline time ÷ fspai time measured in this same run: median (n samples) after one "
         "warm-up, the two sides of a ratio interleaved round by round; a call over 8 s is one cold sample; "
         "† = other processes used > 0.15 cores meanwhile. A target's verdict uses the ratio of the medians; "
         "its per-round spread is the same ratio within each round (the two calls of one round ran back to "
         "back), given as quartiles with the count of rounds that met the target. "
         "Methods: bench/README.md.", "", "## Machine", "",
         f"* {info.get('cpu', '?')}, {info['cpu_count']} CPUs; Python {info['python']}, numpy {info['numpy']}, "
         f"scipy {info['scipy']}; load average at start {tuple(round(x, 2) for x in info['loadavg_start'])}",
         f"* fspai build_info: `{json.dumps(info['fspai_build_info'], default=str)}`",
         f"* read bandwidth (measured at the start and the end of this run, larger kept): "
         f"{bw['dram_1t'] / 1e9:.1f} GB/s with 1 thread, {bw['dram_2t'] / 1e9:.1f} GB/s with 2; the floor uses "
         f"{bw['dram'] / 1e9:.1f} GB/s", "", "## Targets", ""]
    L.append(f"**{sum(m for m, _ in tg)} of {len(tg)} targets met.**")
    L += [""] + [f"* {'MET' if m else 'NOT MET'}: {s}" for m, s in tg]
    L += ["", f"## 1. `singular_values` per layer (every layer of {per[0]['workload'].split()[0] if per else '?'}, scipy CSR mask)", "",
          "fspai: one `singular_values(mask, k=2)` call per layer. (b): ARPACK `eigsh(k=2, tol=1e-6)` on the "
          "Gram operator per layer, float64 CSR M and Mᵀ prepared untimed.", "",
          "| workload | layers | nnz | (b) | fspai | (b)/fspai | fspai threads=1 | (b)/fspai(1) | fspai err | (b) err |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in per:
        L.append(f"| {r['workload']} | {r['layers']} | {r['nnz'] / 1e6:.3f} M | {cell(r['gram'])} | "
                 f"{cell(r['fspai_None'])} | **{fx(r['ratio_None'])}** | {cell(r['fspai_1'])} | **{fx(r['ratio_1'])}** | "
                 f"{fe(max(r['err_None'], r['err_1']))} | {fe(r['err_b'])} |")
    L += ["", "Weighted, the solve behind the headline `weighted_gap(mask, weight)`: one `singular_values(mask, weight, "
          "k=2)` call per layer (bool mask CSR + signed float32 `W ⊙ M` CSR of the same pattern, default threads) "
          "vs (b) on `|W ⊙ M|` per layer. Informational (no target in the kernel contract).", "",
          "| workload | layers | nnz | (b) on \\|W\\| | fspai on \\|W\\| | (b)/fspai | fspai err | (b) err |",
          "|---|---|---|---|---|---|---|---|"]
    for r in wper:
        L.append(f"| {r['workload']} | {r['layers']} | {r['nnz'] / 1e6:.3f} M | {cell(r['gram'])} | {cell(r['fspai'])} | "
                 f"**{fx(r['ratio'])}** | {fe(r['err'])} | {fe(r['err_b'])} |")
    L += ["", "## 2. Whole network in one call", "",
          "`batch_singular_values(masks)` vs (b) per layer; `model_metrics({name: mask})` (every metric, every "
          "regular subgraph) vs the honest SciPy loop: (b) on each layer and on each degree group (≥ 2 inputs).", "",
          "| workload | (b) per layer | batch_singular_values | ratio | (b) loop (solves) | model_metrics | ratio | errors |",
          "|---|---|---|---|---|---|---|---|"]
    for r in nets:
        L.append(f"| {r['workload']} | {cell(r['gram'])} | {cell(r['batch'])} | **{fx(r['batch_ratio'])}** | "
                 f"{cell(r['loop'])} ({r['solves']}) | {cell(r['table'])} | **{fx(r['table_ratio'])}** | "
                 f"{fe(max(r['err_batch'], r['err_table']))} |")
    L += ["", "## 3. Full coordinate (neurips23) of every layer", "",
          "fspai: one `coordinates(masks, weights)` call. (a): the papers' loop, one float32 COO `eigsh(k=3)` per "
          "graph (layer, |W ⊙ M|, every valid regular subgraph pattern and weighted; extraction timed). (b): the "
          "same graphs, each by ARPACK on its Gram operator. Errors: max |Δ| vs the float64 loop.", "",
          "| workload | subgraphs (valid) | solves | fspai | (a) | (a)/fspai | (b) loop | (b)/fspai | fspai err | (a) err | (b) err |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in coords:
        L.append(f"| {r['workload']} | {r['subgraphs']} ({r['valid']}) | {r['solves']} | {cell(r['fspai'])} | "
                 f"{cell(r['authors'])} | **{fx(r['a_ratio'])}** | {cell(r['scipy'])} | **{fx(r['s_ratio'])}** | "
                 f"{fe(r['err'])} | {fe(r['err_a'])} | {fe(r['err_s'])} |")
    L += ["", "## 4. One large layer (pattern)", "",
          f"floor = fspai's Lanczos steps × 4 B/nnz ÷ {bw['dram'] / 1e9:.1f} GB/s. Reference: ARPACK Gram, tol 1e-12.", "",
          "| workload | nnz | (b) | fspai | (b)/fspai | steps | route | floor | fspai/floor | fspai err | (b) err |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in big:
        L.append(f"| {r['workload']} | {r['nnz'] / 1e6:.2f} M | {cell(r['gram'])} | {cell(r['fspai'])} | "
                 f"**{fx(r['ratio'])}** | {r['steps']} | {r['route'] or '—'} | {timing.fmt_time(r['floor'])} | "
                 f"**{fx(r['x_floor'])}** | {fe(r['err'])} | {fe(r['err_b'])} |")
    L += ["", "## 5. Peak memory", "",
          "Each case in a fresh process: peak RSS during the one call minus RSS before it (C++ buffers "
          "included). CSR input = bool mask CSR + float32 `W ⊙ M` CSR of the same pattern.", "",
          "| case | layer | input | peak extra | extra ÷ input | extra ÷ weighted CSR |", "|---|---|---|---|---|---|"]
    for r in mem:
        L.append(f"| {r['case']} | {r['key']} {cases.pct(r['density'])} | {r['input_bytes'] / 2**20:.0f} MiB | "
                 f"{r['extra'] / 2**20:.0f} MiB | {r['ratio']:.2f}× | "
                 f"{(str(round(r['ratio_weight'], 2)) + '×') if 'ratio_weight' in r else '—'} |"
                 + (f" {r['note']}" if r.get("note") else ""))
    L += ["", "## 6. Full-Spectrum sampler throughput", "",
          f"`FullSpectrumSampler` on CIFAR ResNet-18 (width {samp['width']}) at 1 % (θ* = random init, baseline precomputed, default "
          "threads): candidates generated and scored per second in the sampler loop; the score is one "
          "`fspai.coordinates` call over the 21 layers (every valid regular subgraph, pattern and weighted). "
          "Magnitude candidates: top 1 % per layer of |θ* + noise| (the `fspai` protocol's noise).", "",
          "| candidates | n | candidates/s | generate / candidate | score / candidate | time in metrics |",
          "|---|---|---|---|---|---|"]
    for r in samp["resnet18"]:
        L.append(f"| {r['method']} | {r['candidates']} | **{r['candidates_per_s']:.1f}** | "
                 f"{timing.fmt_time(r['generate_s_per_candidate'])} | {timing.fmt_time(r['score_s_per_candidate'])} | "
                 f"{100 * r['metrics_fraction']:.0f} % |")
    L += ["", "Ranks: the MNIST-1D CNN, random candidates at 5 %, K = 10, each run a fresh process (one "
          "process with the default threads; 2 ranks under `torch.distributed.run`, gloo, one thread each); "
          "sampler loop time on rank 0. Runs alternate 1, 2, 1, 2; the best of each is compared.", "",
          "| processes | population | loop | of which communication | accepted layers |", "|---|---|---|---|---|"]
    for r in samp["ranks"]:
        L.append(f"| {r['world']} | {r['population']} | {timing.fmt_time(r['loop_s'])} | "
                 f"{timing.fmt_time(r['comm_s'])} | {r['accepted']} |")
    L.append(f"\nSpeed-up of 2 ranks: **{fx(_rank_speedup(samp))}**.")
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(_REPO / "bench" / "RESULTS.md"))
    p.add_argument("--json", default=str(_REPO / "bench" / "results.json"), help="raw results ('' = none)")
    p.add_argument("--smoke", action="store_true", help="tiny stand-in workloads (checks the script)")
    p.add_argument("--no-wait", action="store_true", help="do not wait for an idle machine")
    p.add_argument("--wait-budget", type=float, default=120.0, help="seconds the run may wait for idle")
    args = p.parse_args(argv)
    if args.smoke:
        os.environ["FSPAI_BENCH_SMOKE"] = "1"
    global cases
    from bench import cases  # after FSPAI_BENCH_SMOKE is settled
    fs, why = fspai_api.load_fspai()
    if fs is None:
        print(f"fspai is not importable: {why}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    info = machine_info(fs)
    m = Runner(wait=not (args.no_wait or args.smoke), budget=args.wait_budget, quick=args.smoke)
    bw0 = probe_bandwidth(args.smoke)
    net = cases.PER_LAYER[0][0]
    per = run_per_layer(fs, m, net, [d for _, d in cases.PER_LAYER])
    wper = run_per_layer_weighted(fs, m, net, [d for _, d in cases.PER_LAYER])
    nets = run_networks(fs, m, cases.NETWORKS)
    coords = run_coordinates(fs, m, cases.COORD_NETWORKS)
    big = run_big(fs, m, cases.BIG)
    mem = run_memory(cases.MEMORY)
    samp = run_sampler(args.smoke)
    bw1 = probe_bandwidth(args.smoke)
    bw = {k: max(bw0[k], bw1[k]) for k in ("dram", "dram_1t", "dram_2t")}
    tg = targets(per, wper, nets, coords, big, mem, bw, samp)
    cmd = "python -m bench.report" + (" --smoke" if args.smoke else "")
    text = render(info, bw, per, wper, nets, coords, big, mem, samp, tg, time.perf_counter() - t0, cmd)
    Path(args.out).write_text(text, encoding="utf-8")
    log(f"wrote {args.out}: {sum(x for x, _ in tg)} of {len(tg)} targets met")
    if args.json:
        from fspai import _jsonio

        def plain(rows):
            return [{k: (v.as_dict() if isinstance(v, timing.Timing) else v) for k, v in r.items()} for r in rows]

        _jsonio.write_json(args.json, dict(machine=info, bandwidth=bw, per_layer=plain(per),
                                           per_layer_weighted=plain(wper), networks=plain(nets),
                                           coordinates=plain(coords), large=plain(big), memory=mem, sampler=samp,
                                           targets=[dict(met=a, what=b) for a, b in tg]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
