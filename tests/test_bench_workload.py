"""Fast checks that the benchmark workloads and baselines (bench/) are what they claim to be.

The timings in bench/RESULTS.md are only meaningful if the layer lists are the documented ones, the
masks are the seeded Bernoulli masks, and the baselines compute the right (σ1, σ2).
"""
from __future__ import annotations

import math
import time
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import baselines, workload  # noqa: E402
from bench.timing import measure, repeats_for  # noqa: E402


# ----------------------------------------------------------------------------- layer lists

def test_resnet34_layer_list():
    shapes = workload.resnet34_cifar_shapes()
    st = workload.network_stats(shapes)
    assert st["layers"] == 37
    assert round(st["entries"] / 1e6, 1) == 21.3
    assert st["entries"] == 21_265_088
    assert st["unique_shapes"] == 12
    assert shapes[0].shape == (64, 27)  # conv1: 64 x 3*3*3
    assert shapes[-1].shape == (10, 512)  # fc
    short = [s.shape for s in shapes if s.name.endswith("shortcut")]
    assert short == [(128, 64), (256, 128), (512, 256)]  # 1x1 shortcuts
    assert sum(1 for s in shapes if s.shape == (512, 4608)) == 5


def test_vgg16_layer_list():
    shapes = workload.vgg16_cifar_shapes()
    st = workload.network_stats(shapes)
    assert st["layers"] == 14
    assert round(st["entries"] / 1e6, 1) == 14.7
    assert st["unique_shapes"] == 9
    assert [s.shape for s in shapes[:2]] == [(64, 27), (64, 576)]
    assert shapes[-1].shape == (10, 512)
    assert sum(1 for s in shapes if s.shape == (512, 4608)) == 5


def test_llm_shapes():
    assert workload.LLM_SHAPES["4096x11008"].shape == (4096, 11008)
    assert workload.LLM_SHAPES["8192x28672"].shape == (8192, 28672)


# ----------------------------------------------------------------------------- masks

def _check_csr(m, shape):
    assert isinstance(m, sp.csr_array)
    assert m.shape == shape
    assert m.dtype == bool
    assert m.indices.dtype == np.int32
    assert np.all(m.indices < shape[1]) and np.all(m.indices >= 0)
    assert m.indptr[0] == 0 and m.indptr[-1] == m.nnz and np.all(np.diff(m.indptr) >= 0)
    # strictly increasing column indices inside every row (sorted, no duplicates)
    d = np.diff(m.indices.astype(np.int64))
    row_start = np.zeros(m.nnz, dtype=bool)
    row_start[m.indptr[1:-1][m.indptr[1:-1] < m.nnz]] = True
    assert np.all(d[~row_start[1:]] > 0)


def test_mask_is_seeded_and_reproducible():
    a = workload._bernoulli_csr(300, 500, 0.1, np.random.default_rng(
        workload.mask_seed(300, 500, 0.1, 2)))
    b = workload.random_mask(300, 500, 0.1, 2)
    assert (a != b).nnz == 0
    c = workload.random_mask(300, 500, 0.1, 3)
    assert (b != c).nnz > 0  # another layer index -> another mask
    assert workload.mask_seed(300, 500, 0.1, 2) == workload.mask_seed(300, 500, 0.1, 2)
    assert workload.mask_seed(300, 500, 0.1, 2) != workload.mask_seed(300, 500, 0.01, 2)


@pytest.mark.parametrize("shape,density", [((64, 27), 0.01), ((512, 4608), 0.1),
                                           ((256, 2304), 0.01), ((10, 512), 0.1)])
def test_mask_is_bernoulli(shape, density):
    m = workload.random_mask(*shape, density, 0)
    _check_csr(m, shape)
    total = shape[0] * shape[1]
    mean, sd = total * density, math.sqrt(total * density * (1 - density))
    assert abs(m.nnz - mean) <= 6 * sd + 1
    if total * density > 1e4:  # row and column degrees look Binomial(n, p)
        rd = np.diff(m.indptr)
        cd = np.bincount(m.indices, minlength=shape[1])
        assert abs(rd.var() / (shape[1] * density * (1 - density)) - 1) < 0.25
        assert abs(cd.var() / (shape[0] * density * (1 - density)) - 1) < 0.25
        # positions uniform over the grid: compare to a dense Bernoulli draw's moments
        col_mean = np.bincount(m.indices, minlength=shape[1]).mean()
        assert abs(col_mean - shape[0] * density) < 0.05 * shape[0] * density


