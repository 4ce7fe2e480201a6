"""Every metric vs the dense float64 reference, both presets, and vs the released code paths."""
import dataclasses
import math

import numpy as np
import pytest

import fspai
from fspai import _reference as R

CONVENTIONS = ["neurips23", "neurips23-pattern", "iclr23"]
TOL = dict(rel=1e-6, abs=1e-7)


def random_layer(seed):
    rng = np.random.default_rng(seed)
    shapes = [(64, 27), (64, 576), (128, 64, 3, 3), (10, 512), (256, 128), (32, 16, 5), (200, 300)]
    shape = shapes[seed % len(shapes)]
    density = float(rng.choice([0.01, 0.03, 0.05, 0.1, 0.2, 0.5]))
    mask = rng.random(shape) < density
    weight = (rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))).astype(np.float32)
    return mask, weight


def same(a, b, **tol):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == pytest.approx(b, **(tol or TOL))


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("seed", range(14))
def test_ramanujan_gap_matches_dense(seed, convention):
    mask, _ = random_layer(seed)
    g = fspai.ramanujan_gap(mask, convention=convention)
    ref = R.dense_ramanujan_gap(mask, convention)
    assert g.valid == ref["valid"]
    if g.edges:
        for key in ("mu0", "mu_hat", "delta_r", "delta_r_norm", "delta_s", "delta_s_norm"):
            assert same(getattr(g, key), ref[key]), key
        assert (g.n_in, g.n_out, g.edges) == (ref["n_in"], ref["n_out"], ref["edges"])
    if not g.valid:
        assert g.reason and math.isnan(g.delta_r)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("seed", range(14))
def test_weighted_gap_imdb_narc_match_dense(seed, convention):
    mask, weight = random_layer(seed)
    assert same(fspai.weighted_gap(mask, weight, convention=convention), R.dense_weighted_gap(mask, weight, convention))
    im = fspai.imdb(mask, weight, convention=convention)
    ref = R.dense_imdb(mask, weight, convention)
    assert im.count == ref["count"]
    for key in ("imdb", "imdb_norm", "weighted_imdb"):
        assert same(getattr(im, key), ref[key]), key
    assert same(fspai.narc(mask), R.dense_narc(mask))
    assert same(fspai.narc(mask, edge_count="undirected"), R.dense_narc(mask, "undirected"))


@pytest.mark.parametrize("seed", range(10))
def test_regular_decomposition_matches_dense(seed):
    mask, weight = random_layer(seed)
    for convention in CONVENTIONS:
        subs = fspai.regular_decomposition(mask, weight, convention=convention)
        ref = R.dense_subgraphs(mask, weight, convention)
        assert [s.degree for s in subs] == [r["degree"] for r in ref]
        for s, r in zip(subs, ref):
            assert np.array_equal(s.columns, r["columns"])
            assert (s.n_in, s.n_out, s.valid) == (r["n_in"], r["n_out"], r["valid"])
            for key in ("mu0", "mu_hat", "delta_r", "factor", "weighted_mu0", "weighted_mu_hat"):
                assert same(getattr(s, key), r[key]), key


@pytest.mark.parametrize("seed", range(10))
def test_coordinate_matches_dense_and_distance(seed):
    mask, weight = random_layer(seed)
    c = fspai.coordinate(mask, weight)
    np.testing.assert_allclose(c.as_array(), R.dense_coordinate(mask, weight), rtol=1e-6, atol=1e-7)
    assert fspai.distance(c) == pytest.approx(np.linalg.norm(c.as_array()))
    assert c.norm() == pytest.approx(fspai.distance(c))
    assert fspai.distance(c, c) == 0.0
    w = [1, 0, 0, 0]
    assert fspai.distance(c, axis_weights=w) == pytest.approx(abs(c.delta_r))
    assert fspai.distance([c, c], [c, fspai.Coordinate(0, 0, 0, 0)]) == pytest.approx(c.norm() / 2)


