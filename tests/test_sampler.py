"""fspai.sampler: the Full-Spectrum PaI sampler (acceptance rules, budget mode, determinism,
torch.distributed sharding)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import fspai  # noqa: E402
from fspai import masks as M  # noqa: E402
from fspai import models  # noqa: E402
from fspai.sampler import (FullSpectrumSampler, accept_layers, accept_network,  # noqa: E402
                           candidate_seed, prepare_weights, replay, _rescale_layer)

PYTHON_DIR = str(Path(fspai.__file__).resolve().parent.parent)


def S(*rows):
    """(L, 5) score array from (delta_r, weighted_gap, imdb, weighted_imdb) rows; norm appended."""
    a = np.array(rows, dtype=float)
    return np.concatenate([a, np.linalg.norm(a, axis=1, keepdims=True)], axis=1)


# --------------------------------------------------------------------------------------------
# acceptance rules on crafted scores
# --------------------------------------------------------------------------------------------

def test_layer_rule_needs_both_imdb_and_norm_not_lower():
    best = S((1, 0, 1, 0), (1, 0, 1, 0), (1, 0, 1, 0), (1, 0, 1, 0), (1, 0, 1, 0))
    cand = S((2, 0, 2, 0),      # imdb up, norm up            -> take
             (0, 0, 1.2, 0),    # imdb up, norm down (1.2<√2) -> keep best
             (3, 0, 0.9, 0),    # norm up, imdb down          -> keep best
             (1, 0, 1, 0),      # exact tie                   -> take (>=, as released)
             (1.5, 0, 1, 0))    # imdb equal, norm up         -> take
    assert accept_layers(best, cand, "layer").tolist() == [True, False, False, True, True]


def test_layer_alt_rule_wants_lower_delta_r_and_higher_norm():
    best = S((1, 0, 1, 0), (1, 0, 1, 0), (1, 0, 1, 0))
    cand = S((0.5, 2, 1, 0),    # Δr down, norm up   -> take
             (0.5, 0, 0.5, 0),  # Δr down, norm down -> no
             (1, 2, 1, 0))      # Δr equal            -> no (strict)
    assert accept_layers(best, cand, "layer-alt").tolist() == [True, False, False]


def test_network_rule_is_all_or_nothing_on_mean_norm():
    best = S((1, 0, 0, 0), (1, 0, 0, 0))
    # one layer much worse, mean higher -> all layers taken
    cand = S((0.1, 0, 0, 0), (2.5, 0, 0, 0))
    assert accept_network(best, cand)
    assert accept_layers(best, cand, "network").tolist() == [True, True]
    # equal mean -> rejected (strictly higher required)
    assert not accept_network(best, S((0.5, 0, 0, 0), (1.5, 0, 0, 0)))
    # every layer better in imdb but lower mean norm -> rejected
    worse = S((0, 0, 0.5, 0), (0, 0, 0.5, 0))
    assert accept_layers(best, worse, "network").tolist() == [False, False]


def test_nan_scores_never_win():
    from fspai.sampler.rules import scores_array as _scores_array
    sc = _scores_array([np.array([np.nan, 0, 5, 0]), np.array([1.0, 0, 1, 0])])
    assert sc[0, 0] == -np.inf
    best = S((0, 0, 0, 0), (0, 0, 0, 0))
    cand = _scores_array([fspai.Coordinate(np.nan, 0.0, 5.0, 0.0), fspai.Coordinate(1, 0, 1, 0)])
    assert accept_layers(best, cand, "layer").tolist() == [False, True]


def test_bad_rule_and_shapes_raise():
    with pytest.raises(ValueError, match="rule"):
        accept_layers(S((1, 0, 0, 0)), S((1, 0, 0, 0)), "best")
    with pytest.raises(ValueError, match="layers, 5"):
        accept_layers(S((1, 0, 0, 0)), S((1, 0, 0, 0), (1, 0, 0, 0)))


def test_replay_is_order_independent_and_breaks_ties_by_index():
    base = S((1, 0, 1, 0), (1, 0, 1, 0))
    tie = S((2, 0, 2, 0), (1, 0, 1, 0))
    cands = [(3, tie), (1, S((1.5, 0, 1.5, 0), (0, 0, 0, 0))), (2, tie), (4, S((0, 0, 0, 0),
                                                                               (0, 0, 0, 0)))]
    r1 = replay(base, np.zeros(2, int), cands, "layer")
    r2 = replay(base, np.zeros(2, int), list(reversed(cands)), "layer")
    assert r1[1].tolist() == r2[1].tolist() == [3, 3]     # tie under >=: the later index wins
    assert np.array_equal(r1[0], r2[0]) and r1[2] == r2[2]
    assert r1[2] == [(1, 1), (2, 2), (3, 2)]
    # network rule: strict, so among equal maxima the earliest index wins
    n1 = replay(base, np.zeros(2, int), cands, "network")
    n2 = replay(base, np.zeros(2, int), cands[::-1], "network")
    assert n1[1].tolist() == n2[1].tolist() == [2, 2]


# --------------------------------------------------------------------------------------------
# the sampler loop with a crafted generator and a stubbed scorer
# --------------------------------------------------------------------------------------------

# Per candidate t (0 = baseline) and layer j: (delta_r, imdb); weighted axes 0.
TABLE = {
    0: [(1, 1), (2, 0), (0, 2)],
    1: [(2, 1), (1, 1), (3, 1)],        # L0 imdb =, norm ↑ -> take; L1 norm ↓; L2 imdb ↓
    2: [(0, 3), (2, 0.5), (0, 2)],      # L0 take; L1 take; L2 exact tie -> take
    3: [(0, 3), (0, 0.4), (0, 1.9)],    # L0 tie -> take; L1, L2 lower
}
SHAPE = (4, 8)


def _encode(t: int, j: int) -> torch.Tensor:
    m = torch.zeros(SHAPE, dtype=torch.bool)
    m[0, t] = True
    m[1, j] = True
    m[2:, :] = True
    return m


def _decode(mask) -> tuple:
    m = torch.as_tensor(mask)
    return int(m[0].nonzero()[0]), int(m[1].nonzero()[0])


def _stub_scorer(calls):
    def scorer(masks, weights):
        assert len(masks) == len(weights) == 3
        calls.append(1)
        out = []
        for mask in masks:
            t, j = _decode(mask)
            dr, im = TABLE[t][j]
            out.append(fspai.Coordinate(float(dr), 0.0, float(im), 0.0))
        return out
    return scorer


def _stub_model():
    torch.manual_seed(0)
    return nn.ModuleList([nn.Linear(8, 4) for _ in range(3)])


def _gen(t):
    return {f"{j}.weight": _encode(t, j) for j in range(3)}


@pytest.mark.parametrize("world_chunks", [1, 2, 3])
def test_sampler_layer_rule_composite(world_chunks):
    calls = []
    s = FullSpectrumSampler(_stub_model(), "random", 0.5, population=3,
                            save_interval=world_chunks, generator=_gen, baseline=_gen(0),
                            scorer=_stub_scorer(calls), keep_snapshots=True)
    r = s.run()
    assert len(calls) == 4                       # baseline + 3 candidates, one call each
    assert r.sources == {"0.weight": 3, "1.weight": 2, "2.weight": 2}
    assert r.history == [(1, 1), (2, 3), (3, 1)]
    for name, src in r.sources.items():
        assert torch.equal(r.masks[name], _gen(src)[name])
    assert r.scores["1.weight"].imdb == 0.5 and r.scores["0.weight"].imdb == 3
    assert r.baseline_scores["0.weight"].norm == pytest.approx(np.sqrt(2))
    assert r.mean_norm > r.baseline_mean_norm
    assert r.snapshots[0].t == 0 and r.snapshots[-1].t == 3
    assert r.timings["candidates"] == 3 and r.timings["candidates_per_s"] > 0
    assert 0 <= r.timings["metrics_fraction"] <= 1
    assert r.realised_density == pytest.approx(M.realised_density(r.masks))


def test_sampler_network_rule_takes_whole_candidates():
    s = FullSpectrumSampler(_stub_model(), "random", 0.5, population=3, save_interval=10,
                            rule="network", generator=_gen, baseline=_gen(0),
                            scorer=_stub_scorer([]))
    r = s.run()
    # mean norms: t0 1.80, t1 2.27 (take), t2 2.35 (take), t3 1.77 (reject)
    assert set(r.sources.values()) == {2}
    assert r.history == [(1, 3), (2, 3)]


def test_sampler_saves_snapshots_with_coordinates(tmp_path):
    s = FullSpectrumSampler(_stub_model(), "random", 0.5, population=3, save_interval=2,
                            generator=_gen, baseline=_gen(0), scorer=_stub_scorer([]),
                            save_dir=tmp_path)
    r = s.run()
    assert [sn.t for sn in r.snapshots] == [0, 2, 3]
    for sn in r.snapshots:
        masks = M.load_masks(sn.path)
        side = M.read_sidecar(sn.path)
        assert set(masks) == {"0.weight", "1.weight", "2.weight"}
        layers = side["meta"]["layers"]
        assert set(layers["0.weight"]) >= {"delta_r", "weighted_gap", "imdb", "weighted_imdb",
                                           "norm", "source"}
        assert side["meta"]["t"] == sn.t
    last = M.read_sidecar(r.snapshots[-1].path)["meta"]["layers"]
    assert last["0.weight"]["source"] == 3 and last["0.weight"]["imdb"] == 3


def test_invalid_arguments():
    m = _stub_model()
    with pytest.raises(ValueError, match="unknown PaI method"):
        FullSpectrumSampler(m, "obd", 0.1)
    with pytest.raises(TypeError, match="populaton"):
        FullSpectrumSampler(m, "random", 0.1, populaton=5)
    with pytest.raises(TypeError, match="population"):
        FullSpectrumSampler(m, "random", 0.1, population="5")
    with pytest.raises(ValueError, match="density"):
        FullSpectrumSampler(m, "random", 1.5)
    with pytest.raises(ValueError, match="needs training data"):
        FullSpectrumSampler(m, "snip", 0.1)
    with pytest.raises(ValueError, match="budget"):
        FullSpectrumSampler(m, "random", 0.1, budget="fixed")
    with pytest.raises(ValueError, match="rule"):
        FullSpectrumSampler(m, "random", 0.1, rule="greedy")
    with pytest.raises(ValueError, match="save_interval"):
        FullSpectrumSampler(m, "random", 0.1, save_interval=0)


# --------------------------------------------------------------------------------------------
# budget preservation
# --------------------------------------------------------------------------------------------

def test_rescale_layer_trims_and_tops_up_by_saliency():
    mask = torch.tensor([True, True, True, False, False, False])
    sal = torch.tensor([0.1, 0.9, 0.5, 0.8, 0.2, 0.95])
    assert _rescale_layer(mask, sal, 2).tolist() == [False, True, True, False, False, False]
    # top-up: all own edges, then the best outside ones
    assert _rescale_layer(mask, sal, 4).tolist() == [True, True, True, False, False, True]
    assert _rescale_layer(mask, sal, 3).tolist() == mask.tolist()
    # ties broken by position (lower first)
    assert _rescale_layer(torch.zeros(4, dtype=torch.bool), torch.zeros(4), 2).tolist() == \
        [True, True, False, False]


def _mlp(seed=0):
    return models.build("mlp", 10, input_shape=(64,), hidden=(32,), seed=seed)


@pytest.mark.parametrize("method", ["random", "snip", "magnitude"])
def test_budget_preserve_keeps_every_layer_count(digits, method):
    s = FullSpectrumSampler(_mlp(), method, 0.1, data=digits.train_loader, population=6,
                            save_interval=3, seed=1, budget="preserve", candidate_batches=1)
    r = s.run()
    for name, m in r.masks.items():
        assert int(m.sum()) == int(r.baseline[name].sum()), name
    assert r.realised_density == pytest.approx(r.baseline_density)


def test_budget_free_reports_realised_density(digits):
    s = FullSpectrumSampler(_mlp(), "snip", 0.1, data=digits.train_loader, population=6,
                            save_interval=3, seed=1, candidate_batches=1)
    r = s.run()
    assert r.realised_density == pytest.approx(M.realised_density(r.masks))
    assert r.baseline_density == pytest.approx(0.1, abs=1e-3)
    assert r.to_dict()["realised_density"] == r.realised_density
    json.dumps(r.to_dict())  # JSON-friendly


# --------------------------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------------------------

def test_candidate_seed_depends_only_on_seed_and_index():
    assert candidate_seed(3, 7) == candidate_seed(3, 7)
    assert len({candidate_seed(3, t) for t in range(100)}) == 100
    assert candidate_seed(3, 7) != candidate_seed(4, 7)
    assert candidate_seed(3, 7, 1) != candidate_seed(3, 7, 0)


@pytest.mark.parametrize("method", ["snip", "synflow"])
def test_candidate_t_is_independent_of_generation_order(digits, method):
    opts = {"rounds": 3} if method == "synflow" else None
    a = FullSpectrumSampler(_mlp(), method, 0.1, data=digits.train_loader, seed=5,
                            prune_options=opts, candidate_batches=1)
    b = FullSpectrumSampler(_mlp(), method, 0.1, data=digits.train_loader, seed=5,
                            prune_options=opts, candidate_batches=1)
    for s in (a, b):
        s.maker.bind({n: p.detach() != 0 for n, p in M.prunable_parameters(s.model).items()})
    c3 = a.maker.candidate(3)
    a.maker.candidate(1)
    b.maker.candidate(1)
    b.maker.candidate(2)
    assert all(torch.equal(c3[n], b.maker.candidate(3)[n]) for n in c3)
    assert any(not torch.equal(c3[n], a.maker.candidate(2)[n]) for n in c3)


def test_same_seed_same_result_different_seed_differs(digits):
    def run(seed):
        return FullSpectrumSampler(_mlp(), "snip", 0.1, data=digits.train_loader, population=5,
                                   save_interval=5, seed=seed, candidate_batches=1).run()
    r1, r2, r3 = run(2), run(2), run(3)
    assert r1.sources == r2.sources and r1.history == r2.history
    assert all(torch.equal(r1.masks[n], r2.masks[n]) for n in r1.masks)
    assert [s.to_dict() for s in r1.scores.values()] == [s.to_dict() for s in r2.scores.values()]
    assert any(not torch.equal(r1.masks[n], r3.masks[n]) for n in r1.masks)


def test_pretrained_weights_and_checkpoint(digits, tmp_path):
    model = _mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepare_weights(model, "pretrained", data=digits.train_loader, steps=5, seed=0)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    path = tmp_path / "theta.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    other = prepare_weights(_mlp(), str(path))
    assert all(torch.equal(other.state_dict()[k], v) for k, v in model.state_dict().items())
    with pytest.raises(FileNotFoundError):
        prepare_weights(_mlp(), str(tmp_path / "nope.pt"))
    with pytest.raises(ValueError, match="needs training data"):
        prepare_weights(_mlp(), "pretrained")


# --------------------------------------------------------------------------------------------
# torch.distributed: 2 gloo processes == 1 process
# --------------------------------------------------------------------------------------------

WORKER = textwrap.dedent("""
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from fspai import data, models
    from fspai.sampler import FullSpectrumSampler, init_distributed, dist_info
    init_distributed()
    rank, world = dist_info()
    bundle = data.load("digits", batch_size=64, seed=0)
    model = models.build("mlp", 10, input_shape=(64,), hidden=(32,), seed=0)
    r = FullSpectrumSampler(model, "snip", 0.1, data=bundle.train_loader, population=7,
                            save_interval=3, seed=11, candidate_batches=1,
                            weights="pretrained", pretrain_steps=3).run()
    out = {"sources": r.sources, "history": r.history,
           "masks": {k: v.flatten().nonzero().flatten().tolist() for k, v in r.masks.items()},
           "scores": {k: v.to_dict() for k, v in r.scores.items()},
           "snapshots": [[sn.t, sn.mean_norm] for sn in r.snapshots],
           "local": r.timings["candidates_local"], "world": world}
    with open(sys.argv[1] + f".rank{rank}.json", "w") as f:
        json.dump(out, f)
    from fspai.distributed import cleanup_distributed
    cleanup_distributed()  # the ranks meet at a barrier before tearing gloo down
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.distributed
def test_two_gloo_processes_equal_one_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    procs = []
    for rank in range(2):
        e = dict(env, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                 LOCAL_WORLD_SIZE="2")
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path / "dist")],
                                      env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "single")],
                            env=dict(env, WORLD_SIZE="1"), capture_output=True, text=True,
                            timeout=120)
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=120)[0].decode(errors="replace"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert single.returncode == 0, single.stdout + single.stderr
    assert all(p.returncode == 0 for p in procs), "\n".join(outs)
    one = json.loads((tmp_path / "single.rank0.json").read_text())
    r0 = json.loads((tmp_path / "dist.rank0.json").read_text())
    r1 = json.loads((tmp_path / "dist.rank1.json").read_text())
    assert r0["world"] == 2 and one["world"] == 1
    assert r0["local"] + r1["local"] == one["local"] == 7
    for shard in (r0, r1):
        assert shard["sources"] == one["sources"]
        assert shard["history"] == one["history"]
        assert shard["masks"] == one["masks"]
        assert shard["scores"] == one["scores"]
        assert shard["snapshots"] == one["snapshots"]    # K grid replayed inside one exchange
    assert one["history"], "the test needs at least one accepted candidate"


# --------------------------------------------------------------------------------------------
# the sampler scores and selects with the library's own code
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, opts, scorer", [
    ("grasp", {"temperature": 50.0}, lambda sc: sc.Grasp(temperature=50.0)),
    ("synflow", {"rounds": 2}, lambda sc: sc.SynFlow(bias="zero")),
    ("synflow", {"rounds": 2, "synflow_bias": "abs"}, lambda sc: sc.SynFlow(bias="abs")),
    ("snip", {}, lambda sc: sc.Snip()),
])
def test_budget_saliency_is_the_library_scorer_with_the_prune_options(digits, method, opts,
                                                                      scorer):
    from fspai import scoring
    from fspai.sampler.rules import STREAM_RANK

    s = FullSpectrumSampler(_mlp(), method, 0.1, data=digits.train_loader, seed=2,
                            prune_options=opts, candidate_batches=1, noise=0.0)
    names = list(M.prunable_parameters(s.model))
    s.maker.bind({n: torch.ones(p.shape, dtype=torch.bool)
                  for n, p in M.prunable_parameters(s.model).items()})
    got = s.maker.saliency(3)
    data = s.maker._candidate_batches(3) if method != "synflow" else None
    want = scoring.score(s.model, scorer(scoring), data,
                         seed=candidate_seed(2, 3, STREAM_RANK))
    assert all(torch.equal(got[n], want[n].float()) for n in names)


def test_random_candidates_are_selection_random_masks():
    from fspai import selection
    from fspai.sampler.rules import STREAM_PRUNE

    net = _mlp()
    s = FullSpectrumSampler(net, "random", 0.2, seed=4)
    shapes = {n: tuple(p.shape) for n, p in M.prunable_parameters(net).items()}
    s.maker.bind({n: torch.ones(sh, dtype=torch.bool) for n, sh in shapes.items()})
    want = selection.random_masks(shapes, 0.2, seed=candidate_seed(4, 5, STREAM_PRUNE))
    got = s.maker.candidate(5)
    assert all(torch.equal(got[n], want[n]) for n in shapes)