def test_big_layer_is_generated_sparse():
    m = workload.random_mask(4096, 11008, 0.1, 0)
    _check_csr(m, (4096, 11008))
    total = 4096 * 11008
    assert abs(m.nnz - 0.1 * total) <= 6 * math.sqrt(total * 0.09)
    assert m.indices.nbytes == 4 * m.nnz  # int32 indices, no value array beyond 1 B/nnz bool


def test_weights():
    m = workload.random_mask(512, 4608, 0.1, 4)
    w = workload.random_weight(512, 4608, 0.1, 4)
    assert w.dtype == np.float32
    assert np.array_equal(w.indices, m.indices) and np.array_equal(w.indptr, m.indptr)
    assert np.all(w.data != 0)
    assert abs(w.data.std() / math.sqrt(2.0 / 4608) - 1) < 0.02
    assert abs(w.data.mean()) < 5 * math.sqrt(2.0 / 4608 / w.nnz)


def test_make_network_distinct_masks():
    layers = workload.make_network("resnet34", 0.01)
    assert len(layers) == 37
    same_shape = [l for l in layers if l.shape == (512, 4608)]
    assert (same_shape[0].mask != same_shape[1].mask).nnz > 0
    assert layers[5].matrix(True).dtype == np.float64
    assert np.all(layers[5].matrix(True).data > 0)


# ----------------------------------------------------------------------------- baselines

def _svd_top2(B):
    return np.linalg.svd(baselines.as_float_csr(B).toarray(), compute_uv=False)[:2]


SMALL = [((64, 27), 0.1, 0), ((64, 27), 0.01, 1), ((128, 64), 0.1, 2), ((10, 512), 0.01, 3),
         ((256, 1152), 0.01, 4), ((64, 576), 0.1, 5), ((64, 64), 0.01, 6)]


@pytest.mark.parametrize("shape,density,index", SMALL)
@pytest.mark.parametrize("weighted", [False, True])
def test_baselines_match_dense_svd(shape, density, index, weighted):
    layer = workload.make_layer(workload.LayerShape("t", *shape), density, index)
    B = layer.weight if weighted else layer.mask
    truth = _svd_top2(B)
    assert baselines.rel_err_top2(baselines.dense_top2(B), truth) <= 1e-12
    assert baselines.rel_err_top2(baselines.reference_top2(B)[0], truth) <= 1e-12
    assert baselines.rel_err_top2(baselines.gram_top2(B), truth) <= 1e-6
    # (a) is float32: it reaches ~1e-6, not better
    assert baselines.rel_err_top2(baselines.authors_top2(B), truth) <= 1e-5


def test_repeated_and_rank1_cases():
    # disconnected: two identical blocks -> sigma1 == sigma2
    blk = np.ones((3, 4), dtype=bool)
    D = sp.csr_array(sp.block_diag([blk, blk, np.zeros((2, 3), dtype=bool)]).astype(bool))
    truth = _svd_top2(D)
    assert truth[0] == pytest.approx(truth[1])
    for f in (baselines.dense_top2, baselines.gram_top2, baselines.authors_top2):
        assert baselines.rel_err_top2(f(D), truth) <= 1e-5, f
    # rank 1: sigma2 = 0, error measured relative to sigma1
    R = sp.csr_array(np.ones((8, 16), dtype=bool))
    assert baselines.rel_err_top2(baselines.gram_top2(R), _svd_top2(R)) <= 1e-6
    assert baselines.rel_err_top2(baselines.authors_top2(R), _svd_top2(R)) <= 1e-5


def test_gram_uses_smaller_side_and_counts():
    layer = workload.make_layer(workload.LayerShape("t", 512, 4608), 0.01, 0)
    g = baselines.GramBaseline(layer.mask)
    assert g.size == 512
    g()
    assert g.matvecs > 0
    g2 = baselines.GramBaseline(sp.csr_array(layer.mask.T))
    assert g2.size == 512
    assert baselines.rel_err_top2(g2(), g()) <= 1e-9


def test_bipartite_adjacency_build():
    B = sp.csr_array(np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]], dtype=bool))
    A = baselines._bipartite_f32(B)
    assert A.dtype == np.float32
    assert A.shape == (2 + 3, 2 + 3)  # isolated row 1 and column 3 removed
    Ad = A.toarray()
    assert np.array_equal(Ad, Ad.T) and Ad.sum() == 2 * B.nnz
    ev = np.sort(np.abs(np.linalg.eigvalsh(Ad)))[::-1]
    assert ev[0] == pytest.approx(_svd_top2(B)[0], rel=1e-6)


