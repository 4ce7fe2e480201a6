"""Top-2 singular values of every layer of a network: fspai vs the two SciPy baselines.

One pytest-benchmark group per workload ``top2-<net>-<density>-<mode>``; inside it
``test_fspai_batch`` (all layers in one ``fspai.batch_singular_values`` call), ``test_gram_arpack``
(baseline (b), per layer, setup untimed) and ``test_authors_eigsh`` (baseline (a), per layer, the
adjacency build timed). Every benchmark also checks its answer against the float64 reference.
"""
from __future__ import annotations

import pytest

from bench import baselines, cases, fspai_api

CASES = [(n, d, m) for n, d in cases.NETWORKS for m in cases.MODES]
IDS = [cases.case_id(*c) for c in CASES]

# (rounds, warmup_rounds) per method
ROUNDS = {"fspai": (20, 2), "gram": (5, 1), "authors": (3, 1)}


def _setup(benchmark, case, method):
    name, density, mode = case
    benchmark.group = "top2-" + cases.case_id(name, density, mode)
    layers = cases.network(name, density)
    benchmark.extra_info.update(method=method, layers=len(layers),
                                nnz=sum(l.nnz for l in layers), mode=mode)
    return layers, cases.network_reference(name, density, mode)


@pytest.mark.needs_fspai
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fspai_batch(benchmark, case, fspai):
    layers, ref = _setup(benchmark, case, "fspai.batch_singular_values")
    masks, weights = cases.inputs(layers, case[2])
    rounds, warm = ROUNDS["fspai"]
    vals = benchmark.pedantic(fspai_api.batch_top2, args=(fspai, masks, weights),
                              rounds=rounds, warmup_rounds=warm, iterations=1)
    err = cases.max_rel_err(vals, ref)
    benchmark.extra_info.update(max_rel_err=err, batch_api=fspai_api.has_batch(fspai))
    assert len(vals) == len(layers)
    assert err <= 1e-6


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gram_arpack(benchmark, case):
    layers, ref = _setup(benchmark, case, "baseline-b-gram-arpack")
    solvers = [baselines.GramBaseline(g) for g in cases.graphs(layers, case[2])]  # untimed setup
    rounds, warm = ROUNDS["gram"]
    vals = benchmark.pedantic(lambda: [s() for s in solvers], rounds=rounds, warmup_rounds=warm,
                              iterations=1)
    err = cases.max_rel_err(vals, ref)
    benchmark.extra_info["max_rel_err"] = err
    assert err <= 1e-6


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_authors_eigsh(benchmark, case):
    layers, ref = _setup(benchmark, case, "baseline-a-authors-eigsh")
    gs = cases.graphs(layers, case[2])
    rounds, warm = ROUNDS["authors"]
    vals = benchmark.pedantic(lambda: [baselines.authors_top2(g) for g in gs], rounds=rounds,
                              warmup_rounds=warm, iterations=1)
    err = cases.max_rel_err(vals, ref)
    benchmark.extra_info["max_rel_err"] = err
    assert err <= 1e-4  # float32 adjacency: ~1e-6 expected
