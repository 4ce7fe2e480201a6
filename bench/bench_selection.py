"""Selection on ResNet-18 scale (11.2 M weights, density 1 %): what every ``prune`` call and every
sampler candidate pays to turn scores into a mask.

Group ``selection-11M``:

* ``topk_partition``: :func:`fspai.selection.topk_mask` (``numpy.partition`` + the lower-index
  tie rule) against ``torch_sort`` (a stable descending ``torch.sort``, the rule it replaces;
  bit-identical result) and ``torch_topk`` (``torch.topk``, not tie-stable);
* ``random_index_draw``: :func:`fspai.selection.random_masks` (k distinct flat indices, O(k)
  random numbers) against ``uniform_scores_topk`` (N float64 uniforms, then top-k: the previous
  draw).

Group ``selection-global-resnet18``: the call ``prune`` makes for a global budget, one float32
score tensor per ResNet-18 layer (21 tensors, 11.2 M scores, density 1 %):

* ``select_topk_global``: :func:`fspai.selection.select_topk` (scores above a sampled threshold
  partitioned, the layers taken in order without a concatenated copy);
* ``cat_partition_global``: the direct way (and the previous implementation): concatenate,
  ``numpy.partition`` the copy, compare, split.

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


# ResNet-18 (CIFAR, width 64) prunable shapes: conv1, 16 3×3 convs, 3 shortcuts, the classifier.
RESNET18 = ([(64, 3, 3, 3)] + [(64, 64, 3, 3)] * 4 + [(128, 64, 3, 3), (128, 128, 3, 3), (128, 64, 1, 1),
            (128, 128, 3, 3), (128, 128, 3, 3)] + [(256, 128, 3, 3), (256, 256, 3, 3), (256, 128, 1, 1),
            (256, 256, 3, 3), (256, 256, 3, 3)] + [(512, 256, 3, 3), (512, 512, 3, 3), (512, 256, 1, 1),
            (512, 512, 3, 3), (512, 512, 3, 3)] + [(10, 512)])


@pytest.fixture(scope="module")
def layer_scores():
    g = torch.Generator().manual_seed(2)
    shapes = RESNET18 if not SMOKE else [(16, 8, 3, 3), (32, 16, 3, 3), (10, 32)]
    return {f"l{i}": torch.randn(shape, generator=g).abs() for i, shape in enumerate(shapes)}


@pytest.mark.needs_fspai
def test_select_topk_global(benchmark, layer_scores, fspai):
    from fspai.selection import select_topk
    benchmark.group = "selection-global-resnet18"
    keep = benchmark(select_topk, layer_scores, DENSITY)
    total = sum(t.numel() for t in layer_scores.values())
    assert sum(int(m.sum()) for m in keep.values()) == int(round(DENSITY * total))


def test_cat_partition_global(benchmark, layer_scores):
    import numpy as np
    benchmark.group = "selection-global-resnet18"
    total = sum(t.numel() for t in layer_scores.values())
    k = int(round(DENSITY * total))

    def run():
        flat = torch.cat([t.flatten() for t in layer_scores.values()]).numpy()
        thr = np.partition(flat, flat.size - k)[flat.size - k]
        keep = torch.from_numpy(flat >= thr)
        out, i = {}, 0
        for name, t in layer_scores.items():
            out[name] = keep[i:i + t.numel()].view(t.shape)
            i += t.numel()
        return out
    keep = benchmark(run)
    assert sum(int(m.sum()) for m in keep.values()) >= k
