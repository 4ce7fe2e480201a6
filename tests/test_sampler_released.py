"""The ``released`` sampler protocol end to end: budgets, noise set, fresh iterSNIP batches per
round, rounds, snapshots only on the K grid, invalid Δr as +inf under ``layer-alt``."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fspai import models  # noqa: E402
from fspai.sampler import PROTOCOLS, FullSpectrumSampler, get_protocol  # noqa: E402
from fspai.sampler.candidates import CandidateMaker, _FreshBatches  # noqa: E402


def _mlp(seed=0):
    return models.build("mlp", 10, input_shape=(64,), hidden=(32,), seed=seed)


def test_protocols_are_data():
    r, f = PROTOCOLS["released"], PROTOCOLS["fspai"]
    assert (r.population, r.save_interval, r.rounds) == (2000, 10, 10)
    assert r.noise_methods == {"synflow", "itersnip"} and "magnitude" in f.noise_methods
    assert r.budget == "above-kth" and f.budget == "exact"
    assert r.theta == "shared-seed0" and f.theta == "per-seed"
    v = r.rule_values(np.array([[math.nan, 0.1, 0.2, 0.3, 1.0 - 1e-9]]))
    assert v.dtype == np.float32 and v[0, 0] == np.inf and v[0, 4] == 1.0
    w = f.rule_values(np.array([[math.nan, 0.1, 0.2, 0.3, 1.0 - 1e-9]]))
    assert w.dtype == np.float64 and w[0, 0] == 0.0 and w[0, 4] < 1.0
    with pytest.raises(ValueError, match="unknown sampler protocol"):
        get_protocol("paper")
    with pytest.raises(ValueError, match="unknown sampler protocol"):
        FullSpectrumSampler(_mlp(), "random", 0.1, protocol="paper")


def test_protocol_defaults_and_overrides():
    s = FullSpectrumSampler(_mlp(), "random", 0.1, protocol="released")
    assert (s.cfg.population, s.cfg.save_interval) == (2000, 10)
    s = FullSpectrumSampler(_mlp(), "random", 0.1, protocol="released", population=7)
    assert s.cfg.population == 7
    assert FullSpectrumSampler(_mlp(), "random", 0.1).cfg.population == 100


def test_released_random_candidates_keep_k_minus_one(digits):
    s = FullSpectrumSampler(_mlp(), "random", 0.1, data=digits.train_loader, population=4,
                            save_interval=2, protocol="released", keep_snapshots=True)
    r = s.run()
    n = sum(m.numel() for m in r.baseline.values())
    k = int((1 - (1 - 0.1)) * n)
    cand = s.maker.candidate(1)
    assert sum(int(m.sum()) for m in cand.values()) == k - 1
    assert s.maker.prune_options["keep_rule"] == "above-kth"


def test_released_magnitude_candidates_are_the_baseline(digits):
    """No noise for magnitude under ``released``: every candidate equals m0 (a no-op sampler);
    under ``fspai`` the noised candidates differ."""
    rel = FullSpectrumSampler(_mlp(), "magnitude", 0.1, protocol="released", population=2)
    base = rel.maker
    rel.run()
    c1 = base.candidate(1)
    assert all(torch.equal(c1[n], rel.maker.baseline()[n]) for n in c1)
    fs = FullSpectrumSampler(_mlp(), "magnitude", 0.1, population=2)
    fs.run()
    f1, f0 = fs.maker.candidate(1), fs.maker.baseline()
    assert any(not torch.equal(f1[n], f0[n]) for n in f1)


def test_released_itersnip_draws_fresh_batches_every_round(digits):
    s = FullSpectrumSampler(_mlp(), "itersnip", 0.1, data=digits.train_loader, population=1,
                            protocol="released", candidate_batches=1)
    s.prepare()
    data = s.maker._candidate_batches(1)
    assert isinstance(data, _FreshBatches)
    first = [b[1].tolist() for b in data]
    second = [b[1].tolist() for b in data]
    assert first != second                        # a new draw on every pass
    again = s.maker._candidate_batches(1)
    assert [b[1].tolist() for b in again] == first  # ... and a function of (seed, t, round)
    s.run()
    assert s.maker.prune_options["rounds"] == 10
    f = FullSpectrumSampler(_mlp(), "itersnip", 0.1, data=digits.train_loader, population=1,
                            candidate_batches=1)
    assert isinstance(f.maker._candidate_batches(1), list)


def test_released_snapshots_only_on_the_grid():
    def gen(t):
        g = torch.Generator().manual_seed(t)
        return {"hidden.0.weight": torch.rand((32, 64), generator=g) < 0.3 + 0.05 * t,
                "out.weight": torch.rand((10, 32), generator=g) < 0.3 + 0.05 * t}

    base = gen(0)
    def run(protocol):
        s = FullSpectrumSampler(_mlp(), "random", 0.3, population=5, save_interval=2,
                                protocol=protocol, generator=gen, baseline=base)
        return [sn.t for sn in s.run().snapshots]
    rel, fs = run("released"), run("fspai")
    assert all(t % 2 == 0 for t in rel)
    assert fs[-1] == 5 and rel[-1] != 5


def test_released_alt_rule_sees_undefined_delta_r_as_inf():
    """A layer whose degree test fails has an undefined Δr: under ``released`` + ``layer-alt``
    the rule sees +inf (NaN in the raw rows), under ``fspai`` the coordinate's 0."""
    sparse = {"hidden.0.weight": torch.zeros((32, 64), dtype=torch.bool),
              "out.weight": torch.ones((10, 32), dtype=torch.bool)}
    sparse["hidden.0.weight"][:, :2] = True                 # average left degree 2 < 3: invalid
    s = FullSpectrumSampler(_mlp(), "random", 0.3, population=1, rule="layer-alt",
                            protocol="released", generator=lambda t: sparse, baseline=sparse)
    r = s.run()
    assert math.isnan(r.baseline_scores["hidden.0.weight"].delta_r)
    assert not math.isnan(r.baseline_scores["out.weight"].delta_r)
    f = FullSpectrumSampler(_mlp(), "random", 0.3, population=1, rule="layer-alt",
                            generator=lambda t: sparse, baseline=sparse).run()
    assert f.baseline_scores["hidden.0.weight"].delta_r == 0.0
