"""Dense masks to CSR at ResNet-18 scale (21 layers, 11.2 M entries, density 1 %, float32
weights): what every metric call on torch/numpy masks pays before the core solves anything.

Group ``dense-to-csr-11M``:

* ``fspai_to_layers``: :func:`fspai._convert.to_layers` (validation + the core's bool-mask scan
  ``_core.dense_to_csr`` + the finiteness check of the kept weights);
* ``scipy_csr_matrix``: ``scipy.sparse.csr_matrix(mask)`` and ``weight[mask]`` per layer, what a
  user script would write (no validation).

``FSPAI_BENCH_SMOKE=1``: the width-8 network (~0.2 M entries).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp

SMOKE = os.environ.get("FSPAI_BENCH_SMOKE", "") not in ("", "0")
WIDTH = 8 if SMOKE else 64
DENSITY = 0.01


@pytest.fixture(scope="module")
def layers():
    torch = pytest.importorskip("torch")
    from fspai import models, pai
    from fspai.masks import prunable_parameters
    model = models.build("resnet18", 10, seed=0, width=WIDTH)
    masks = pai.prune(model, "random", DENSITY, seed=0)
    params = prunable_parameters(model)
    with torch.no_grad():
        return [(masks[n].numpy(), params[n].detach().numpy()) for n in masks]


@pytest.mark.needs_fspai
def test_fspai_to_layers(benchmark, layers, fspai):
    from fspai._convert import to_layers
    benchmark.group = "dense-to-csr-11M"
    out = benchmark(to_layers, [m for m, _ in layers], [w for _, w in layers])
    assert sum(ly.indices.size for ly in out) == sum(int(m.sum()) for m, _ in layers)


def test_scipy_csr_matrix(benchmark, layers):
    benchmark.group = "dense-to-csr-11M"

    def run():
        out = []
        for m, w in layers:
            m2 = m.reshape(m.shape[0], -1)
            out.append((sp.csr_matrix(m2), w.reshape(m2.shape)[m2]))
        return out
    out = benchmark(run)
    assert sum(c.nnz for c, _ in out) == sum(int(m.sum()) for m, _ in layers)
