"""The full NeurIPS'23 coordinate of every layer of ResNet-34: fspai vs the papers' loop and vs an
honest SciPy loop.

Group ``coordinate-<net>-<density>``: ``test_fspai_coordinates`` (one batched
``fspai.coordinates(masks, weights, convention="neurips23")`` call), ``test_authors_loop``
(baseline (a) applied the papers' way: one float32 COO ``eigsh(k=3)`` per graph -- layer pattern,
layer weighted, every valid degree-grouped regular subgraph pattern and weighted) and
``test_scipy_loop`` (the same graphs, each solved by baseline (b), ARPACK on the Gram operator).
All are checked against the float64 reference coordinate.
"""
from __future__ import annotations

import pytest

from bench import baselines, cases, fspai_api

IDS = [cases.case_id(n, d) for n, d in cases.COORD_NETWORKS]


def _setup(benchmark, case, method):
    name, density = case
    benchmark.group = "coordinate-" + cases.case_id(name, density)
    layers = cases.network(name, density)
    benchmark.extra_info.update(method=method, layers=len(layers), nnz=sum(l.nnz for l in layers))
    return [l.mask for l in layers], [l.weight for l in layers], cases.coordinate_reference(name, density)


@pytest.mark.needs_fspai
@pytest.mark.parametrize("case", cases.COORD_NETWORKS, ids=IDS)
def test_fspai_coordinates(benchmark, case, fspai):
    masks, weights, ref = _setup(benchmark, case, "fspai.coordinates")
    out = benchmark.pedantic(fspai_api.coordinates, args=(fspai, masks, weights), rounds=10,
                             warmup_rounds=1, iterations=1)
    err = cases.max_abs_err([fspai_api.coord_array(c) for c in out], ref)
    benchmark.extra_info["max_abs_err"] = err
    assert len(out) == len(masks) and err <= 1e-5


@pytest.mark.parametrize("case", cases.COORD_NETWORKS, ids=IDS)
def test_authors_loop(benchmark, case):
    masks, weights, ref = _setup(benchmark, case, "baseline-a-authors-loop")
    out = benchmark.pedantic(baselines.authors_coordinates, args=(masks, weights), rounds=2,
                             warmup_rounds=0, iterations=1)
    err = cases.max_abs_err([c.as_array() for c in out], ref)
    benchmark.extra_info.update(max_abs_err=err, eigsolves=sum(c.eigsolves for c in out))
    assert err <= 1e-3  # float32 adjacency


@pytest.mark.parametrize("case", cases.COORD_NETWORKS, ids=IDS)
def test_scipy_loop(benchmark, case):
    masks, weights, ref = _setup(benchmark, case, "baseline-b-gram-loop")
    out = benchmark.pedantic(baselines.gram_coordinates, args=(masks, weights), rounds=2,
                             warmup_rounds=0, iterations=1)
    err = cases.max_abs_err([c.as_array() for c in out], ref)
    benchmark.extra_info.update(max_abs_err=err, eigsolves=sum(c.eigsolves for c in out))
    assert err <= 1e-5
