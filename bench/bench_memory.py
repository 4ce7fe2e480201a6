"""Peak extra memory of ``fspai.coordinate`` (CSR and dense inputs) and of the dense-input
conversion, each measured in a fresh process (``bench/memory.py``: peak RSS during the call minus
RSS before it, C++ buffers included). The ratio to the input's bytes is recorded in
``extra_info``; the targets are judged in ``bench/RESULTS.md`` (``python -m bench.report``)."""
from __future__ import annotations

import pytest

from bench import cases, memory

IDS = [f"{c}-{cases.case_id(k, d)}" for c, k, d in cases.MEMORY]


@pytest.mark.needs_fspai
@pytest.mark.parametrize("case", cases.MEMORY, ids=IDS)
def test_peak_memory(benchmark, case, fspai):
    benchmark.group = "memory"
    res = benchmark.pedantic(memory.measure, args=case, rounds=1, warmup_rounds=0, iterations=1)
    benchmark.extra_info.update(res)
    assert res["input_bytes"] > 0 and res["peak"] >= res["rss_before"] and res["peak_reset"]
