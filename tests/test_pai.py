"""fspai.pai: PaI methods (densities, determinism, definitions, orderings) and IMP."""
from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")
nn = torch.nn
F = torch.nn.functional

from fspai import masks as M  # noqa: E402
from fspai import models, pai, selection  # noqa: E402

ALL = list(pai.METHODS)


def conv_net(seed=0):
    """Conv1d + BN + Linear on (1, 20) inputs: 5 prunable layers, ~600 weights."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv1d(1, 6, 5, padding=2), nn.BatchNorm1d(6), nn.ReLU(),
        nn.Conv1d(6, 8, 3, padding=1), nn.BatchNorm1d(8), nn.ReLU(),
        nn.Conv1d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(80, 12), nn.ReLU(), nn.Linear(12, 4))
    net.input_shape = (1, 20)
    return net


@pytest.fixture
def loader(make_loader):
    return make_loader(n=64, shape=(1, 20), classes=4, batch_size=16)


def kept(masks):
    return sum(int(m.sum()) for m in masks.values())


def total(masks):
    return sum(m.numel() for m in masks.values())


OPTS = {"synflow": {"rounds": 20}, "itersnip": {"rounds": 10}}


# ---------------------------------------------------------------------------------------------
# Density, determinism, scope
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("density", [0.05, 0.3])
def test_realised_density_matches_target(method, scope, density, loader):
    net = conv_net()
    ms = pai.prune(net, method, density, data=loader, scope=scope, seed=1, **OPTS.get(method, {}))
    assert set(ms) == set(M.prunable_parameters(net))
    assert all(m.dtype == torch.bool and m.device.type == "cpu" for m in ms.values())
    if scope == "global" or method == "erk":        # ERK sets per-layer densities itself
        assert abs(kept(ms) - density * total(ms)) <= 1.0
    else:
        assert all(abs(int(m.sum()) - density * m.numel()) <= 0.5 + 1e-9 for m in ms.values())
    assert pai.realised_density(ms) == pytest.approx(density, abs=1.0 / total(ms) * len(ms))


@pytest.mark.parametrize("method", ALL)
def test_deterministic_with_seed(method, loader):
    net = conv_net()
    a = pai.prune(net, method, 0.2, data=loader, seed=3, **OPTS.get(method, {}))
    b = pai.prune(net, method, 0.2, data=loader, seed=3, **OPTS.get(method, {}))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", ["random", "erk"])
def test_random_methods_depend_on_seed(method):
    net = conv_net()
    a, b = pai.prune(net, method, 0.2, seed=0), pai.prune(net, method, 0.2, seed=1)
    assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", ["magnitude", "snip", "synflow"])
def test_global_vs_layer_scope(method, loader):
    net = conv_net()
    g = pai.prune(net, method, 0.2, data=loader, scope="global", **OPTS.get(method, {}))
    lay = pai.prune(net, method, 0.2, data=loader, scope="layer", **OPTS.get(method, {}))
    dens_l = M.layer_densities(lay)
    assert all(abs(d - 0.2) <= 0.5 / m.numel() + 1e-12 for d, m in zip(dens_l.values(), lay.values()))
    dens_g = M.layer_densities(g)
    assert max(dens_g.values()) - min(dens_g.values()) > 0.05       # global allocates unevenly
    # per layer, the global mask is the top of the same scores: layer masks of equal size agree
    for k in g:
        if int(g[k].sum()) == int(lay[k].sum()) and method == "magnitude":
            assert torch.equal(g[k], lay[k])


# ---------------------------------------------------------------------------------------------
# The model, the RNG and the loader are left as they were
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("train_mode", [False, True])
def test_model_left_unmodified(method, train_mode, loader):
    net = conv_net()
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    gen_state = loader.generator.get_state()
    pai.prune(net, method, 0.1, data=loader, seed=0, train_mode=train_mode,
              **OPTS.get(method, {}))
    after = net.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)     # weights and BN stats
    assert net.training and all(m.training for m in net.modules())
    assert all(p.grad is None for p in net.parameters())
    assert M.extract_masks(net) == {}
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(loader.generator.get_state(), gen_state)


def test_pruning_a_masked_model_leaves_its_masks(loader):
    net = conv_net()
    first = pai.prune(net, "random", 0.5, seed=0)
    M.apply_masks(net, first)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    second = pai.prune(net, "magnitude", 0.2)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert all(not torch.any(second[k] & ~first[k]) for k in first)  # pruned weights are 0


# ---------------------------------------------------------------------------------------------
# Published definitions
# ---------------------------------------------------------------------------------------------

def _topk(scores, density):
    flat = torch.cat([s.flatten() for s in scores.values()])
    k = round(density * flat.numel())
    thr = torch.sort(flat, descending=True).values[k - 1]
    return {n: s >= thr for n, s in scores.items()}, thr


def _fixed_loader(make_loader):
    ld = make_loader(n=48, shape=(1, 20), classes=4, batch_size=16)
    return torch.utils.data.DataLoader(ld.dataset, batch_size=16, shuffle=False)


def test_snip_is_abs_grad_times_weight(make_loader):
    ld = _fixed_loader(make_loader)
    net = conv_net().eval()
    net.zero_grad()
    for x, y in ld:
        F.cross_entropy(net(x), y).backward()
    scores = {n: (p.grad * p).abs().detach() for n, p in M.prunable_parameters(net).items()}
    ref, _ = _topk(scores, 0.2)
    got = pai.prune(conv_net(), "snip", 0.2, data=ld)
    assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_grasp_removes_largest_minus_theta_hg(make_loader):
    ld = _fixed_loader(make_loader)
    net = conv_net().eval()
    params = M.prunable_parameters(net)
    plist = list(params.values())
    T = 200.0
    g_stop = [torch.zeros_like(p) for p in plist]
    for x, y in ld:
        for s, g in zip(g_stop, torch.autograd.grad(F.cross_entropy(net(x) / T, y), plist)):
            s += g
    hg = [torch.zeros_like(p) for p in plist]
    for x, y in ld:
        grads = torch.autograd.grad(F.cross_entropy(net(x) / T, y), plist, create_graph=True)
        z = sum((s * g).sum() for s, g in zip(g_stop, grads))
        for acc, h in zip(hg, torch.autograd.grad(z, plist)):
            acc += h
    S = {n: -(p * h).detach() for (n, p), h in zip(params.items(), hg)}   # GraSP's score
    ref, _ = _topk({n: -s for n, s in S.items()}, 0.2)                   # keep the smallest S
    got = pai.prune(conv_net(), "grasp", 0.2, data=ld)
    assert all(torch.equal(got[k], ref[k]) for k in ref)
    s_kept = torch.cat([S[k][got[k]] for k in S])
    s_removed = torch.cat([S[k][~got[k]] for k in S])
    assert s_kept.max() <= s_removed.min()


def test_synflow_single_round_is_path_norm_score():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Linear(5, 4, bias=False),
                        nn.ReLU(), nn.Linear(4, 3, bias=False))
    W = [net[i].weight.detach().double().abs() for i in (0, 2, 4)]
    one = lambda n: torch.ones(n, dtype=torch.float64)  # noqa: E731
    # R = 1^T |W3||W2||W1| 1 ; dR/dW1 = (1^T|W3||W2|)^T 1^T, etc.
    left = [one(3) @ W[2] @ W[1], one(3) @ W[2], one(3)]
    right = [one(6), W[0] @ one(6), W[1] @ W[0] @ one(6)]
    scores = {f"{i}.weight": (torch.outer(l, r) * w).float()
              for i, l, r, w in zip((0, 2, 4), left, right, W)}
    ref, _ = _topk(scores, 0.3)
    got = pai.prune(net, "synflow", 0.3, rounds=1, input_shape=(6,))
    assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_synflow_defaults_100_rounds_exponential(monkeypatch):
    calls = []
    from fspai import scoring
    real = scoring.SynFlow.__call__
    monkeypatch.setattr(scoring.SynFlow, "__call__", lambda *a: calls.append(1) or real(*a))
    pai.prune(conv_net(), "synflow", 0.1)
    assert len(calls) == 100
    sched = pai._schedule(0.01, 100, "exponential")
    assert sched[-1] == pytest.approx(0.01)
    assert all(b / a == pytest.approx(0.01 ** 0.01) for a, b in zip(sched, sched[1:]))


def _alive_paths(ms, names):
    """Number of input->output paths through the masked MLP (product of 0/1 matrices)."""
    acc = None
    for n in names:
        m = ms[n].double()
        acc = m if acc is None else m @ acc
    return float(acc.sum())


def test_synflow_avoids_layer_collapse_where_magnitude_and_snip_collapse(digits):
    net = models.build("mlp", 10, input_shape=(64,), hidden=(128,) * 5, seed=0)
    names = list(M.prunable_parameters(net))
    res = {m: pai.prune(net, m, 0.001, data=digits, num_batches=2)
           for m in ("magnitude", "snip", "synflow")}
    for ms in res.values():
        assert kept(ms) == round(0.001 * total(ms))
    syn = res["synflow"]
    assert all(int(m.sum()) > 0 for m in syn.values())
    assert _alive_paths(syn, names) > 0                              # input reaches output
    for m in ("magnitude", "snip"):
        assert min(int(v.sum()) for v in res[m].values()) == 0       # some layer collapsed
        assert _alive_paths(res[m], names) == 0


def test_synflow_needs_an_input_shape():
    net = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ValueError, match="input_shape"):
        pai.prune(net, "synflow", 0.5)
    assert kept(pai.prune(net, "synflow", 0.5, input_shape=(4,), rounds=2)) == 6


# ---------------------------------------------------------------------------------------------
# ERK / ER
# ---------------------------------------------------------------------------------------------

def test_erk_clips_capacity_and_hits_the_budget():
    net = models.build("mlp", 10, input_shape=(64,), hidden=(256,), seed=0)
    shapes = {n: tuple(p.shape) for n, p in M.prunable_parameters(net).items()}
    d = pai.erk_densities(shapes, 0.5)
    assert d["out.weight"] == 1.0 and 0 < d["hidden.0.weight"] < 1     # clipped small layer
    n = {k: math.prod(s) for k, s in shapes.items()}
    assert sum(d[k] * n[k] for k in n) == pytest.approx(0.5 * sum(n.values()))
    ms = pai.prune(net, "erk", 0.5)
    assert bool(ms["out.weight"].all())
    assert kept(ms) == round(0.5 * total(ms))


def test_erk_and_er_allocation_formulas():
    shapes = {"a": (16, 8, 3, 3), "b": (32, 16, 3, 3), "c": (10, 64)}
    erk = pai.erk_densities(shapes, 0.05)
    er = pai.erk_densities(shapes, 0.05, kernel=False)
    raw_erk = {k: sum(s) / math.prod(s) for k, s in shapes.items()}
    raw_er = {k: (s[0] + s[1]) / (s[0] * s[1]) for k, s in shapes.items()}
    for dens, raw in ((erk, raw_erk), (er, raw_er)):
        eps = {k: dens[k] / raw[k] for k in shapes}
        assert max(eps.values()) == pytest.approx(min(eps.values()))  # d_l proportional to raw_l
    assert erk != er
    ms = pai.prune(nn.Conv2d(8, 16, 3), "random", 0.3, distribution="er")
    assert kept(ms) == round(0.3 * 16 * 8 * 9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=6), st.floats(0.001, 1.0))
def test_apportion_is_exact_and_capped(sizes, density):
    caps = {f"l{i}": s for i, s in enumerate(sizes)}
    target = round(density * sum(sizes))
    ideal = {k: density * v for k, v in caps.items()}
    counts = selection._apportion(ideal, caps, target)
    assert sum(counts.values()) == target
    assert all(0 <= counts[k] <= caps[k] and abs(counts[k] - ideal[k]) < 1 + 1e-9 for k in caps)


# ---------------------------------------------------------------------------------------------
# Options and errors
# ---------------------------------------------------------------------------------------------

def test_exclude_keeps_layers_dense(loader):
    net = conv_net()
    ms = pai.prune(net, "snip", 0.1, data=loader, exclude=["0.weight"])
    assert bool(ms["0.weight"].all())
    rest = {k: v for k, v in ms.items() if k != "0.weight"}
    assert abs(kept(rest) - 0.1 * total(rest)) <= 1
    with pytest.raises(KeyError, match="nope"):
        pai.prune(net, "snip", 0.1, data=loader, exclude=["nope"])


def test_errors(loader):
    net = conv_net()
    with pytest.raises(ValueError, match="synflow"):
        pai.prune(net, "bogus", 0.1)
    for method in ("snip", "grasp", "itersnip"):
        with pytest.raises(ValueError, match="data"):
            pai.prune(net, method, 0.1)
    for d in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="density"):
            pai.prune(net, "random", d)
    with pytest.raises(ValueError, match="scope"):
        pai.prune(net, "random", 0.1, scope="network")
    with pytest.raises(TypeError, match="frobnicate"):
        pai.prune(net, "random", 0.1, frobnicate=1)


def test_density_one_keeps_everything(loader):
    ms = pai.prune(conv_net(), "snip", 1.0, data=loader)
    assert kept(ms) == total(ms)


def test_accepts_a_databundle(digits):
    net = models.build("mlp", 10, input_shape=digits.input_shape, hidden=(32,), seed=0)
    ms = pai.prune(net, "grasp", 0.1, data=digits, num_batches=2)
    assert kept(ms) == round(0.1 * total(ms))


# ---------------------------------------------------------------------------------------------
# IMP / lottery tickets
# ---------------------------------------------------------------------------------------------

def _mlp(seed=0):
    return models.build("mlp", 10, input_shape=(64,), hidden=(32,), seed=seed)


def test_imp_rewind_to_init(digits):
    net = _mlp()
    init = {k: v.clone() for k, v in net.state_dict().items()}
    res = pai.imp(net, digits, 0.25, rounds=2, steps=30, rewind_to=0, lr=0.05)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in init.items())   # untouched
    assert kept(res.masks) == round(0.25 * total(res.masks))
    assert [h["round"] for h in res.history] == [0, 1, 2]
    assert [h["density"] for h in res.history] == pytest.approx([1.0, 0.5, 0.25], abs=1e-3)
    assert all(h["test_acc"] is not None for h in res.history)
    assert res.rewind_to == 0
    assert all(torch.equal(res.state_dict[k], init[k]) for k in init)          # rewound to init
    ticket = res.apply(_mlp(seed=9))
    eff = M.masked_weights(ticket)
    for k, m in res.masks.items():
        assert torch.equal(eff[k], init[k] * m)


def test_imp_rewind_to_step_k(digits):
    from fspai import train

    net = _mlp()
    res = pai.imp(net, digits, 0.3, rounds=1, steps=20, rewind_to=5, lr=0.05,
                  train_final=False)
    ref = copy.deepcopy(net)
    train.fit(ref, digits, steps=5, lr=0.05, seed=0, progress=False)
    for k, v in ref.state_dict().items():
        assert torch.equal(res.state_dict[k], v)
    assert len(res.history) == 1 and res.rewind_to == 5
    # the ticket keeps the largest-magnitude weights of the trained dense network (global)
    trained = res.trained_state_dict
    kept_mag = torch.cat([trained[k].abs()[m] for k, m in res.masks.items()])
    pruned_mag = torch.cat([trained[k].abs()[~m] for k, m in res.masks.items()])
    assert float(kept_mag.min()) >= float(pruned_mag.max())
    with pytest.raises(ValueError, match="rewind_to"):
        pai.imp(net, digits, 0.3, rounds=1, steps=5, rewind_to=50, lr=0.05)
