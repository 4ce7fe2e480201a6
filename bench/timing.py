"""Wall-clock timing protocol of the benchmark report.

One timed warm-up call, then the median of 7 / 5 / 3 repeats for calls under 0.05 s / 1 s / 8 s;
a call over 8 s is reported from its single cold sample (n=1). Very fast calls (< 5 ms) get 15
repeats. ``quick=True`` caps repeats at 3 and takes single samples above 2 s.

Calls whose ratio is reported (fspai and its baselines) are measured INTERLEAVED
(:func:`measure_group`): one warm-up each, then rounds that call each function once, so slow
drifts of the machine's speed (on a shared VM, neighbours move timings by up to 2× within
seconds) hit every side of a ratio alike instead of whichever block ran during a slow spell.
"""
from __future__ import annotations

import gc
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Tuple


@dataclass
class Timing:
    median: float
    n: int
    min: float
    max: float
    first: float
    samples: List[float] = field(default_factory=list)
    foreign: float = float("nan")  # mean CPU cores used by OTHER processes while measuring
    interleaved: bool = False  # from measure_group's rounds: samples[i] pairs with the partners' samples[i]

    def as_dict(self) -> dict:
        return {"median": self.median, "n": self.n, "min": self.min, "max": self.max,
                "first": self.first, "samples": self.samples, "foreign_cores": self.foreign,
                "interleaved": self.interleaved}


_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
GROUP_MIN_SECONDS = 1.5  # measure_group: rounds of short calls until about this much time ...
GROUP_MAX_ROUNDS = 15    # ... but no more rounds than this


