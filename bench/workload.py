"""Benchmark workloads: CNN layer shapes and seeded random pruning masks.

A layer's mask matrix is ``out x (in * kh * kw)`` (``out x in`` for a Linear layer), the same
flattening fspai uses (docs/metrics.md §1). Masks are uniform Bernoulli(density) and are generated directly
as ``scipy.sparse.csr_array`` -- no dense array is ever materialised, so the 8192x28672 layer costs
only its CSR arrays. Every mask is seeded from ``crc32("{rows}x{cols}@{density}#{index}")`` so every
script (pytest-benchmark suites, ``ratios.py``, the unit tests) sees exactly the same masks;
``index`` is the layer's position in its network (0 for a single layer), so two layers of the same
shape in one network get different masks.

Weighted mode: ``W ~ N(0, 2 / fan_in)`` on the nonzeros (float32, same sparsity pattern as the
mask), ``fan_in = in * kh * kw`` (the number of mask columns). The weighted graph is ``|W ⊙ M|``.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, List, Optional, Tuple

import numpy as np
import scipy.sparse as sp

__all__ = [
    "LayerShape", "Layer", "resnet34_cifar_shapes", "vgg16_cifar_shapes", "network_shapes",
    "LLM_SHAPES", "mask_seed", "random_mask", "random_weight", "make_layer", "make_network",
    "make_single", "network_stats", "SMOKE_NETWORK_SHAPES", "SMOKE_BIG_SHAPE",
]


@dataclass(frozen=True)
class LayerShape:
    """One prunable layer: ``name`` and its mask-matrix shape (rows = out, cols = in*kh*kw)."""

    name: str
    rows: int
    cols: int

    @property
    def shape(self) -> Tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def entries(self) -> int:
        return self.rows * self.cols


def _conv(name: str, cin: int, cout: int, k: int) -> LayerShape:
    return LayerShape(name, cout, cin * k * k)


def resnet34_cifar_shapes(num_classes: int = 10) -> List[LayerShape]:
    """CIFAR ResNet-34 (kuangliu/pytorch-cifar): conv1 3x3 (64x27), BasicBlocks [3, 4, 6, 3],
    1x1 conv shortcuts where stride or width changes, fc ``num_classes x 512``. 37 layers."""
    layers = [_conv("conv1", 3, 64, 3)]
    in_planes = 64
    for stage, (planes, blocks, stride) in enumerate(
            [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=1):
        for b in range(blocks):
            s = stride if b == 0 else 1
            prefix = f"layer{stage}.{b}"
            layers.append(_conv(f"{prefix}.conv1", in_planes, planes, 3))
            layers.append(_conv(f"{prefix}.conv2", planes, planes, 3))
            if s != 1 or in_planes != planes:
                layers.append(_conv(f"{prefix}.shortcut", in_planes, planes, 1))
            in_planes = planes
    layers.append(LayerShape("linear", num_classes, 512))
    return layers


_VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"]


def vgg16_cifar_shapes(num_classes: int = 10) -> List[LayerShape]:
    """CIFAR VGG-16 (kuangliu-style): 13 3x3 convs + one fc ``num_classes x 512``. 14 layers."""
    layers: List[LayerShape] = []
    cin = 3
    i = 0
    for v in _VGG16_CFG:
        if v == "M":
            continue
        layers.append(_conv(f"features.conv{i}", cin, int(v), 3))
        cin = int(v)
        i += 1
    layers.append(LayerShape("classifier", num_classes, 512))
    return layers


#: The single LLM-sized layers benchmarked on their own.
LLM_SHAPES = {"4096x11008": LayerShape("mlp.4096x11008", 4096, 11008),
              "8192x28672": LayerShape("mlp.8192x28672", 8192, 28672)}

#: Smoke mode (CI): a handful of tiny layers that still cover the corner cases (a 64x27 conv1,
#: a short-wide fc, a 1x1 shortcut) and one "big" stand-in that goes through the same code paths.
SMOKE_NETWORK_SHAPES = [LayerShape("conv1", 64, 27), LayerShape("shortcut", 128, 64),
                        LayerShape("conv", 64, 576), LayerShape("linear", 10, 512)]
SMOKE_BIG_SHAPE = LayerShape("big.smoke", 256, 704)


def network_shapes(network: str) -> List[LayerShape]:
    if network == "resnet34":
        return resnet34_cifar_shapes()
    if network == "vgg16":
        return vgg16_cifar_shapes()
    if network == "smoke":
        return list(SMOKE_NETWORK_SHAPES)
    raise ValueError(f"unknown network {network!r}")


# ----------------------------------------------------------------------------- masks

def mask_seed(rows: int, cols: int, density: float, index: int = 0) -> int:
    """crc32 seed of (shape, density, index): the same mask everywhere."""
    return zlib.crc32(f"{rows}x{cols}@{density!r}#{index}".encode())


def _bernoulli_csr(rows: int, cols: int, density: float, rng: np.random.Generator) -> sp.csr_array:
    """Exact iid Bernoulli(density) pattern as CSR, sampled by geometric skips over the flat
    index (O(nnz) memory and time; never touches the rows*cols dense grid)."""
    total = rows * cols
    if not 0.0 <= density <= 1.0:
        raise ValueError("density must be in [0, 1]")
    if density == 0.0 or total == 0:
        flat = np.zeros(0, dtype=np.int64)
    elif density == 1.0:
        flat = np.arange(total, dtype=np.int64)
    else:
        chunks = []
        pos = -1  # flat index of the last success
        expect = total * density
        while True:
            n_draw = int(expect + 6.0 * np.sqrt(expect * (1.0 - density)) + 64)
            gaps = rng.geometric(density, size=n_draw).astype(np.int64)
            idx = pos + np.cumsum(gaps)
            if idx[-1] >= total:
                chunks.append(idx[idx < total])
                break
            chunks.append(idx)
            pos = int(idx[-1])
            expect = (total - pos) * density
        flat = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    r = flat // cols
    indptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=rows), out=indptr[1:])
    np.multiply(r, cols, out=r)            # in place: fewer fresh pages on the big layers
    np.subtract(flat, r, out=flat)
    del r
    c = flat.astype(np.int32)
    if indptr[-1] <= np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    data = np.ones(flat.size, dtype=bool)
    m = sp.csr_array((data, c, indptr), shape=(rows, cols))
    m.has_sorted_indices = True  # flat indices are increasing
    return m


@lru_cache(maxsize=256)
def random_mask(rows: int, cols: int, density: float, index: int = 0) -> sp.csr_array:
    """Bernoulli(density) 0/1 mask, ``csr_array`` of dtype bool, sorted column indices, int32 indices.

    Cached: treat the result as read-only."""
    rng = np.random.default_rng(mask_seed(rows, cols, density, index))
    return _bernoulli_csr(rows, cols, density, rng)


@lru_cache(maxsize=256)
def random_weight(rows: int, cols: int, density: float, index: int = 0) -> sp.csr_array:
    """Masked weight ``W ⊙ M`` with ``W ~ N(0, 2/fan_in)`` (float32), fan_in = cols; same pattern as
    :func:`random_mask` (same structure arrays). Values can be negative: the graph uses |W ⊙ M|."""
    m = random_mask(rows, cols, density, index)
    rng = np.random.default_rng([mask_seed(rows, cols, density, index), 1])
    vals = rng.standard_normal(m.nnz, dtype=np.float32) * np.float32(np.sqrt(2.0 / cols))
    # An exact 0.0 from N(0, s) has probability 0 in float32 practice, but keep the pattern exact.
    vals[vals == 0] = np.float32(np.finfo(np.float32).tiny)
    w = sp.csr_array((vals, m.indices, m.indptr), shape=m.shape)
    w.has_sorted_indices = True
    return w


@dataclass(frozen=True)
class Layer:
    """A generated workload layer."""

    name: str
    shape: Tuple[int, int]
    density: float
    index: int
    mask: sp.csr_array       # bool pattern
    weight: sp.csr_array     # float32 W ⊙ M (same pattern)

    @property
    def nnz(self) -> int:
        return int(self.mask.nnz)

    def matrix(self, weighted: bool) -> sp.csr_array:
        """The graph's biadjacency: the 0/1 pattern or |W ⊙ M| (float64, for baselines/references)."""
        if weighted:
            return sp.csr_array((np.abs(self.weight.data).astype(np.float64), self.weight.indices,
                                 self.weight.indptr), shape=self.shape)
        return sp.csr_array((np.ones(self.mask.nnz), self.mask.indices, self.mask.indptr),
                            shape=self.shape)