def test_rel_err():
    assert baselines.rel_err_top2([2.0, 1.0], [2.0, 1.0]) == 0.0
    assert baselines.rel_err_top2([2.0, 1.1], [2.0, 1.0]) == pytest.approx(0.1)
    # sigma2 ~ 0: relative to sigma1
    assert baselines.rel_err_top2([2.0, 1e-3], [2.0, 0.0]) == pytest.approx(5e-4)


# ----------------------------------------------------------------------------- coordinate

def test_coordinate_reference_on_complete_bipartite():
    # K_{4,6}: every column has degree 4 -> one regular subgraph = the whole layer
    M = sp.csr_array(np.ones((4, 6), dtype=bool))
    W = sp.csr_array(np.full((4, 6), -2.0, dtype=np.float32))
    c = baselines.coordinate_loop(M, W, baselines.dense_top2)
    ub = math.sqrt(4 - 1) + math.sqrt(6 - 1)  # d_in = 4, d_out = 6
    s1 = math.sqrt(24.0)
    cheeger = 6 / (6 + 4 - 1)
    assert c.delta_r == pytest.approx(ub, abs=1e-7)
    assert c.weighted_gap == pytest.approx(2 * s1, rel=1e-12)
    assert c.imdb == pytest.approx(cheeger * ub, abs=1e-7)
    assert c.weighted_imdb == pytest.approx(cheeger * 2 * s1, rel=1e-12)
    assert (c.subgraphs, c.valid_subgraphs, c.eigsolves) == (1, 1, 4)


def test_coordinate_invalid_layers_are_zero():
    M = sp.csr_array(np.eye(5, dtype=bool))  # degree 1 everywhere: nothing valid
    c = baselines.coordinate_loop(M, M.astype(np.float32), baselines.dense_top2)
    assert np.all(c.as_array() == 0.0) and c.eigsolves == 0


def test_authors_loop_matches_float64_reference():
    layers = [workload.make_layer(workload.LayerShape("t", 64, 576), 0.1, i) for i in range(2)]
    masks = [l.mask for l in layers]
    weights = [l.weight for l in layers]
    a = baselines.authors_coordinates(masks, weights)
    r = baselines.reference_coordinates(masks, weights)
    for x, y in zip(a, r):
        assert x.eigsolves == y.eigsolves > 2
        assert np.max(np.abs(x.as_array() - y.as_array())) <= 1e-4


# ----------------------------------------------------------------------------- probe/timing

def test_read_bandwidth_probe():
    bw = baselines.read_bandwidth(nbytes=16 << 20, repeats=2, cache_bytes=1 << 20)
    for k in ("dram_1t", "dram_2t", "l3_1t", "l3_2t", "dram"):
        assert bw[k] > 1e8  # > 0.1 GB/s: something was measured
    assert bw["dram"] == max(bw["dram_1t"], bw["dram_2t"])


def test_timing_protocol():
    assert repeats_for(20.0) == 0 and repeats_for(2.0) == 3 and repeats_for(0.5) == 5
    assert repeats_for(0.01) == 7
    t, res = measure(lambda: 42)
    assert res == 42 and t.n == 15 and t.min <= t.median <= t.max


def test_coordinate_loop_matches_fspai_and_released_zero_weight_rule():
    import fspai

    rng = np.random.default_rng(11)
    for shape, density in (((40, 30), 0.2), ((64, 96), 0.1)):
        m = sp.csr_array(rng.random(shape) < density)
        w = sp.csr_array((rng.standard_normal(m.nnz).astype(np.float32), m.indices, m.indptr), shape=shape)
        w.data[::7] = 0.0  # exact zeros inside the mask: the released weighted-validity rule applies
        for conv in ("neurips23", "neurips23-pattern"):
            ref = baselines.coordinate_loop(m, w, baselines.dense_top2, conv)
            got = fspai.coordinate(m, w, convention=conv)
            np.testing.assert_allclose(got.as_array(), ref.as_array(), atol=1e-7)


def test_gram_and_subgraph_loops():
    layers = [workload.make_layer(workload.LayerShape("t", 64, 576), 0.1, i) for i in range(2)]
    masks, weights = [l.mask for l in layers], [l.weight for l in layers]
    g, r = baselines.gram_coordinates(masks, weights), baselines.reference_coordinates(masks, weights)
    for x, y in zip(g, r):
        assert x.eigsolves == y.eigsolves and np.max(np.abs(x.as_array() - y.as_array())) <= 1e-5
    loop = baselines.subgraph_loop(masks)
    assert [len(x) for x in loop] == [1 + len(baselines.degree_groups(sp.csr_array(m), 2)) for m in masks]
    assert baselines.rel_err_top2(loop[0][0], baselines.dense_top2(masks[0])) <= 1e-6