# ---------------------------------------------------------------- the authors' released code
@pytest.mark.parametrize("seed", range(6))
def test_neurips23_preset_reproduces_released_code(seed):
    rng = np.random.default_rng(50 + seed)
    shape = [(64, 64, 3, 3), (128, 64, 3, 3), (64, 288), (10, 512), (256, 128, 1, 1), (96, 400)][seed]
    mask = rng.random(shape) < [0.05, 0.1, 0.2, 0.3, 0.05, 0.1][seed]
    weight = rng.standard_normal(shape) * 0.05
    released = R.released_neurips23_layer(mask, weight)
    c = fspai.coordinate(mask, weight)
    # The released code works in float32 (eigsh error up to ~6e-6 relative to σ1): the gaps are
    # differences, so compare them at that absolute scale.
    scale = {"delta_r": fspai.singular_values(mask)[0], "imdb": fspai.singular_values(mask)[0],
             "weighted_gap": fspai.singular_values(mask, weight)[0],
             "weighted_imdb": fspai.singular_values(mask, weight)[0]}
    for axis in fspai.Coordinate.AXES:
        assert getattr(c, axis) == pytest.approx(released[axis], abs=2e-5 * scale[axis]), axis


@pytest.mark.parametrize("seed", range(6))
def test_iclr23_preset_reproduces_released_code(seed):
    rng = np.random.default_rng(80 + seed)
    shape = [(64, 64, 3, 3), (128, 64, 3, 3), (64, 288), (32, 512), (256, 128, 1, 1), (96, 400)][seed]
    mask = rng.random(shape) < [0.05, 0.1, 0.2, 0.3, 0.1, 0.1][seed]
    rel = R.released_iclr23_layer(mask)
    g = fspai.ramanujan_gap(mask, convention="iclr23")
    assert g.valid == rel["valid"]
    if rel["valid"]:
        assert g.mu0 == pytest.approx(rel["t1m"], rel=1e-5)
        assert g.mu_hat == pytest.approx(rel["t2m"], rel=1e-5)
        assert g.delta_r == pytest.approx(rel["rm"], abs=2e-5 * g.mu0)
        assert g.delta_s == pytest.approx(rel["sm"], abs=2e-5 * g.mu0)
        # NaRC subtracts two nearly equal terms: the released float32 μ̂ (~1e-6 relative error)
        # moves it by up to ~1e-5 of the first term's size.
        scale = (g.mu_hat ** 2 / 4 + 1) * np.sqrt(g.n_in * g.n_out) / (g.n_in * g.n_out)
        assert fspai.narc(mask) == pytest.approx(rel["narc"], abs=1e-5 * scale)
    ri = R.released_iclr23_imdb(mask)
    im = fspai.imdb(mask, convention="iclr23")
    assert im.count == ri["count"]
    if ri["irm"] is None:
        assert math.isnan(im.imdb)
    else:
        assert im.imdb == pytest.approx(ri["irm"], abs=2e-5 * g.mu0)
        assert im.imdb_norm == pytest.approx(ri["irm_norm"], abs=2e-5)


def test_published_identity_top3_bipartite_eigs():
    # Research notes §1.3 / claim 1: top-3 |eig| of [[0,B],[Bᵀ,0]] are (σ1, σ1, σ2).
    rng = np.random.default_rng(0)
    mask = rng.random((64, 288)) < 0.05
    lam1, mu_hat, _, _ = R.released_bipartite_eigs(mask.astype(float))
    s = fspai.singular_values(mask)
    assert s[0] == pytest.approx(lam1, rel=1e-5) and s[1] == pytest.approx(mu_hat, rel=1e-5)
    assert s == pytest.approx([8.156, 5.583], abs=1e-3)  # the numbers printed in the notes


def test_spec_published_ramanujan_fractions_of_random_masks():
    # Published observation: random masks are not Ramanujan at 1 % density and are at >= 10 %.
    rng = np.random.default_rng(1)
    shapes = [(64, 64, 3, 3), (128, 128, 3, 3), (256, 256, 3, 3)]
    low = [fspai.ramanujan_gap(rng.random(s) < 0.01, convention="iclr23") for s in shapes]
    high = [fspai.ramanujan_gap(rng.random(s) < 0.1, convention="iclr23") for s in shapes]
    assert not any(g.delta_r > 0 for g in low)
    assert all(g.delta_r > 0 for g in high)


