"""The workloads of the benchmark suites and of ``bench/report.py`` (full or smoke), with cached
float64 references. One list per row family of the report; smoke mode (``FSPAI_BENCH_SMOKE=1``)
swaps each for tiny stand-ins that run through the same code paths in seconds.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import List, Tuple

import numpy as np

from bench import baselines, workload

SMOKE = os.environ.get("FSPAI_BENCH_SMOKE", "") not in ("", "0")
MODES = ("pattern", "weighted")

if SMOKE:
    PER_LAYER = [("smoke", 0.01), ("smoke", 0.5)]
    NETWORKS = [("smoke", 0.1)]
    COORD_NETWORKS = [("smoke", 0.1)]
    BIG = [("smoke", 0.1), ("smoke", 0.5)]
    MEMORY = [("coordinate-csr", "smoke", 0.1), ("coordinate-dense", "smoke", 0.1),
              ("convert-dense", "smoke", 0.1)]
else:
    PER_LAYER = [("resnet34", 0.01), ("resnet34", 0.1), ("resnet34", 0.5)]   # singular_values per layer
    NETWORKS = [("resnet34", 0.01), ("resnet34", 0.1)]                      # batched calls
    COORD_NETWORKS = [("resnet34", 0.1)]                                    # full coordinate
    BIG = [("4096x11008", 0.1), ("4096x11008", 0.5)]                       # LLM-sized layer
    MEMORY = [("coordinate-csr", "8192x28672", 0.1), ("coordinate-dense", "4096x11008", 0.1),
              ("convert-dense", "4096x11008", 0.1)]

THREADS = (None, 1)  # fspai's default thread count, and one thread


def pct(d: float) -> str:
    return f"{d * 100:g}%"


def case_id(name: str, density: float, mode: str = "") -> str:
    return f"{name}-{pct(density)}" + (f"-{mode}" if mode else "")


def threads_id(threads) -> str:
    return "default-threads" if threads is None else f"threads={threads}"


@lru_cache(maxsize=None)
def network(name: str, density: float) -> Tuple[workload.Layer, ...]:
    return tuple(workload.make_network(name, density))


@lru_cache(maxsize=None)
def single(key: str, density: float) -> workload.Layer:
    return workload.make_single(key, density)


def inputs(layers, mode: str):
    """(masks, weights-or-None) as passed to fspai."""
    masks = [l.mask for l in layers]
    return masks, ([l.weight for l in layers] if mode == "weighted" else None)


def graphs(layers, mode: str):
    """What the baselines get: the bool mask or the signed W ⊙ M (they take |.|)."""
    return [l.weight if mode == "weighted" else l.mask for l in layers]


@lru_cache(maxsize=None)
def network_reference(name: str, density: float, mode: str = "pattern") -> Tuple[np.ndarray, ...]:
    return tuple(baselines.reference_top2(g)[0] for g in graphs(network(name, density), mode))


@lru_cache(maxsize=None)
def single_reference(key: str, density: float, mode: str = "pattern") -> np.ndarray:
    return baselines.reference_top2(graphs([single(key, density)], mode)[0])[0]


@lru_cache(maxsize=None)
def coordinate_reference(name: str, density: float) -> Tuple[np.ndarray, ...]:
    layers = network(name, density)
    refs = baselines.reference_coordinates([l.mask for l in layers], [l.weight for l in layers])
    return tuple(r.as_array() for r in refs)


def max_rel_err(values: List[np.ndarray], refs) -> float:
    return max(baselines.rel_err_top2(v, r) for v, r in zip(values, refs))


def max_abs_err(coords, refs) -> float:
    return float(max(np.max(np.abs(np.asarray(c) - r)) for c, r in zip(coords, refs)))
