"""Top-2 singular values of every ResNet-34 layer: fspai vs the honest SciPy baseline.

Groups (pytest-benchmark compares within a group):

* ``per-layer-<net>-<density>``: ``fspai.singular_values`` called once per layer on the scipy CSR
  mask (default threads, and ``threads=1``) vs baseline (b), ARPACK on the Gram operator per layer
  (float64 CSR M and Mᵀ prepared untimed). Densities 1 / 10 / 50 %.
* ``per-layer-weighted-<net>-<density>``: the same loop on ``|W ⊙ M|`` (``singular_values(mask,
  weight)``, the solve behind ``weighted_gap``; mask and signed ``W ⊙ M`` as scipy CSR) vs (b) on
  ``|W ⊙ M|`` per layer. Densities 1 / 10 / 50 %.
* ``network-<net>-<density>``: the whole network in one call, ``fspai.batch_singular_values`` and
  ``fspai.model_metrics`` (every metric, all regular subgraphs included), vs baseline (b) per
  layer and vs the honest SciPy loop for what ``model_metrics`` computes (the layer and every
  degree group). Densities 1 / 10 %.

Every benchmark checks its answer against the float64 reference.
"""
from __future__ import annotations

import pytest

from bench import baselines, cases, fspai_api

PER_LAYER = [(n, d, t) for n, d in cases.PER_LAYER for t in cases.THREADS]
PER_LAYER_IDS = [f"{cases.case_id(n, d)}-{cases.threads_id(t)}" for n, d, t in PER_LAYER]
NET_IDS = [cases.case_id(n, d) for n, d in cases.NETWORKS]


def _setup(benchmark, group, name, density, method, mode="pattern"):
    benchmark.group = f"{group}-{cases.case_id(name, density)}"
    layers = cases.network(name, density)
    benchmark.extra_info.update(method=method, layers=len(layers), nnz=sum(l.nnz for l in layers))
    return layers, cases.network_reference(name, density, mode)


@pytest.mark.needs_fspai
@pytest.mark.parametrize("case", PER_LAYER, ids=PER_LAYER_IDS)
def test_fspai_per_layer(benchmark, case, fspai):
    name, density, threads = case
    layers, ref = _setup(benchmark, "per-layer", name, density,
                         f"fspai.singular_values per layer ({cases.threads_id(threads)})")
    masks = [l.mask for l in layers]
    vals = benchmark.pedantic(fspai_api.per_layer_top2, args=(fspai, masks, threads), rounds=10,
                              warmup_rounds=1, iterations=1)
    err = cases.max_rel_err(vals, ref)
    benchmark.extra_info["max_rel_err"] = err
    assert err <= 1e-7


@pytest.mark.parametrize("case", cases.PER_LAYER, ids=[cases.case_id(*c) for c in cases.PER_LAYER])
def test_gram_arpack_per_layer(benchmark, case):
    layers, ref = _setup(benchmark, "per-layer", *case, "baseline-b-gram-arpack")
    solvers = [baselines.GramBaseline(l.mask) for l in layers]  # untimed setup
    vals = benchmark.pedantic(lambda: [s() for s in solvers], rounds=3, warmup_rounds=1, iterations=1)
    err = cases.max_rel_err(vals, ref)
    benchmark.extra_info["max_rel_err"] = err
    assert err <= 1e-6


@pytest.mark.needs_fspai
@pytest.mark.parametrize("case", cases.PER_LAYER, ids=[cases.case_id(*c) for c in cases.PER_LAYER])
def test_fspai_per_layer_weighted(benchmark, case, fspai):
    layers, ref = _setup(benchmark, "per-layer-weighted", *case, "fspai.singular_values(mask, weight) per layer",
                         mode="weighted")
    masks, weights = cases.inputs(layers, "weighted")
    vals = benchmark.pedantic(fspai_api.per_layer_top2, args=(fspai, masks, None, weights), rounds=5,
                              warmup_rounds=1, iterations=1)
    err = cases.max_rel_err(vals, ref)
    benchmark.extra_info["max_rel_err"] = err
    assert err <= 1e-7


@pytest.mark.parametrize("case", cases.PER_LAYER, ids=[cases.case_id(*c) for c in cases.PER_LAYER])
def test_gram_arpack_per_layer_weighted(benchmark, case):
    layers, ref = _setup(benchmark, "per-layer-weighted", *case, "baseline-b-gram-arpack", mode="weighted")
    solvers = [baselines.GramBaseline(g) for g in cases.graphs(layers, "weighted")]  # |W ⊙ M|, untimed setup
    vals = benchmark.pedantic(lambda: [s() for s in solvers], rounds=3, warmup_rounds=1, iterations=1)
    err = cases.max_rel_err(vals, ref)
    benchmark.extra_info["max_rel_err"] = err
    assert err <= 1e-6


@pytest.mark.needs_fspai
@pytest.mark.parametrize("case", cases.NETWORKS, ids=NET_IDS)
def test_fspai_batch(benchmark, case, fspai):
    layers, ref = _setup(benchmark, "network", *case, "fspai.batch_singular_values")
    masks = [l.mask for l in layers]
    vals = benchmark.pedantic(fspai_api.batch_top2, args=(fspai, masks), rounds=10, warmup_rounds=1,
                              iterations=1)
    err = cases.max_rel_err(vals, ref)
    benchmark.extra_info["max_rel_err"] = err
    assert len(vals) == len(layers) and err <= 1e-7


@pytest.mark.needs_fspai
@pytest.mark.parametrize("case", cases.NETWORKS, ids=NET_IDS)
def test_fspai_model_metrics(benchmark, case, fspai):
    layers, ref = _setup(benchmark, "network", *case, "fspai.model_metrics")
    names, masks = [l.name for l in layers], [l.mask for l in layers]
    table = benchmark.pedantic(fspai_api.model_metrics, args=(fspai, names, masks), rounds=5,
                               warmup_rounds=1, iterations=1)
    err = cases.max_rel_err([(r.mu0, r.mu_hat) for r in table], ref)
    benchmark.extra_info.update(max_rel_err=err, subgraphs=sum(r.subgraphs for r in table))
    assert len(table) == len(layers) and err <= 1e-7


@pytest.mark.parametrize("case", cases.NETWORKS, ids=NET_IDS)
def test_gram_arpack(benchmark, case):
    layers, ref = _setup(benchmark, "network", *case, "baseline-b-gram-arpack")
    solvers = [baselines.GramBaseline(l.mask) for l in layers]  # untimed setup
    vals = benchmark.pedantic(lambda: [s() for s in solvers], rounds=3, warmup_rounds=1, iterations=1)
    assert cases.max_rel_err(vals, ref) <= 1e-6


@pytest.mark.parametrize("case", cases.NETWORKS, ids=NET_IDS)
def test_scipy_subgraph_loop(benchmark, case):
    layers, ref = _setup(benchmark, "network", *case, "baseline-b-loop-layer-and-subgraphs")
    masks = [l.mask for l in layers]
    out = benchmark.pedantic(baselines.subgraph_loop, args=(masks,), rounds=2, warmup_rounds=0,
                             iterations=1)
    benchmark.extra_info["solves"] = sum(len(x) for x in out)
    assert cases.max_rel_err([x[0] for x in out], ref) <= 1e-6
