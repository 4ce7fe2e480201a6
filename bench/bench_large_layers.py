"""One LLM-sized layer (4096x11008 at 10 % and 50 %, pattern): fspai vs the honest baseline and
vs the bandwidth floor.

Group ``large-<layer>-<density>``: ``test_fspai`` (``fspai.singular_values`` on the CSR mask;
extra_info holds the Lanczos steps, the floor = steps × 4 B/nnz ÷ read bandwidth measured in this
session, and fspai / floor), ``test_gram_arpack`` (baseline (b)) and ``test_authors_eigsh``
(baseline (a), the papers' float32 adjacency; ``heavy``: only with FSPAI_BENCH_HEAVY=1).
"""
from __future__ import annotations

import pytest

from bench import baselines, cases, fspai_api

IDS = [cases.case_id(*c) for c in cases.BIG]


def _setup(benchmark, case, method):
    key, density = case
    benchmark.group = "large-" + cases.case_id(key, density)
    layer = cases.single(key, density)
    benchmark.extra_info.update(method=method, shape=list(layer.shape), nnz=layer.nnz)
    return layer, cases.single_reference(key, density)


@pytest.fixture(scope="module")
def bandwidth():
    nbytes = (64 << 20) if cases.SMOKE else (1 << 30)
    return baselines.read_bandwidth(nbytes=nbytes, repeats=3 if cases.SMOKE else 5, cache_bytes=None)


@pytest.mark.needs_fspai
@pytest.mark.parametrize("case", cases.BIG, ids=IDS)
def test_fspai(benchmark, case, fspai, bandwidth):
    layer, ref = _setup(benchmark, case, "fspai.singular_values")
    vals = benchmark.pedantic(fspai_api.top2, args=(fspai, layer.mask), rounds=5, warmup_rounds=1,
                              iterations=1)
    _, info = fspai_api.top2(fspai, layer.mask, info=True)
    steps = fspai_api.info_get(info, "steps")
    err = baselines.rel_err_top2(vals, ref)
    bytes_per_step = 4 * layer.nnz
    floor = steps * bytes_per_step / bandwidth["dram"] if steps else float("nan")
    benchmark.extra_info.update(rel_err=err, steps=steps, bytes_per_step=bytes_per_step,
                                read_bw_GBps=bandwidth["dram"] / 1e9, floor_s=floor)
    if benchmark.stats is not None and benchmark.stats.stats.median:  # None under --benchmark-disable
        benchmark.extra_info["x_floor"] = benchmark.stats.stats.median / floor
    assert err <= 1e-7


@pytest.mark.parametrize("case", cases.BIG, ids=IDS)
def test_gram_arpack(benchmark, case):
    layer, ref = _setup(benchmark, case, "baseline-b-gram-arpack")
    solver = baselines.GramBaseline(layer.mask)  # untimed setup
    vals = benchmark.pedantic(solver, rounds=2, warmup_rounds=1, iterations=1)
    err = baselines.rel_err_top2(vals, ref)
    benchmark.extra_info["rel_err"] = err
    assert err <= 1e-6


@pytest.mark.heavy
@pytest.mark.parametrize("case", cases.BIG, ids=IDS)
def test_authors_eigsh(benchmark, case):
    layer, ref = _setup(benchmark, case, "baseline-a-authors-eigsh")
    vals = benchmark.pedantic(baselines.authors_top2, args=(layer.mask,), rounds=1, warmup_rounds=0,
                              iterations=1)
    err = baselines.rel_err_top2(vals, ref)
    benchmark.extra_info["rel_err"] = err
    assert err <= 1e-4
