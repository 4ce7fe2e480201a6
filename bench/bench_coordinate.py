"""The full NeurIPS'23 coordinate of every layer of a network: fspai vs the papers' loop.

Group ``coordinate-<net>-<density>``: ``test_fspai_coordinates`` (one batched
``fspai.coordinates(masks, weights, convention="neurips23")`` call) and ``test_authors_loop``
(baseline (a) applied the papers' way: one float32 COO ``eigsh(k=3)`` per graph -- layer pattern,
layer weighted, every valid degree-grouped regular subgraph pattern and weighted). Both are checked
against the float64 reference coordinate.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench import baselines, cases, fspai_api

IDS = [cases.case_id(n, d) for n, d in cases.COORD_NETWORKS]


def _setup(benchmark, case, method):
    name, density = case
    benchmark.group = "coordinate-" + cases.case_id(name, density)
    layers = cases.network(name, density)
    benchmark.extra_info.update(method=method, layers=len(layers), nnz=sum(l.nnz for l in layers))
    return layers, cases.coordinate_reference(name, density)


def _max_abs(coords, ref):
    return float(max(np.max(np.abs(c - r)) for c, r in zip(coords, ref)))


@pytest.mark.needs_fspai
@pytest.mark.parametrize("case", cases.COORD_NETWORKS, ids=IDS)
def test_fspai_coordinates(benchmark, case, fspai):
    layers, ref = _setup(benchmark, case, "fspai.coordinates")
    masks = [l.mask for l in layers]
    weights = [l.weight for l in layers]
    out = benchmark.pedantic(fspai_api.coordinates, args=(fspai, masks, weights), rounds=10,
                             warmup_rounds=1, iterations=1)
    coords = [fspai_api.coord_array(c) for c in out]
    err = _max_abs(coords, ref)
    benchmark.extra_info["max_abs_err"] = err
    assert len(coords) == len(layers)
    assert err <= 1e-5


@pytest.mark.parametrize("case", cases.COORD_NETWORKS, ids=IDS)
def test_authors_loop(benchmark, case):
    layers, ref = _setup(benchmark, case, "baseline-a-authors-loop")
    masks = [l.mask for l in layers]
    weights = [l.weight for l in layers]
    out = benchmark.pedantic(baselines.authors_coordinates, args=(masks, weights), rounds=2,
                             warmup_rounds=0, iterations=1)
    err = _max_abs([c.as_array() for c in out], ref)
    benchmark.extra_info.update(max_abs_err=err, eigsolves=sum(c.eigsolves for c in out))
    assert err <= 1e-3  # float32 adjacency
