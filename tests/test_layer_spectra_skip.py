"""layer_spectra(solve_invalid_subgraphs=False): degree groups failing the convention's subgraph
rule are reported but not solved (NaN spectra); IMDB / coordinates / tables are unchanged."""
import dataclasses
import math

import numpy as np
import pytest

import fspai
from fspai import _core
from fspai._convert import to_layers
from fspai.conventions import DegreeRule, get_convention
from fspai.metrics import _coordinates_of, _imdb, _spectra, _subgraphs
from fspai.tables import _record

CONVENTIONS = ["neurips23", "neurips23-pattern", "iclr23"]
DENSITIES = [0.01, 0.05, 0.30]
SHAPES = [(64, 27), (64, 576), (128, 64, 3, 3), (10, 512), (256, 128), (200, 300)]


def network(density, seed=0, zeros=True):
    """Masks and weights of a small network; some exact zero weights (released weighted validity)."""
    rng = np.random.default_rng(seed)
    masks, weights = [], []
    for shape in SHAPES:
        masks.append(rng.random(shape) < density)
        w = (rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))).astype(np.float32)
        if zeros:
            w[rng.random(shape) < 0.2] = 0.0
        weights.append(w)
    return masks, weights


def solve_all_coordinates(masks, weights, conv):
    """coordinates() as before the option: every degree group solved."""
    layers = to_layers(masks, weights)
    specs = _spectra(layers, subgraphs=True, weighted=True, convention=conv, threads=1)
    return _coordinates_of(layers, specs, conv)


def same_float(a, b, tol=1e-12):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(a))


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("density", DENSITIES)
def test_coordinates_unchanged_by_skipping(density, convention):
    conv = get_convention(convention)
    masks, weights = network(density, seed=int(density * 100))
    new = fspai.coordinates(masks, weights, convention=convention, threads=1)
    old = solve_all_coordinates(masks, weights, conv)
    assert len(new) == len(old)
    for a, b in zip(new, old):
        assert np.allclose(a.as_array(), b.as_array(), rtol=1e-12, atol=1e-12), (a, b)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("density", DENSITIES)
def test_imdb_and_tables_unchanged_by_skipping(density, convention):
    conv = get_convention(convention)
    masks, weights = network(density, seed=7 + int(density * 100))
    for m, w in zip(masks, weights):
        for weight in (w, None):
            got = fspai.imdb(m, weight, convention=convention)
            layer = to_layers([m], None if weight is None else [weight])[0]
            spec = _spectra([layer], subgraphs=True, weighted=weight is not None, convention=conv)[0]
            ref = _imdb(_subgraphs(layer, spec, conv, weight is not None), conv, weighted=weight is not None)
            assert got.count == ref.count and got.reason == ref.reason
            for key in ("imdb", "imdb_norm", "weighted_imdb"):
                assert same_float(getattr(got, key), getattr(ref, key)), key
            rec = fspai.layer_metrics(m, weight, convention=convention)
            ref_rec = _record(layer, spec, conv, weight is not None)
            for key, v in ref_rec.to_dict().items():
                g = rec.to_dict()[key]
                if isinstance(v, float):
                    assert same_float(g, v), key
                elif key != "name":
                    assert g == v, key


def rule_fails(conv, d, n_in, n_out):
    return not conv.sub_valid(d, d * n_in / n_out)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("density", DENSITIES)
