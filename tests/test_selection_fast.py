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


# ---------------------------------------------------------------- the sampled threshold path
# Budgets of at most 1/8 over ≥ 4·2^16 scores first locate a threshold from a strided sample and
# partition only the scores above it; everything below checks that this is exactly the stable
# descending sort (lower position first among ties), over several tensors taken in order.

def _stable_ref(arrays, k):
    flat = np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays])
    keep = np.zeros(flat.size, dtype=bool)
    keep[np.argsort(-flat, kind="stable")[:k]] = True
    return np.split(keep, np.cumsum([a.size for a in arrays])[:-1])


def _layers(rng, kind, sizes):
    out = []
    for size in sizes:
        if kind == "normal32":
            a = rng.normal(size=size).astype(np.float32)
        elif kind == "ties":           # two decimals: thousands of ties at any threshold
            a = np.round(rng.normal(size=size), 2)
        elif kind == "few-values":      # ~50 distinct values: the sampled bound holds huge ties
            a = rng.integers(0, 50, size=size).astype(np.float32)
        elif kind == "dead":            # a third at -inf (weights outside `alive`)
            a = rng.normal(size=size)
            a[rng.random(size) < 0.3] = -np.inf
        else:                           # mixed widths across layers
            a = rng.normal(size=size).astype(np.float32 if size % 2 else np.float64)
        out.append(a)
    return out


@pytest.mark.parametrize("kind", ["normal32", "ties", "few-values", "dead", "mixed"])
@pytest.mark.parametrize("seed", range(3))
def test_sampled_topk_equals_stable_sort_over_several_tensors(kind, seed):
    rng = np.random.default_rng(seed)
    sizes = [int(x) for x in rng.integers(1, 200_000, size=int(rng.integers(2, 6)))] + [300_000]
    arrays = _layers(rng, kind, sizes)
    n = sum(sizes)
    tensors = [torch.from_numpy(a) for a in arrays]
    for k in (1, 7, n // 1000, n // 100, n // 9, n // 2, n - 1):
        got = selection._topk_tensors(tensors, k)
        for g, w in zip(got, _stable_ref(arrays, k)):
            assert torch.equal(g, torch.from_numpy(w)), (kind, seed, k)
        if len(tensors) == 1 or k in (n // 100,):
            flat = torch.from_numpy(np.concatenate([a.astype(np.float64) for a in arrays]))
            assert torch.equal(selection.topk_mask(flat, k), torch.from_numpy(np.concatenate(_stable_ref(arrays, k))))


def test_sampled_topk_partitions_only_the_candidates(monkeypatch):
    rng = np.random.default_rng(5)
    a = rng.normal(size=2_000_000)
    sizes = []
    real = np.partition

    def spy(x, kth, *args, **kw):
        sizes.append(np.asarray(x).size)
        return real(x, kth, *args, **kw)

    monkeypatch.setattr(selection.np, "partition", spy)
    keep = selection.topk_mask(torch.from_numpy(a), 20_000)
    assert int(keep.sum()) == 20_000 and max(sizes) < 200_000   # the sample and ~1.25·k candidates
    assert torch.equal(keep, torch.from_numpy(_stable_ref([a], 20_000)[0]))


def test_global_select_topk_matches_the_concatenated_selection():
    rng = np.random.default_rng(2)
    scores = {f"l{i}": torch.from_numpy(np.round(rng.normal(size=(64, 3 + i, 3, 3 * 97)), 1).astype(np.float32))
              for i in range(6)}
    scores["l2"][0, 0, 0, :5] = float("nan")     # NaN ranks lowest (never kept)
    for density in (0.003, 0.01, 0.2):
        got = selection.select_topk(scores, density)
        cleaned = [torch.nan_to_num(s, nan=-np.inf).numpy().ravel() for s in scores.values()]
        k = int(round(density * sum(s.numel() for s in scores.values())))
        for (name, g), w in zip(got.items(), _stable_ref(cleaned, k)):
            assert g.shape == scores[name].shape and torch.equal(g.flatten(), torch.from_numpy(w))


def test_topk_mask_with_nan_keeps_the_exact_path_semantics():
    # topk_mask on raw scores: numpy.partition ranks NaN above every number and the comparisons
    # never select it; the sampled path must not change what such an input returns.
    rng = np.random.default_rng(3)
    a = rng.normal(size=400_000)
    a[rng.choice(a.size, 50, replace=False)] = np.nan
    k = 4_000
    part = np.partition(a, a.size - k)
    thr = part[a.size - k]
    keep = a > thr
    keep[np.flatnonzero(a == thr)[:k - int(np.count_nonzero(part[a.size - k + 1:] > thr))]] = True
    assert torch.equal(selection.topk_mask(torch.from_numpy(a), k), torch.from_numpy(keep))