def _busy_seconds() -> float:
    """CPU-seconds all CPUs spent busy since boot (/proc/stat; NaN where unavailable)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return float("nan")
    return (sum(v) - v[3] - v[4]) / _HZ  # minus idle and iowait


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class CpuMonitor:
    """Mean number of CPU cores used by other processes between start() and stop()."""

    def start(self) -> "CpuMonitor":
        self._b, self._o, self._t = _busy_seconds(), _own_seconds(), time.perf_counter()
        return self

    def stop(self) -> float:
        wall = time.perf_counter() - self._t
        foreign = (_busy_seconds() - self._b) - (_own_seconds() - self._o)
        return max(0.0, foreign / wall) if wall > 0 else float("nan")


def wait_idle(max_wait: float = 300.0, threshold: float = 0.15, window: float = 0.5,
              log=None) -> float:
    """Block until other processes use < ``threshold`` cores over ``window`` seconds (or
    ``max_wait`` passes). Returns the last foreign load seen."""
    deadline = time.monotonic() + max_wait
    warned = False
    while True:
        mon = CpuMonitor().start()
        time.sleep(window)
        load = mon.stop()
        if load != load or load < threshold or time.monotonic() > deadline:
            return load
        if log is not None and not warned:
            log(f"waiting for the machine to go idle (other processes use {load:.2f} cores)")
            warned = True
        time.sleep(2.0)


def repeats_for(t0: float, quick: bool = False) -> int:
    if quick:
        return 0 if t0 > 2.0 else (1 if t0 > 0.5 else 3)
    if t0 > 8.0:
        return 0
    if t0 > 1.0:
        return 3
    if t0 > 0.05:
        return 5
    if t0 > 0.005:
        return 7
    return 15


def measure(fn: Callable[[], Any], *, quick: bool = False) -> Tuple[Timing, Any]:
    """Time ``fn()``; returns (Timing, result of the first call)."""
    gc.collect()
    mon = CpuMonitor().start()
    t = time.perf_counter()
    result = fn()
    t0 = time.perf_counter() - t
    n = repeats_for(t0, quick)
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    if not samples:
        samples = [t0]
    return Timing(statistics.median(samples), len(samples), min(samples), max(samples), t0,
                  samples, mon.stop()), result


def measure_group(fns: List[Callable[[], Any]], *, quick: bool = False) -> List[Tuple[Timing, Any]]:
    """Time several functions interleaved: a warm-up call of each (its result is returned), then
    rounds calling each once in turn. The number of rounds is what the SLOWEST function would get
    from :func:`repeats_for`, at least 3; each Timing is the median over its own samples. When a
    warm-up took over the single-sample limit (8 s; 2 s with ``quick``) that function keeps its cold
    sample and the others repeat on their own, as :func:`measure` would. The foreign load is the
    group's."""
    gc.collect()
    mon = CpuMonitor().start()
    firsts, results = [], []
    for fn in fns:
        t = time.perf_counter()
        results.append(fn())
        firsts.append(time.perf_counter() - t)
    slowest = max(firsts)
    rounds = repeats_for(slowest, quick)
    if rounds and not quick:
        # At least 3 rounds, and enough for GROUP_MIN_SECONDS of rounds (at most GROUP_MAX_ROUNDS):
        # a group of short calls gets more samples on a machine whose speed drifts.
        per_round = max(sum(firsts), 1e-9)
        rounds = max(rounds, 3, min(GROUP_MAX_ROUNDS, math.ceil(GROUP_MIN_SECONDS / per_round)))
    samples: List[List[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            samples[i].append(time.perf_counter() - t)
    if not rounds:  # a call over the single-sample limit: it keeps its cold sample, the others repeat alone
        for i, fn in enumerate(fns):
            for _ in range(repeats_for(firsts[i], quick)):
                t = time.perf_counter()
                fn()
                samples[i].append(time.perf_counter() - t)
    foreign = mon.stop()
    out = []
    for t0, smp, res in zip(firsts, samples, results):
        smp = smp or [t0]
        out.append((Timing(statistics.median(smp), len(smp), min(smp), max(smp), t0, smp, foreign,
                           interleaved=rounds > 0), res))
    return out


def paired_ratios(base: Timing, other: Timing) -> List[float]:
    """``base`` ÷ ``other`` round by round, for two timings of one :func:`measure_group` (their
    samples are paired by round); ``[]`` when they were not measured in the same rounds."""
    if not (base.interleaved and other.interleaved) or len(base.samples) != len(other.samples):
        return []
    return [b / o for b, o in zip(base.samples, other.samples) if o > 0]


def quartiles(xs: List[float]) -> Tuple[float, float]:
    """(25th, 75th) percentile of ``xs`` (linear interpolation); NaNs for an empty list."""
    if len(xs) < 2:  # statistics.quantiles needs two points (Python < 3.13)
        return (xs[0], xs[0]) if xs else (float("nan"), float("nan"))
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q3


def measure_group_clean(fns: List[Callable[[], Any]], *, quick: bool = False, threshold: float = 0.15,
                        retries: int = 1, max_wait: float = 300.0, log=None) -> List[Tuple[Timing, Any]]:
    """:func:`measure_group` on an idle machine (waits first; re-measures once when other
    processes used more than ``threshold`` cores; keeps the cleaner run)."""
    best = None
    for attempt in range(retries + 1):
        wait_idle(max_wait=max_wait, threshold=threshold, log=log)
        got = measure_group(fns, quick=quick)
        load = got[0][0].foreign
        if best is None or load < best[0][0].foreign:
            best = got
        if not load > threshold or sum(t.first for t, _ in got) > 60.0:
            break
        if log is not None and attempt < retries:
            log(f"  other processes used {load:.2f} cores during the measurement; re-measuring")
    return best


def measure_clean(fn: Callable[[], Any], *, quick: bool = False, threshold: float = 0.15,
                  retries: int = 2, retry_below: float = 30.0, max_wait: float = 300.0,
                  cheap_retries: int = 4, cheap_below: float = 2.0,
                  log=None) -> Tuple[Timing, Any]:
    """:func:`measure` on an idle machine: waits for idle first, and re-measures when other
    processes used more than ``threshold`` cores meanwhile -- up to ``retries`` times for calls
    under ``retry_below`` s, ``cheap_retries`` times for calls under ``cheap_below`` s, never for
    longer calls; keeps the cleanest measurement."""
    best = None
    attempt = 0
    while True:
        wait_idle(max_wait=max_wait, threshold=threshold, log=log)
        timing, result = measure(fn, quick=quick)
        if best is None or timing.foreign < best[0].foreign:
            best = (timing, result)
        limit = (cheap_retries if timing.first < cheap_below
                 else retries if timing.first < retry_below else 0)
        if not timing.foreign > threshold or attempt >= limit:
            break
        attempt += 1
        if log is not None:
            log(f"  other processes used {timing.foreign:.2f} cores during the measurement; "
                f"re-measuring ({attempt}/{limit})")
    return best


def fmt_time(s: float) -> str:
    if s != s:  # NaN
        return "—"
    if s >= 10:
        return f"{s:.1f} s"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"