def make_layer(shape: LayerShape, density: float, index: int = 0) -> Layer:
    return Layer(shape.name, shape.shape, float(density), index,
                 random_mask(shape.rows, shape.cols, float(density), index),
                 random_weight(shape.rows, shape.cols, float(density), index))


def make_network(network: str, density: float) -> List[Layer]:
    """Every layer of ``network`` ("resnet34", "vgg16" or "smoke"), each with its own mask."""
    return [make_layer(s, density, i) for i, s in enumerate(network_shapes(network))]


def make_single(key: str, density: float) -> Layer:
    """One LLM-sized layer ("4096x11008", "8192x28672") or the smoke stand-in ("smoke")."""
    shape = SMOKE_BIG_SHAPE if key == "smoke" else LLM_SHAPES[key]
    return make_layer(shape, density, 0)


def network_stats(shapes: Iterable[LayerShape]) -> dict:
    shapes = list(shapes)
    return {"layers": len(shapes), "entries": sum(s.entries for s in shapes),
            "unique_shapes": len({s.shape for s in shapes})}


def total_nnz(layers: Iterable[Layer]) -> int:
    return sum(l.nnz for l in layers)


def describe(layers: List[Layer], label: Optional[str] = None) -> str:
    s = network_stats(LayerShape(l.name, *l.shape) for l in layers)
    return (f"{label or ''} {s['layers']} layers, {s['entries'] / 1e6:.1f} M entries, "
            f"{total_nnz(layers) / 1e6:.3f} M nnz").strip()