def test_skipped_groups_report_nan_and_their_tables(density, convention):
    conv = get_convention(convention)
    masks, weights = network(density, seed=3)
    layers = to_layers(masks, weights)
    full = _spectra(layers, subgraphs=True, weighted=True, convention=conv)
    skip = _spectra(layers, subgraphs=True, weighted=True, convention=conv, valid_subgraphs_only=True)
    n_skipped = n_solved = 0
    for a, b in zip(full, skip):
        for key in ("sub_degree", "sub_n_in", "sub_n_out", "sub_nnz"):
            assert np.array_equal(a[key], b[key]), key
        assert all(np.array_equal(x, y) for x, y in zip(a["sub_columns"], b["sub_columns"]))
        assert np.array_equal(a["sv"], b["sv"]) and np.array_equal(a["wsv"], b["wsv"])
        for g, d in enumerate(b["sub_degree"]):
            if rule_fails(conv, int(d), int(b["sub_n_in"][g]), int(b["sub_n_out"][g])):
                assert np.isnan(b["sub_sv"][g]).all() and np.isnan(b["sub_wsv"][g]).all()
                assert np.isfinite(a["sub_sv"][g]).all()
                n_skipped += 1
            else:
                assert np.array_equal(a["sub_sv"][g], b["sub_sv"][g])
                assert np.array_equal(a["sub_wsv"][g], b["sub_wsv"][g])
                n_solved += 1
        assert b["info"]["steps"] <= a["info"]["steps"]
    if density <= 0.05:
        assert n_skipped > 0  # degree-1/2 groups exist at low density


def test_regular_decomposition_still_solves_every_group():
    masks, weights = network(0.02, seed=5)
    n_invalid = 0
    for m, w in zip(masks, weights):
        subs = fspai.regular_decomposition(m, w)
        assert all(math.isfinite(s.mu0) and math.isfinite(s.weighted_mu0) for s in subs)
        n_invalid += sum(not s.valid for s in subs)
    assert n_invalid > 0


def boundary_layer():
    """Columns 0-2: degree 3 into rows 0-2 (n_in 3, n_out 3, d_out 3); columns 3-4: degree 1 into
    rows 3-4 (d_out 1); columns 5-6: degree 2 into rows 5-8 (n_out 4, d_out 1)."""
    m = np.zeros((9, 7), dtype=np.float32)
    m[0:3, 0:3] = 1
    m[3, 3] = m[4, 4] = 1
    m[5, 5] = m[6, 5] = m[7, 6] = m[8, 6] = 1
    w = m * np.linspace(0.5, 2.0, m.size, dtype=np.float32).reshape(m.shape)
    return m, w


RULES = [(3, False, 3, False), (3, True, 3, False), (3, False, 3, True), (3, True, 3, True),
         (1, False, 1, False), (1, True, 1, False), (1, False, 1, True), (2, False, 1, False),
         (2.5, False, 0.5, True), (0, False, 0, False)]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("path", ["cpu", "cuda_host_emulation"])
def test_rule_boundaries_strict_and_not(rule, path):
    m, w = boundary_layer()
    ly = to_layers([m], [w])[0]
    call = _core.layer_spectra if path == "cpu" else _core._cuda_host_emulation
    full = call([ly.core_tuple(True)], min_nodes=2)[0]
    res = call([ly.core_tuple(True)], min_nodes=2, subgraph_rule=rule, solve_invalid_subgraphs=False)[0]
    py_rule = DegreeRule(*rule)
    assert list(res["sub_degree"]) == [1, 2, 3]
    assert list(res["sub_n_in"]) == [2, 2, 3] and list(res["sub_n_out"]) == [2, 4, 3]
    for g in range(3):
        d, n_in, n_out = (int(res[k][g]) for k in ("sub_degree", "sub_n_in", "sub_n_out"))
        holds = py_rule.holds(d, d * n_in / n_out)
        assert np.isnan(res["sub_sv"][g]).all() == (not holds)
        assert np.isnan(res["sub_wsv"][g]).all() == (not holds)
        if holds:
            assert np.array_equal(res["sub_sv"][g], full["sub_sv"][g])
            assert np.array_equal(res["sub_wsv"][g], full["sub_wsv"][g])
    # exact equality at the threshold passes >= and fails >: group 2 has d = 3, d_out = 3; group 0
    # has d = 1, d_out = 1; group 1 has d = 2, d_out = 1
    skipped = {(3, False, 3, False): [True, True, False], (3, True, 3, False): [True, True, True],
               (3, False, 3, True): [True, True, True], (1, False, 1, False): [False, False, False],
               (1, True, 1, False): [True, False, False], (1, False, 1, True): [True, True, False],
               (2, False, 1, False): [True, False, False], (0, False, 0, False): [False, False, False]}
    if rule in skipped:
        assert [bool(np.isnan(res["sub_sv"][g]).all()) for g in range(3)] == skipped[rule]


