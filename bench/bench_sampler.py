"""Full-Spectrum sampler throughput: candidates per second on CIFAR ResNet-18 at 1 % density.

Group ``sampler-resnet18-1%``: ``test_sampler[<method>]`` runs
:class:`fspai.sampler.FullSpectrumSampler` (θ* = the random init, the baseline mask precomputed)
for a small population and reports, in ``extra_info`` (from ``SamplerResult.timings``):

* ``candidates_per_s``: candidates generated *and* scored per second (the sampler loop),
* ``metrics_fraction``: share of generate+score time spent in ``fspai.coordinates`` (one batched
  C++ call per candidate, all 21 layers, 4 axes incl. the regular-subgraph decomposition),
* ``generate_s_per_candidate`` / ``score_s_per_candidate``.

Candidates: ``random`` (fresh uniform draw), ``erk`` (fresh ERK draw), ``snip`` (SNIP on one
mini-batch of 32 synthetic CIFAR-shaped images; on a CPU this is dominated by ResNet-18's
forward/backward pass and by ``fspai.pai``'s global top-k).

``FSPAI_BENCH_SMOKE=1``: a width-8 ResNet-18 and 2 candidates (CI).
Standalone: ``PYTHONPATH=python python bench/bench_sampler.py`` prints the table.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

SMOKE = os.environ.get("FSPAI_BENCH_SMOKE", "") not in ("", "0")
DENSITY = 0.01
WIDTH = 8 if SMOKE else 64
POPULATION = {"random": 2, "erk": 2, "snip": 2} if SMOKE else {"random": 12, "erk": 12,
                                                                "snip": 4}
METHODS = list(POPULATION)


def _loader(batch_size: int = 32, n: int = 256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                       batch_size=batch_size, shuffle=True,
                                       generator=torch.Generator().manual_seed(0))


def make_sampler(method: str, population: int):
    from fspai import models, pai
    from fspai.sampler import FullSpectrumSampler
    model = models.build("resnet18", 10, seed=0, width=WIDTH)
    loader = _loader()
    base = pai.prune(model, method, DENSITY, data=[next(iter(loader))], seed=0)
    return FullSpectrumSampler(model, method, DENSITY, data=loader, population=population,
                               save_interval=population, seed=0, baseline=base,
                               candidate_batches=1)


def _summary(result) -> dict:
    t = result.timings
    n = max(t["candidates"], 1.0)
    return {"candidates": int(t["candidates"]), "candidates_per_s": t["candidates_per_s"],
            "metrics_fraction": t["metrics_fraction"],
            "generate_s_per_candidate": t["generate_s"] / n,
            "score_s_per_candidate": t["score_s"] / n,
            "accepted": result.accepted, "realised_density": result.realised_density}


@pytest.mark.needs_fspai
@pytest.mark.parametrize("method", METHODS)
def test_sampler(benchmark, method, fspai):
    benchmark.group = "sampler-resnet18-1%"
    sampler = make_sampler(method, POPULATION[method])
    result = benchmark.pedantic(sampler.run, rounds=1, iterations=1, warmup_rounds=0)
    info = _summary(result)
    benchmark.extra_info.update(method=method, width=WIDTH, **info)
    assert info["candidates_per_s"] > 0
    assert 0.0 <= info["metrics_fraction"] <= 1.0
    assert set(result.masks) == set(result.baseline)


def main() -> int:
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo / "python"))
    print(f"Full-Spectrum sampler, CIFAR ResNet-18 (width {WIDTH}), density {DENSITY:g}, "
          f"torch threads {torch.get_num_threads()}")
    print("| method | candidates | candidates/s | generate s/cand | score s/cand | "
          "time in metrics |")
    print("|---|---|---|---|---|---|")
    for method in METHODS:
        info = _summary(make_sampler(method, POPULATION[method]).run())
        print(f"| {method} | {info['candidates']} | {info['candidates_per_s']:.2f} | "
              f"{info['generate_s_per_candidate']:.3f} | {info['score_s_per_candidate']:.3f} | "
              f"{100 * info['metrics_fraction']:.0f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
