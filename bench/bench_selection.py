"""Selection on ResNet-18 scale (11.2 M weights, density 1 %): what every ``prune`` call and every
sampler candidate pays to turn scores into a mask.

Group ``selection-11M``:

* ``topk_partition``: :func:`fspai.selection.topk_mask` (``numpy.partition`` + the lower-index
  tie rule) against ``torch_sort`` (a stable descending ``torch.sort``, the rule it replaces;
  bit-identical result) and ``torch_topk`` (``torch.topk``, not tie-stable);
* ``random_index_draw``: :func:`fspai.selection.random_masks` (k distinct flat indices, O(k)
  random numbers) against ``uniform_scores_topk`` (N float64 uniforms, then top-k: the previous
  draw).

``FSPAI_BENCH_SMOKE=1``: 100 k weights.
"""
from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

SMOKE = os.environ.get("FSPAI_BENCH_SMOKE", "") not in ("", "0")
N = 100_000 if SMOKE else 11_200_000
DENSITY = 0.01
K = int(round(DENSITY * N))


@pytest.fixture(scope="module")
def scores():
    g = torch.Generator().manual_seed(0)
    return torch.rand(N, generator=g, dtype=torch.float64)


@pytest.mark.needs_fspai
def test_topk_partition(benchmark, scores, fspai):
    from fspai.selection import topk_mask
    benchmark.group = "selection-11M"
    keep = benchmark(topk_mask, scores, K)
    assert int(keep.sum()) == K


def test_torch_sort(benchmark, scores):
    benchmark.group = "selection-11M"

    def run():
        keep = torch.zeros(N, dtype=torch.bool)
        keep[torch.sort(scores, descending=True, stable=True).indices[:K]] = True
        return keep
    assert int(benchmark(run).sum()) == K


def test_torch_topk(benchmark, scores):
    benchmark.group = "selection-11M"

    def run():
        keep = torch.zeros(N, dtype=torch.bool)
        keep[torch.topk(scores, K, sorted=False).indices] = True
        return keep
    assert int(benchmark(run).sum()) == K


@pytest.mark.needs_fspai
def test_random_index_draw(benchmark, fspai):
    from fspai.selection import random_masks
    benchmark.group = "selection-11M"
    m = benchmark(random_masks, {"w": (N,)}, DENSITY, seed=1)
    assert int(m["w"].sum()) == K


def test_uniform_scores_topk(benchmark):
    benchmark.group = "selection-11M"
    g = torch.Generator().manual_seed(1)

    def run():
        s = torch.rand(N, generator=g, dtype=torch.float64)
        keep = torch.zeros(N, dtype=torch.bool)
        keep[torch.topk(s, K, sorted=False).indices] = True
        return keep
    assert int(benchmark(run).sum()) == K
