"""Single LLM-sized layers (4096x11008 and 8192x28672 at 10%), pattern and weighted.

Group ``large-<layer>-<density>-<mode>``: ``test_fspai`` (``fspai.singular_values`` on the CSR
mask; extra_info holds Lanczos steps, the bandwidth floor and fspai / floor), ``test_gram_arpack``
(baseline (b)) and ``test_authors_eigsh`` (baseline (a); ``heavy`` on 8192x28672 where one call
takes ~100 s -- run with FSPAI_BENCH_HEAVY=1). Rounds are 1-3 and there are no multi-minute
warm-ups.
"""
from __future__ import annotations

import pytest

from bench import baselines, cases, fspai_api

CASES = [(k, d, m) for k, d in cases.BIG for m in cases.MODES]
IDS = [cases.case_id(*c) for c in CASES]


def _huge(case) -> bool:
    return case[0] == "8192x28672"


def _setup(benchmark, case, method):
    key, density, mode = case
    benchmark.group = "large-" + cases.case_id(key, density, mode)
    layer = cases.single(key, density)
    benchmark.extra_info.update(method=method, shape=list(layer.shape), nnz=layer.nnz, mode=mode)
    return layer, cases.single_reference(key, density, mode)


@pytest.fixture(scope="module")
def bandwidth():
    nbytes = (64 << 20) if cases.SMOKE else (1 << 30)
    return baselines.read_bandwidth(nbytes=nbytes, repeats=3 if cases.SMOKE else 5,
                                    cache_bytes=None)


@pytest.mark.needs_fspai
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fspai(benchmark, case, fspai, bandwidth):
    layer, ref = _setup(benchmark, case, "fspai.singular_values")
    weight = layer.weight if case[2] == "weighted" else None
    rounds = 3 if _huge(case) else 5
    vals = benchmark.pedantic(fspai_api.top2, args=(fspai, layer.mask, weight), rounds=rounds,
                              warmup_rounds=1, iterations=1)
    _, info = fspai_api.top2(fspai, layer.mask, weight, info=True)
    steps = fspai_api.info_get(info, "steps")
    err = baselines.rel_err_top2(vals, ref)
    bytes_per_step = (8 if weight is not None else 4) * layer.nnz
    floor = steps * bytes_per_step / bandwidth["dram"] if steps else float("nan")
    benchmark.extra_info.update(rel_err=err, steps=steps, bytes_per_step=bytes_per_step,
                                read_bw_GBps=bandwidth["dram"] / 1e9, floor_s=floor)
    if benchmark.stats is not None and benchmark.stats.stats.median:  # None under --benchmark-disable
        benchmark.extra_info["x_floor"] = benchmark.stats.stats.median / floor
    assert err <= 1e-6


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gram_arpack(benchmark, case):
    layer, ref = _setup(benchmark, case, "baseline-b-gram-arpack")
    solver = baselines.GramBaseline(cases.graphs([layer], case[2])[0])  # untimed setup
    rounds, warm = (1, 0) if _huge(case) else (3, 1)
    vals = benchmark.pedantic(solver, rounds=rounds, warmup_rounds=warm, iterations=1)
    err = baselines.rel_err_top2(vals, ref)
    benchmark.extra_info["rel_err"] = err
    assert err <= 1e-6


def _authors_params():
    return [pytest.param(c, id=i, marks=[pytest.mark.heavy] if _huge(c) else [])
            for c, i in zip(CASES, IDS)]


@pytest.mark.parametrize("case", _authors_params())
def test_authors_eigsh(benchmark, case):
    layer, ref = _setup(benchmark, case, "baseline-a-authors-eigsh")
    g = cases.graphs([layer], case[2])[0]
    vals = benchmark.pedantic(baselines.authors_top2, args=(g,), rounds=1, warmup_rounds=0,
                              iterations=1)
    err = baselines.rel_err_top2(vals, ref)
    benchmark.extra_info["rel_err"] = err
    assert err <= 1e-4