def test_random_biregular_graph_is_near_ramanujan():
    # Research notes claim 2: random 3-regular bipartite 600+600 → σ2 ≈ 2√2 (Δr ≈ 0⁺).
    rng = np.random.default_rng(0)
    n, d = 600, 3
    mask = np.zeros((n, n), bool)
    for _ in range(d):  # union of d random perfect matchings, redrawn until edge-disjoint
        while True:
            p = rng.permutation(n)
            if not mask[np.arange(n), p].any():
                mask[np.arange(n), p] = True
                break
    g = fspai.ramanujan_gap(mask)
    assert g.mu0 == pytest.approx(3.0, rel=1e-9)
    assert abs(g.delta_r) < 0.1 and g.mu_hat == pytest.approx(2 * np.sqrt(2), abs=0.1)


def test_complete_bipartite_k_ab():
    a, b = 6, 9
    g = fspai.ramanujan_gap(np.ones((a, b), bool))
    assert g.mu0 == pytest.approx(np.sqrt(a * b), rel=1e-12) and abs(g.mu_hat) < 1e-7
    assert g.delta_r == pytest.approx(np.sqrt(b - 1) + np.sqrt(a - 1), rel=1e-7)


def test_result_dataclasses_are_frozen_and_export():
    mask, weight = random_layer(1)
    g = fspai.ramanujan_gap(mask)
    with pytest.raises(Exception):
        g.mu0 = 1.0
    assert set(g.to_dict()) >= {"mu0", "mu_hat", "n_in", "n_out", "edges", "d_in", "d_out", "delta_r",
                                "delta_r_norm", "delta_s", "delta_s_norm", "valid"}
    assert set(fspai.imdb(mask, weight).to_dict()) >= {"imdb", "imdb_norm", "weighted_imdb", "count"}
    sub = fspai.regular_decomposition(mask)[0].to_dict()
    assert isinstance(sub["columns"], list)


def test_undefined_metrics_are_nan_with_reason():
    tiny = np.zeros((4, 4), bool)
    tiny[0, 0] = tiny[1, 1] = True
    g = fspai.ramanujan_gap(tiny)
    assert not g.valid and math.isnan(g.delta_r) and "degree condition" in g.reason
    assert math.isnan(fspai.weighted_gap(tiny, np.ones((4, 4), np.float32)))
    assert math.isnan(fspai.narc(tiny))
    assert fspai.imdb(tiny).imdb == 0.0 and math.isnan(fspai.imdb(tiny, convention="iclr23").imdb)
    assert fspai.coordinate(tiny, np.ones((4, 4))).as_array().tolist() == [0, 0, 0, 0]
    empty = fspai.ramanujan_gap(np.zeros((3, 5), bool))
    assert not empty.valid and "empty" in empty.reason
    zero_size = fspai.layer_metrics(np.zeros((0, 5), bool))
    assert not zero_size.valid and math.isnan(zero_size.density)


def test_unknown_convention():
    with pytest.raises(ValueError, match="neurips23"):
        fspai.ramanujan_gap(np.ones((4, 4)), convention="nips")


# ---------------------------------------------------------------- exact zero weights inside the mask
def zero_weight_example():
    """A 10x6 mask whose 6 columns all have degree 3, with one masked weight exactly 0."""
    rng = np.random.default_rng(7)
    mask = np.zeros((10, 6), bool)
    for j in range(6):
        mask[rng.choice(10, 3, replace=False), j] = True
    weight = (rng.standard_normal((10, 6)) * np.sqrt(2 / 6)).astype(np.float32)
    r, c = np.nonzero(mask)
    weight[r[4], c[4]] = 0.0
    return mask, weight