def test_rule_given_but_solve_all_is_the_default_behaviour():
    m, w = boundary_layer()
    ly = to_layers([m], [w])[0]
    a = _core.layer_spectra([ly.core_tuple(True)])[0]
    b = _core.layer_spectra([ly.core_tuple(True)], subgraph_rule=(9, True, 9, True))[0]
    assert np.array_equal(a["sub_sv"], b["sub_sv"]) and np.array_equal(a["sub_wsv"], b["sub_wsv"])
    assert np.isfinite(b["sub_sv"]).all()


def test_unweighted_skipped_group_keeps_nan_wsv():
    m, _ = boundary_layer()
    ly = to_layers([m])[0]
    res = _core.layer_spectra([ly.core_tuple(False)], subgraph_rule=(3, False, 1, True),
                              solve_invalid_subgraphs=False)[0]
    assert res["wsv"] is None and np.isnan(res["sub_wsv"]).all()
    assert np.isnan(res["sub_sv"][:2]).all() and np.isfinite(res["sub_sv"][2]).all()


def test_core_rule_is_the_convention_rule():
    for conv in fspai.conventions.PRESETS.values():
        r = conv.subgraph_rule
        assert r.core_rule() == (float(r.d_in_min), r.d_in_strict, float(r.d_out_min), r.d_out_strict)


@pytest.mark.parametrize("bad", [(-1, False, 1, True), (3, False, -0.5, False), (math.nan, False, 1, True),
                                 (3, False, math.nan, True), (math.inf, False, 1, True)])
def test_bad_rule_values_raise_value_error_in_python(bad, monkeypatch):
    called = []
    monkeypatch.setattr(_core, "layer_spectra", lambda *a, **k: called.append(1))
    with pytest.raises(ValueError, match="DegreeRule"):
        conv = dataclasses.replace(fspai.conventions.NEURIPS23, name="bad", subgraph_rule=DegreeRule(*bad))
        fspai.coordinates([np.ones((4, 4))], [np.ones((4, 4))], convention=conv)
    assert not called


@pytest.mark.parametrize("bad", [("3", False, 1, True), (True, False, 1, True), (3, 1, 1, True),
                                 (3, False, 1, None)])
def test_bad_rule_types_raise_type_error(bad):
    with pytest.raises(TypeError, match="DegreeRule"):
        DegreeRule(*bad)


def test_core_refuses_bad_rule_too():
    m, w = boundary_layer()
    t = to_layers([m], [w])[0].core_tuple(True)
    for bad in [(math.nan, False, 1, True), (-1, False, 1, True), (3, False, math.inf, True)]:
        with pytest.raises(ValueError, match="subgraph_rule"):
            _core.layer_spectra([t], subgraph_rule=bad, solve_invalid_subgraphs=False)
        with pytest.raises(ValueError, match="subgraph_rule"):
            _core._cuda_host_emulation([t], subgraph_rule=bad, solve_invalid_subgraphs=False)
    with pytest.raises(ValueError, match="needs a subgraph_rule"):
        _core.layer_spectra([t], solve_invalid_subgraphs=False)


def test_valid_subgraphs_only_must_be_bool():
    conv = get_convention("neurips23")
    layers = to_layers([np.ones((4, 4))])
    with pytest.raises(TypeError, match="valid_subgraphs_only"):
        _spectra(layers, subgraphs=True, weighted=False, convention=conv, valid_subgraphs_only=1)