def test_measure_group_interleaves_and_times_each_side():
    from bench import timing
    calls = []
    fns = [lambda: calls.append("a") or "A", lambda: calls.append("b") or "B"]
    (ta, ra), (tb, rb) = timing.measure_group(fns)
    assert (ra, rb) == ("A", "B")  # results of the warm-up calls
    assert calls[:2] == ["a", "b"] and calls[2:] == ["a", "b"] * ta.n  # warm-ups, then rounds a, b, a, b ...
    assert ta.n == tb.n >= 3 and len(ta.samples) == ta.n


def test_measure_group_long_call_keeps_one_sample_others_repeat(monkeypatch):
    # repeats_for is asked for the slowest warm-up (0: a call over the single-sample limit), then
    # per function: the slow one keeps its cold sample, the fast one repeats on its own.
    from bench import timing
    calls = []
    fns = [lambda: calls.append("slow"), lambda: calls.append("fast")]
    answers = iter([0, 0, 5])
    monkeypatch.setattr(timing, "repeats_for", lambda t0, quick=False: next(answers))
    (ts, _), (tf, _) = timing.measure_group(fns)
    assert ts.n == 1 and tf.n == 5
    assert calls == ["slow", "fast"] + ["fast"] * 5


def test_paired_ratios_follow_the_rounds():
    # Round i's ratio pairs the two calls of round i; the report's per-round spread reads them.
    from bench import timing
    slow = [0.004, 0.001, 0.004]  # warm-up, round 0, round 1 (later rounds 4 ms too)
    fns = [lambda: time.sleep(0.002), lambda: time.sleep(slow.pop(0) if slow else 0.004)]
    (ta, _), (tb, _) = timing.measure_group(fns)
    assert ta.interleaved and tb.interleaved
    r = timing.paired_ratios(ta, tb)
    assert len(r) == ta.n and r == [a / b for a, b in zip(ta.samples, tb.samples)]
    assert r[0] > 1.5 * r[1]  # round 0's other call slept 1 ms, round 1's 4 ms (+ overheads)
    lone = timing.measure(lambda: None)[0]
    assert not lone.interleaved and timing.paired_ratios(lone, tb) == []


def test_paired_ratios_empty_when_a_long_call_kept_its_cold_sample(monkeypatch):
    from bench import timing
    answers = iter([0, 0, 5])
    monkeypatch.setattr(timing, "repeats_for", lambda t0, quick=False: next(answers))
    (ts, _), (tf, _) = timing.measure_group([lambda: None, lambda: None])
    assert timing.paired_ratios(ts, tf) == [] and timing.paired_ratios(tf, ts) == []


def test_quartiles_interpolate():
    from bench import timing
    assert timing.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 4.0)
    assert timing.quartiles([3.0, 1.0]) == (1.5, 2.5)
    assert timing.quartiles([7.0]) == (7.0, 7.0)
    lo, hi = timing.quartiles([])
    assert math.isnan(lo) and math.isnan(hi)


def test_measure_group_short_calls_get_more_rounds(monkeypatch):
    # Rounds: the slowest call's repeats (here 5), raised to about GROUP_MIN_SECONDS of rounds,
    # capped at GROUP_MAX_ROUNDS.
    from bench import timing
    monkeypatch.setattr(timing, "repeats_for", lambda t0, quick=False: 5)
    monkeypatch.setattr(timing, "GROUP_MIN_SECONDS", 0.1)
    monkeypatch.setattr(timing, "GROUP_MAX_ROUNDS", 100)
    (ta, _), (tb, _) = timing.measure_group([lambda: time.sleep(0.004), lambda: time.sleep(0.001)])
    assert ta.n == tb.n and 5 < ta.n <= 20  # 0.1 s / (≥ 5 ms per round), unless a round took > 16 ms
    monkeypatch.setattr(timing, "GROUP_MAX_ROUNDS", 15)
    monkeypatch.setattr(timing, "GROUP_MIN_SECONDS", 10.0)
    (ta, _), _ = timing.measure_group([lambda: None, lambda: None])
    assert ta.n == timing.GROUP_MAX_ROUNDS