def test_released_weighted_imdb_with_a_zero_weight():
    mask, weight = zero_weight_example()
    assert (mask.sum(axis=0) == 3).all()
    released = R.released_neurips23_layer(mask, weight)
    assert released["weighted_imdb"] == 0.0  # inf in the released code, mapped to 0
    im = fspai.imdb(mask, weight)
    assert im.count == 1 and math.isnan(im.weighted_imdb) and "fails d >= 3 and d_out > 1" in im.reason
    assert "d=2.833" in im.reason  # 17 nonzero weights over 6 input nodes
    c = fspai.coordinate(mask, weight)
    assert c.weighted_imdb == 0.0
    for axis in fspai.Coordinate.AXES:
        assert getattr(c, axis) == pytest.approx(released[axis], abs=2e-5), axis
    assert c.norm() == pytest.approx(released["norm"], rel=1e-5)
    assert c.norm() == pytest.approx(0.3129534, abs=1e-6)
    # the pattern-validity rule, a named option: the weighted IMDB stays defined
    (sub,) = fspai.regular_decomposition(mask, weight, convention="neurips23-pattern")
    cp = fspai.coordinate(mask, weight, convention="neurips23-pattern")
    assert cp.weighted_imdb == pytest.approx(sub.factor * (sub.weighted_mu0 - sub.weighted_mu_hat), rel=1e-9)
    assert cp.weighted_imdb == pytest.approx(0.1297073, abs=1e-6)
    assert cp.norm() == pytest.approx(0.3387682, abs=1e-6)
    np.testing.assert_allclose(cp.as_array(), R.dense_coordinate(mask, weight, "neurips23-pattern"), atol=1e-9)
    # a custom convention gets its own rules, not neurips23's by name
    custom = dataclasses.replace(fspai.conventions.NEURIPS23, name="mine", weighted_validity="pattern")
    assert fspai.coordinate(mask, weight, convention=custom) == cp
    table = fspai.model_metrics({"fc.weight": mask}, {"fc.weight": weight})
    assert math.isnan(table["fc.weight"].weighted_imdb) and "exact zero weights" in table["fc.weight"].reason
    assert table["fc.weight"].coordinate == c


@pytest.mark.parametrize("seed", range(8))
def test_neurips23_matches_released_with_zero_weights(seed):
    rng = np.random.default_rng(300 + seed)
    shape = [(10, 6), (16, 24), (32, 8, 3), (40, 30), (12, 48), (24, 24), (64, 36), (20, 90)][seed]
    mask = rng.random(shape) < [0.5, 0.3, 0.3, 0.2, 0.3, 0.25, 0.1, 0.15][seed]
    weight = rng.standard_normal(shape) * 0.1
    weight[rng.random(shape) < 0.15] = 0.0  # exact zeros inside the mask
    released = R.released_neurips23_layer(mask, weight)
    c = fspai.coordinate(mask, weight)
    scale = max(1.0, fspai.singular_values(mask)[0])
    for axis in fspai.Coordinate.AXES:
        assert getattr(c, axis) == pytest.approx(released[axis], abs=2e-5 * scale), axis
    np.testing.assert_allclose(c.as_array(), R.dense_coordinate(mask, weight), atol=1e-7)
    for conv in ("neurips23", "neurips23-pattern"):
        im, ref = fspai.imdb(mask, weight, convention=conv), R.dense_imdb(mask, weight, conv)
        assert same(im.weighted_imdb, ref["weighted_imdb"]) and im.count == ref["count"]
        assert same(fspai.weighted_gap(mask, weight, convention=conv), R.dense_weighted_gap(mask, weight, conv))


def test_conventions_are_data():
    from fspai.conventions import DegreeRule, get_convention

    assert get_convention(fspai.conventions.ICLR23) is fspai.conventions.ICLR23
    assert get_convention("neurips23").weighted_validity == "released"
    assert get_convention("neurips23-pattern").weighted_validity == "pattern"
    loose = dataclasses.replace(fspai.conventions.ICLR23, name="loose", layer_rule=DegreeRule(1, True, 1, True),
                                min_nodes=2)
    rng = np.random.default_rng(4)
    mask = rng.random((40, 30)) < 0.06
    g = fspai.ramanujan_gap(mask, convention=loose)
    ref = R.dense_ramanujan_gap(mask, loose)
    assert g.valid == ref["valid"] and same(g.delta_r, ref["delta_r"])
    assert "d_in > 1 and d_out > 1" in fspai.ramanujan_gap(np.eye(4, dtype=bool), convention=loose).reason
    assert [s.degree for s in fspai.regular_decomposition(mask, convention=loose)] == \
        [r["degree"] for r in R.dense_subgraphs(mask, convention=loose)]
