"""fspai.selection: partition-based top-k, O(k) uniform draws, the released budget rules."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fspai import selection  # noqa: E402


@pytest.mark.parametrize("seed", range(4))
def test_topk_mask_equals_stable_sort_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(np.round(rng.normal(size=3000), 1))          # many ties
    for k in (0, 1, 17, 1500, 2999, 3000):
        ref = torch.zeros(x.numel(), dtype=torch.bool)
        ref[torch.from_numpy(np.argsort(-x.numpy(), kind="stable")[:k].copy())] = True
        assert torch.equal(selection.topk_mask(x, k), ref)


def test_select_above_kth_keeps_k_minus_one():
    s = torch.arange(20, dtype=torch.float64).flip(0) / 20
    assert int(selection.select_above_kth({"w": s}, 0.25)["w"].sum()) == 4
    t = s.clone()
    t[3] = t[4]
    keep = selection.select_above_kth({"a": t[:10], "b": t[10:]}, 0.25)
    assert int(keep["a"].sum() + keep["b"].sum()) == 3


def test_uniform_indices_exact_sorted_and_uniform():
    sizes = [30, 50, 20]
    rng = np.random.default_rng(0)
    hits = np.zeros(100)
    for _ in range(3000):
        parts = selection.uniform_indices(sizes, 10, rng)
        assert sum(len(p) for p in parts) == 10
        assert all(np.all(np.diff(p) > 0) and (len(p) == 0 or p.max() < n)
                   for p, n in zip(parts, sizes))
        hits[np.concatenate([p + o for p, o in zip(parts, (0, 30, 80))])] += 1
    assert np.all(np.abs(hits - 300) < 6 * np.sqrt(300 * 0.9))      # p = 0.1 per position


def test_random_masks_exact_budget_and_determinism():
    shapes = {"a": (40, 30), "b": (10, 50, 3)}
    m = selection.random_masks(shapes, 0.1, seed=3)
    assert sum(int(v.sum()) for v in m.values()) == round(0.1 * (1200 + 1500))
    m2 = selection.random_masks(shapes, 0.1, seed=3)
    assert all(torch.equal(m[n], m2[n]) for n in shapes)
    lay = selection.random_masks(shapes, 0.1, seed=3, scope="layer")
    assert int(lay["a"].sum()) == 120 and int(lay["b"].sum()) == 150


def test_erk_bernoulli_counts_follow_the_binomial_law():
    shapes = {"a": (40, 25)}
    dens = selection.erk_densities(shapes, 0.05)
    c = [int(selection.random_masks(shapes, 0.05, seed=s, distribution="erk",
                                    keep_rule="above-kth")["a"].sum()) for s in range(1500)]
    n, p = 1000, dens["a"]
    assert np.mean(c) == pytest.approx(n * p, abs=0.6)
    assert np.var(c) == pytest.approx(n * p * (1 - p), rel=0.15)
    exact = selection.random_masks(shapes, 0.05, seed=0, distribution="erk")
    assert int(exact["a"].sum()) == 50
    with pytest.raises(ValueError, match="keep_rule"):
        selection.random_masks(shapes, 0.05, distribution="erk", keep_rule="poisson")
    uni = selection.random_masks(shapes, 0.05, seed=1, keep_rule="above-kth")
    assert int(uni["a"].sum()) == 49                  # floor(0.05 * 1000) - 1


def test_prune_keep_rule_above_kth():
    from fspai.pai import prune
    net = torch.nn.Sequential(torch.nn.Linear(20, 10), torch.nn.ReLU(), torch.nn.Linear(10, 5))
    n = 20 * 10 + 10 * 5
    m = prune(net, "magnitude", 0.2, keep_rule="above-kth")
    # the released expression k = int((1 - (1 - D)) * N): 1 - 0.8 = 0.19999999999999996 -> 49
    assert sum(int(v.sum()) for v in m.values()) == int((1 - (1 - 0.2)) * n) - 1 == 48
    e = prune(net, "magnitude", 0.2)
    assert sum(int(v.sum()) for v in e.values()) == round(0.2 * n)
    with pytest.raises(ValueError, match="keep_rule"):
        prune(net, "magnitude", 0.2, keep_rule="nope")
    with pytest.raises(ValueError, match="global"):
        prune(net, "magnitude", 0.2, scope="layer", keep_rule="above-kth")
