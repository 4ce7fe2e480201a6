#!/usr/bin/env python
"""Measure fspai against the SciPy baselines in one run and write bench/RESULTS.md.

    python bench/ratios.py            # full run (~8-12 min on the 2-core reference machine)
    python bench/ratios.py --quick    # ~1-2 min: 10% networks, coordinate at 1%, 4096x11008 only

Workloads, baselines, timing protocol and the bandwidth floor follow /work/shared/perf-notes.md:
see bench/README.md. Every ratio is baseline time / fspai time measured in this same process,
with fspai's own conversion of the CSR inputs inside its timed call, and baseline (b)'s float64
CSR / transpose setup outside (favouring the baseline).
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

from bench import baselines, fspai_api, workload  # noqa: E402
from bench.timing import CpuMonitor, fmt_time, measure_clean, wait_idle  # noqa: E402
from bench.timing import measure as measure_raw  # noqa: E402

TARGET_B, TARGET_A, TARGET_COORD = 10.0, 50.0, 100.0
TARGET_BIG_B, TARGET_FLOOR = 8.0, 3.0
ACCURACY = 1e-7  # SPEC §2 default contract


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fmt_x(r: float) -> str:
    if r != r:
        return "—"
    return f"{r:.1f}×" if r < 100 else f"{r:.0f}×"


def fmt_e(e: float) -> str:
    return "—" if e != e else f"{e:.1e}"


NOISY = 0.15  # cores used by other processes during a measurement above which a cell gets †


def tcell(t) -> str:
    if t is None:
        return "—"
    return f"{fmt_time(t.median)} (n={t.n}){' †' if t.foreign > NOISY else ''}"


WAIT_IDLE = True  # --no-wait / --smoke turn this off
WAIT_BUDGET = [600.0]  # seconds the whole run may spend waiting for an idle machine
WAIT_EACH = 30.0


def _wait_left() -> float:
    return max(0.0, min(WAIT_EACH, WAIT_BUDGET[0]))


def measure(fn, quick=False):
    if not WAIT_IDLE or WAIT_BUDGET[0] <= 0:
        return measure_raw(fn, quick=quick)
    t0 = time.perf_counter()
    t, res = measure_clean(fn, quick=quick, threshold=NOISY, log=log, max_wait=_wait_left(),
                           retries=1)
    # only the waiting counts against the budget, roughly: total minus the measured samples
    WAIT_BUDGET[0] -= max(0.0, time.perf_counter() - t0 - t.first - sum(t.samples))
    return t, res


def machine_info(fs) -> dict:
    info = {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "platform": platform.platform()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L3 cache",
                             "Hypervisor vendor"):
                info["lscpu " + k.strip()] = v.strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_total"] = f.readline().split(":")[1].strip()
    except OSError:
        pass
    info["cpu_count"] = os.cpu_count()
    info["loadavg_start"] = os.getloadavg()
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "FSPAI_NUM_THREADS"):
        if k in os.environ:
            info[k] = os.environ[k]
    info["fspai_build_info"] = fspai_api.build_info(fs) if fs is not None else None
    try:
        head = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(_REPO), "status", "--porcelain", "--",
                                "csrc", "python"], capture_output=True, text=True,
                               check=False).stdout.strip()
        info["git"] = head + (" (+ uncommitted changes in csrc/ or python/)" if dirty else "")
    except OSError:
        pass
    if fs is not None:
        core = getattr(getattr(fs, "_core_loader", None), "_core", None)
        path = getattr(core, "__file__", None)
        if path:
            info["core_file"] = path
            info["core_mtime"] = _dt.datetime.fromtimestamp(os.path.getmtime(path)).astimezone() \
                .isoformat(timespec="seconds")
    return info


# --------------------------------------------------------------------------- bandwidth

def probe_bandwidth(tries: int = 3) -> dict:
    """read_bandwidth on an idle machine: retried while other processes use > NOISY cores."""
    best = None
    for _ in range(tries if WAIT_IDLE else 1):
        if WAIT_IDLE:
            wait_idle(max_wait=60.0, threshold=NOISY, log=log)
        mon = CpuMonitor().start()
        bw = baselines.read_bandwidth()
        bw["foreign_cores"] = mon.stop()
        log(f"read bandwidth: {bw['dram_1t'] / 1e9:.1f} GB/s (1 thread), "
            f"{bw['dram_2t'] / 1e9:.1f} GB/s (2 threads), other processes "
            f"{bw['foreign_cores']:.2f} cores")
        if best is None or bw["foreign_cores"] < best["foreign_cores"]:
            best = bw
        if bw["foreign_cores"] <= NOISY:
            break
    return best


def merge_bandwidth(a: dict, b: dict) -> dict:
    """Probes at the start and the end of the run: keep the larger (harder floor) per entry."""
    out = dict(a)
    for k, v in b.items():
        if k.startswith(("dram_", "l3_")) and isinstance(v, float):
            out[k] = max(a.get(k, 0.0), v)
    out["dram"] = max(a["dram"], b["dram"])
    out["probes"] = [{k: v for k, v in x.items() if k != "method"} for x in (a, b)]
    out["method"] = a["method"] + "; probed at the start and the end of the run, larger kept"
    return out


# --------------------------------------------------------------------------- sections

def run_networks(fs, nets, densities, quick, per_layer):
    rows, layer_rows = [], []
    for net in nets:
        for d in densities:
            layers = workload.make_network(net, d)
            for mode in ("pattern", "weighted"):
                wl = f"{net} {d * 100:g}% {mode}"
                masks = [l.mask for l in layers]
                weights = [l.weight for l in layers] if mode == "weighted" else None
                gs = [l.weight if mode == "weighted" else l.mask for l in layers]
                refs = [baselines.reference_top2(g)[0] for g in gs]
                log(f"{wl}: fspai batch")
                t_f, vf = measure(lambda: fspai_api.batch_top2(fs, masks, weights), quick=quick)
                log(f"{wl}: (b) gram arpack")
                solvers = [baselines.GramBaseline(g) for g in gs]
                t_b, vb = measure(lambda: [s() for s in solvers], quick=quick)
                log(f"{wl}: (a) authors eigsh")
                t_a, va = measure(lambda: [baselines.authors_top2(g) for g in gs], quick=quick)
                errs_f = [baselines.rel_err_top2(v, r) for v, r in zip(vf, refs)]
                worst = int(np.argmax(errs_f))
                row = dict(workload=wl, net=net, density=d, mode=mode, layers=len(layers),
                           nnz=sum(l.nnz for l in layers), fspai=t_f, gram=t_b, authors=t_a,
                           b_ratio=t_b.median / t_f.median, a_ratio=t_a.median / t_f.median,
                           err_f=max(errs_f), worst_layer=f"{layers[worst].name} "
                           f"{layers[worst].shape[0]}x{layers[worst].shape[1]}",
                           err_b=max(baselines.rel_err_top2(v, r) for v, r in zip(vb, refs)),
                           err_a=max(baselines.rel_err_top2(v, r) for v, r in zip(va, refs)),
                           batch_api=fspai_api.has_batch(fs))
                rows.append(row)
                log(f"{wl}: fspai {fmt_time(t_f.median)}  (b) {fmt_time(t_b.median)} "
                    f"[{fmt_x(row['b_ratio'])}]  (a) {fmt_time(t_a.median)} "
                    f"[{fmt_x(row['a_ratio'])}]  err {fmt_e(row['err_f'])}")
                if per_layer:
                    seen = set()
                    for i, l in enumerate(layers):
                        if l.shape in seen:
                            continue
                        seen.add(l.shape)
                        w = l.weight if mode == "weighted" else None
                        tf, _ = measure_raw(lambda: fspai_api.top2(fs, l.mask, w), quick=quick)
                        vals, info = fspai_api.top2(fs, l.mask, w, info=True)
                        tb, _ = measure_raw(solvers[i], quick=quick)
                        layer_rows.append(dict(
                            net=net, density=d, mode=mode, layer=l.name,
                            shape=f"{l.shape[0]}x{l.shape[1]}", nnz=l.nnz, fspai=tf, gram=tb,
                            ratio=tb.median / tf.median,
                            steps=fspai_api.info_get(info, "steps"),
                            method=fspai_api.info_get(info, "method"),
                            err=baselines.rel_err_top2(vals, refs[i])))
    return rows, layer_rows


def run_coordinates(fs, net, densities, quick):
    rows = []
    for d in densities:
        layers = workload.make_network(net, d)
        masks = [l.mask for l in layers]
        weights = [l.weight for l in layers]
        wl = f"{net} {d * 100:g}% coordinate"
        log(f"{wl}: float64 reference")
        ref = baselines.reference_coordinates(masks, weights)
        refa = np.array([r.as_array() for r in ref])
        log(f"{wl}: fspai.coordinates")
        t_f, out = measure(lambda: fspai_api.coordinates(fs, masks, weights), quick=quick)
        log(f"{wl}: (a) authors' loop")
        t_a, outa = measure(lambda: baselines.authors_coordinates(masks, weights), quick=quick)
        cf = np.array([fspai_api.coord_array(c) for c in out])
        ca = np.array([c.as_array() for c in outa])
        diff = np.abs(cf - refa)
        i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
        comp = ["delta_r", "weighted_gap", "imdb", "weighted_imdb"]
        big = np.abs(refa) > 1e-3
        rel = float(np.max(diff[big] / np.abs(refa[big]))) if big.any() else float("nan")
        rows.append(dict(workload=wl, density=d, layers=len(layers),
                         nnz=sum(l.nnz for l in layers), fspai=t_f, authors=t_a,
                         a_ratio=t_a.median / t_f.median,
                         eigsolves=sum(c.eigsolves for c in outa),
                         subgraphs=sum(c.subgraphs for c in outa),
                         valid_subgraphs=sum(c.valid_subgraphs for c in outa),
                         err_abs=float(diff.max()), err_rel=rel,
                         worst=f"{layers[i].name} {layers[i].shape[0]}x{layers[i].shape[1]} "
                               f"{comp[j]}: fspai {cf[i, j]:.9g} vs ref {refa[i, j]:.9g}",
                         err_abs_authors=float(np.abs(ca - refa).max())))
        r = rows[-1]
        log(f"{wl}: fspai {fmt_time(t_f.median)}  (a) {fmt_time(t_a.median)} "
            f"[{fmt_x(r['a_ratio'])}], {r['eigsolves']} eigsh, max|Δ| {fmt_e(r['err_abs'])}")
    return rows


def run_big(fs, keys, quick, bw, authors):
    rows = []
    for key in keys:
        d = 0.1
        layer = workload.make_single(key, d)
        for mode in ("pattern", "weighted"):
            wl = f"{key} {d * 100:g}% {mode}"
            g = layer.weight if mode == "weighted" else layer.mask
            w = layer.weight if mode == "weighted" else None
            log(f"{wl}: fspai")
            t_f, vf = measure(lambda: fspai_api.top2(fs, layer.mask, w), quick=quick)
            _, info = fspai_api.top2(fs, layer.mask, w, info=True)
            steps = fspai_api.info_get(info, "steps")
            log(f"{wl}: (b) gram arpack")
            solver = baselines.GramBaseline(g)
            t_b, vb = measure(solver, quick=quick)
            t_a, va = (None, None)
            if authors:
                log(f"{wl}: (a) authors eigsh (slow)")
                t_a, va = measure(lambda: baselines.authors_top2(g), quick=quick)
            log(f"{wl}: float64 reference")
            t0 = time.perf_counter()
            ref, how = baselines.reference_top2(g)
            t_ref = time.perf_counter() - t0
            bps = (8 if w is not None else 4) * layer.nnz
            floor = steps * bps / bw["dram"] if steps else float("nan")
            row = dict(workload=wl, key=key, density=d, mode=mode, nnz=layer.nnz, fspai=t_f,
                       gram=t_b, authors=t_a, steps=steps, bytes_per_step=bps, floor=floor,
                       x_floor=t_f.median / floor if floor == floor else float("nan"),
                       b_ratio=t_b.median / t_f.median,
                       a_ratio=(t_a.median / t_f.median) if t_a else float("nan"),
                       err_f=baselines.rel_err_top2(vf, ref),
                       err_b=baselines.rel_err_top2(vb, ref),
                       err_a=baselines.rel_err_top2(va, ref) if va is not None else float("nan"),
                       ref=how, ref_time=t_ref, sigma=[float(x) for x in ref],
                       method=fspai_api.info_get(info, "method"),
                       restarts=fspai_api.info_get(info, "restarts"),
                       gram_matvecs=solver.matvecs)
            rows.append(row)
            log(f"{wl}: fspai {fmt_time(t_f.median)} ({steps} steps, floor {fmt_time(floor)}, "
                f"{fmt_x(row['x_floor'])})  (b) {fmt_time(t_b.median)} [{fmt_x(row['b_ratio'])}]"
                + (f"  (a) {fmt_time(t_a.median)} [{fmt_x(row['a_ratio'])}]" if t_a else "")
                + f"  err {fmt_e(row['err_f'])}")
    return rows


# --------------------------------------------------------------------------- report

def targets(net_rows, coord_rows, big_rows):
    """[(description, met: bool)]"""
    out = []
    for r in net_rows:
        if True:
            out.append((f"top-2 {r['workload']}: vs (b) {fmt_x(r['b_ratio'])} ≥ 10×",
                        r["b_ratio"] >= TARGET_B))
            out.append((f"top-2 {r['workload']}: vs (a) {fmt_x(r['a_ratio'])} ≥ 50×",
                        r["a_ratio"] >= TARGET_A))
    for r in coord_rows:
        out.append((f"{r['workload']}: vs (a) papers' loop {fmt_x(r['a_ratio'])} ≥ 100×",
                    r["a_ratio"] >= TARGET_COORD))
    for r in big_rows:
        tag = "" if r["key"] != "8192x28672" else " (same thresholds, informational)"
        out.append((f"{r['workload']}: vs (b) {fmt_x(r['b_ratio'])} ≥ 8×{tag}",
                    r["b_ratio"] >= TARGET_BIG_B))
        out.append((f"{r['workload']}: {fmt_x(r['x_floor'])} the bandwidth floor ≤ 3×{tag}",
                    r["x_floor"] <= TARGET_FLOOR))
    errs = [r["err_f"] for r in net_rows + big_rows]
    if errs:
        out.append((f"accuracy: fspai max rel err {fmt_e(max(errs))} ≤ 1e-7 (SPEC §2) on every "
                    "top-2 workload", max(errs) <= ACCURACY))
    return out


def write_report(path: Path, info, bw, net_rows, layer_rows, coord_rows, big_rows, args, wall):
    L = []
    L.append("# fspai benchmark results")
    L.append("")
    L.append(f"Generated by `python bench/ratios.py{' --quick' if args.quick else ''}"
             f"{' --no-authors-big' if args.no_authors_big else ''}"
             f"{' --no-8192' if args.no_8192 else ''}{' --smoke' if args.smoke else ''}` on {info['date']} "
             f"(wall time {wall / 60:.1f} min). Ratios are baseline time ÷ fspai time measured in "
             "this same run. Times: median (n samples) after one warm-up; single cold sample "
             "for calls over 8 s (perf-notes §2). See bench/README.md for methods.")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"* CPU: {info.get('lscpu Model name', '?')}, {info.get('lscpu CPU(s)', '?')} CPUs "
             f"({info.get('lscpu Hypervisor vendor', 'bare metal')}), L3 "
             f"{info.get('lscpu L3 cache', '?')}, RAM {info.get('mem_total', '?')}")
    L.append(f"* Python {info['python']}, numpy {info['numpy']}, scipy {info['scipy']}; "
             f"load average at start {tuple(round(x, 2) for x in info['loadavg_start'])}, "
             f"at end {tuple(round(x, 2) for x in info.get('loadavg_end', ()))}")
    L.append(f"* fspai build_info: `{json.dumps(info['fspai_build_info'], default=str)}`; "
             f"git {info.get('git', '?')}; core `{info.get('core_file', '?')}` built "
             f"{info.get('core_mtime', '?')}")
    L.append(f"* Read bandwidth (measured now; {bw['method']}, {bw['bytes'] >> 20} MiB): "
             f"**{bw['dram_1t'] / 1e9:.1f} GB/s with 1 thread, {bw['dram_2t'] / 1e9:.1f} GB/s "
             f"with 2 threads** (best single pass {bw['dram_1t_best'] / 1e9:.1f} / "
             f"{bw['dram_2t_best'] / 1e9:.1f} GB/s); the floor uses {bw['dram'] / 1e9:.1f} GB/s. (16 MiB, L3-resident: "
             f"{bw.get('l3_1t', float('nan')) / 1e9:.0f} / {bw.get('l3_2t', float('nan')) / 1e9:.0f}"
             " GB/s, context only.)")
    for i, pr in enumerate(bw.get("probes", [])):
        L.append(f"  * probe {('at start', 'at end')[i]}: {pr['dram_1t'] / 1e9:.1f} / "
                 f"{pr['dram_2t'] / 1e9:.1f} GB/s (1 / 2 threads), other processes "
                 f"{pr.get('foreign_cores', float('nan')):.2f} cores")
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "FSPAI_NUM_THREADS"):
        if k in info:
            L.append(f"* {k}={info[k]}")
    loads = [t.foreign for r in net_rows + coord_rows + big_rows
             for t in (r.get("fspai"), r.get("gram"), r.get("authors")) if t is not None]
    if loads:
        noisy = sum(1 for x in loads if x > NOISY)
        L.append(f"* Noise: every measurement waits for an idle machine and is re-measured (up "
                 f"to 4× for calls under 2 s, once for calls under 30 s) if other processes used "
                 f"> {NOISY} cores meanwhile; max other-process load "
                 f"during a kept measurement {max(loads):.2f} cores; {noisy} of {len(loads)} "
                 "headline cells still noisy (marked †).")
    L.append("")
    tl = targets(net_rows, coord_rows, big_rows)
    met = [d for d, ok in tl if ok]
    miss = [d for d, ok in tl if not ok]
    L.append("## Targets")
    L.append("")
    L.append(f"**{len(met)} of {len(tl)} targets met.** "
             + ("Not met: " + "; ".join(miss) + "." if miss else "All targets met."))
    L.append("")
    for d, ok in tl:
        L.append(f"* {'MET' if ok else 'NOT MET'}: {d}")
    L.append("")
    if net_rows:
        L.append("## Top-2 σ of every layer of a network")
        L.append("")
        L.append("fspai: one `batch_singular_values` call over all layers"
                 + ("" if all(r["batch_api"] for r in net_rows)
                    else " (**batch API missing: Python loop over `singular_values`**)")
                 + ". (b): ARPACK on the Gram operator per layer (float64 CSR M, Mᵀ prepared "
                 "untimed). (a): float32 COO bipartite adjacency (build timed) + "
                 "`eigsh(k=3, which='LM')` per layer. Errors: max over layers of the relative "
                 "error of (σ1, σ2) vs float64 dense Gram `eigvalsh`.")
        L.append("")
        L.append("| workload | layers | nnz | fspai | (b) Gram ARPACK | (a) authors | (b)/fspai "
                 "| (a)/fspai | fspai err (worst layer) | (b) err | (a) err |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in net_rows:
            L.append(f"| {r['workload']} | {r['layers']} | {r['nnz'] / 1e6:.3f} M | "
                     f"{tcell(r['fspai'])} | {tcell(r['gram'])} | {tcell(r['authors'])} | "
                     f"**{fmt_x(r['b_ratio'])}** | **{fmt_x(r['a_ratio'])}** | "
                     f"{fmt_e(r['err_f'])} ({r['worst_layer']}) | {fmt_e(r['err_b'])} | "
                     f"{fmt_e(r['err_a'])} |")
        L.append("")
    if coord_rows:
        L.append("## Full coordinate of every layer (neurips23)")
        L.append("")
        L.append("fspai: one `coordinates(masks, weights, convention='neurips23')` call. (a): the "
                 "papers' loop, one float32 COO `eigsh(k=3)` per graph (layer pattern, layer "
                 "weighted, each valid degree-grouped regular subgraph pattern and weighted); "
                 "subgraph extraction is timed too. Errors vs the same loop with float64 dense "
                 "solves.")
        L.append("")
        L.append("| workload | layers | nnz | subgraphs (valid) | eigsh calls in (a) | fspai | "
                 "(a) papers' loop | (a)/fspai | fspai max abs err | rel err (|ref|>1e-3) | "
                 "(a) max abs err |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in coord_rows:
            L.append(f"| {r['workload']} | {r['layers']} | {r['nnz'] / 1e6:.3f} M | "
                     f"{r['subgraphs']} ({r['valid_subgraphs']}) | {r['eigsolves']} | "
                     f"{tcell(r['fspai'])} | {tcell(r['authors'])} | **{fmt_x(r['a_ratio'])}** | "
                     f"{fmt_e(r['err_abs'])} | {fmt_e(r['err_rel'])} | "
                     f"{fmt_e(r['err_abs_authors'])} |")
        L.append("")
        for r in coord_rows:
            L.append(f"* {r['workload']}: worst component: {r['worst']}")
        L.append("")
    if big_rows:
        L.append("## Single large layers (10%)")
        L.append("")
        L.append("floor = fspai's Lanczos steps (`info.steps`) × bytes per step (4 B/nnz pattern, "
                 f"8 B/nnz weighted) ÷ {bw['dram'] / 1e9:.1f} GB/s (DRAM read bandwidth measured "
                 "in this run). per step = fspai time ÷ steps (whole call, conversion included); "
                 "eff. GB/s = bytes per step ÷ per step. Reference: ARPACK Gram, tol 1e-12, "
                 "ncv 40.")
        L.append("")
        L.append("| workload | nnz | fspai | steps | per step | eff. GB/s | floor | fspai/floor | "
                 "(b) Gram ARPACK | (b)/fspai | (a) authors | (a)/fspai | fspai err | (b) err "
                 "| (a) err |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in big_rows:
            st = r["steps"] or float("nan")
            per = r["fspai"].median / st
            L.append(f"| {r['workload']} | {r['nnz'] / 1e6:.2f} M | {tcell(r['fspai'])} | "
                     f"{r['steps']} | {fmt_time(per)} | {r['bytes_per_step'] / per / 1e9:.1f} | "
                     f"{fmt_time(r['floor'])} | **{fmt_x(r['x_floor'])}** | "
                     f"{tcell(r['gram'])} | **{fmt_x(r['b_ratio'])}** | {tcell(r['authors'])} | "
                     f"{fmt_x(r['a_ratio'])} | {fmt_e(r['err_f'])} | {fmt_e(r['err_b'])} | "
                     f"{fmt_e(r['err_a'])} |")
        L.append("")
    if layer_rows:
        L.append("## Appendix: per layer (ResNet-34 unique shapes, single-layer calls)"
                 if any(r["net"] == "resnet34" for r in layer_rows) else "## Appendix: per layer")
        L.append("")
        L.append("fspai `singular_values` on one layer vs (b) on the same layer (median after a "
                 "warm-up; no idle wait here, † = other processes were busy meanwhile). "
                 "steps 0 = exact dense path.")
        L.append("")
        L.append("| density | mode | layer | shape | nnz | fspai | (b) | (b)/fspai | steps | "
                 "method | err |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in layer_rows:
            if r["net"] == "vgg16":
                continue
            L.append(f"| {r['density'] * 100:g}% | {r['mode']} | {r['layer']} | {r['shape']} | "
                     f"{r['nnz']} | {tcell(r['fspai'])} | {tcell(r['gram'])} | "
                     f"{fmt_x(r['ratio'])} | {r['steps']} | {r['method']} | {fmt_e(r['err'])} |")
        L.append("")
    path.write_text("\n".join(L) + "\n")


def _jsonable(o):
    if hasattr(o, "as_dict"):
        return o.as_dict()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    return str(o)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="10%% networks only, coordinate at 1%%, 4096x11008 without (a), fewer "
                        "repeats; skips 8192x28672 (~1-2 min)")
    p.add_argument("--no-authors-big", action="store_true",
                   help="skip baseline (a) on the single large layers (saves ~4 min)")
    p.add_argument("--no-8192", action="store_true", help="skip the 8192x28672 layer")
    p.add_argument("--no-per-layer", action="store_true", help="skip the per-layer appendix")
    p.add_argument("--smoke", action="store_true",
                   help="tiny stand-in workloads only: checks the script itself (seconds)")
    p.add_argument("--no-wait", action="store_true",
                   help="do not wait for an idle machine / re-measure noisy measurements")
    p.add_argument("--wait-budget", type=float, default=600.0,
                   help="total seconds the run may spend waiting for an idle machine (600)")
    p.add_argument("--out", type=Path, default=_REPO / "bench" / "RESULTS.md")
    p.add_argument("--json", default=str(_REPO / "bench" / "results.json"),
                   help="raw results (every sample); '' to skip")
    args = p.parse_args(argv)
    global WAIT_IDLE
    WAIT_IDLE = not (args.no_wait or args.smoke)
    WAIT_BUDGET[0] = args.wait_budget

    fs, why = fspai_api.load_fspai()
    if fs is None:
        print(f"fspai is not importable ({why}); build it first (see bench/README.md)",
              file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    info = machine_info(fs)
    if info["loadavg_start"][0] > 0.7:
        log(f"WARNING: load average {info['loadavg_start']} -- something else is running; "
            "timings will be noisy")
    bw = probe_bandwidth()
    log(f"read bandwidth: {bw['dram_1t'] / 1e9:.1f} GB/s (1 thread), "
        f"{bw['dram_2t'] / 1e9:.1f} GB/s (2 threads)")
    quick = args.quick or args.smoke
    densities = (0.1,) if quick else (0.01, 0.1)
    nets = ("smoke",) if args.smoke else ("resnet34", "vgg16")
    net_rows, layer_rows = run_networks(fs, nets, densities, quick,
                                        per_layer=not args.no_per_layer)
    coord_rows = run_coordinates(fs, "smoke" if args.smoke else "resnet34",
                                 (0.01,) if quick else (0.01, 0.1), quick)
    if args.smoke:
        keys = ["smoke"]
    else:
        keys = ["4096x11008"] + ([] if (quick or args.no_8192) else ["8192x28672"])
    big_rows = run_big(fs, keys, quick, bw,
                       authors=args.smoke or not (quick or args.no_authors_big))
    bw_end = probe_bandwidth()
    bw = merge_bandwidth(bw, bw_end)
    for r in big_rows:  # floors with the final (larger) bandwidth
        r["floor"] = r["steps"] * r["bytes_per_step"] / bw["dram"] if r["steps"] else float("nan")
        r["x_floor"] = r["fspai"].median / r["floor"] if r["steps"] else float("nan")
    info["loadavg_end"] = os.getloadavg()
    wall = time.perf_counter() - t_start
    write_report(args.out, info, bw, net_rows, layer_rows, coord_rows, big_rows, args, wall)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(machine=info, bandwidth=bw, networks=net_rows,
                                             per_layer=layer_rows, coordinates=coord_rows,
                                             large=big_rows), default=_jsonable, indent=1))
    log(f"wrote {args.out} ({wall / 60:.1f} min)")
    print()
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
