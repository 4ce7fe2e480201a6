"""Full-Spectrum sampler throughput: candidates per second on CIFAR ResNet-18 at 1 % density.

Group ``sampler-resnet18-1%``: ``test_sampler[<method>]`` runs
:class:`fspai.sampler.FullSpectrumSampler` (θ* = the random init, the baseline mask precomputed)
for a small population and reports, in ``extra_info`` (from ``SamplerResult.timings``):

* ``candidates_per_s``: candidates generated *and* scored per second (the sampler loop),
* ``metrics_fraction``: share of generate+score time spent in ``fspai.coordinates`` (one batched
  C++ call per candidate, all 21 layers, 4 axes incl. the regular-subgraph decomposition),
* ``generate_s_per_candidate`` / ``score_s_per_candidate``.

Candidates: ``random`` (fresh uniform draw), ``erk`` (fresh ERK draw), ``magnitude``
(|θ* + noise|, top 1 % per layer), ``snip`` (SNIP on one
mini-batch of 32 synthetic CIFAR-shaped images; on a CPU this is dominated by ResNet-18's
forward/backward pass and by ``fspai.pai``'s global top-k).

``FSPAI_BENCH_SMOKE=1``: a width-8 ResNet-18 and 2 candidates (CI).
Standalone: ``PYTHONPATH=python python bench/bench_sampler.py`` prints the table.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # standalone: python bench/bench_sampler.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.sampler_throughput import DENSITY, SMOKE, WIDTH, make_sampler, summary as _summary

POPULATION = {"random": 2, "erk": 2, "magnitude": 2, "snip": 2} if SMOKE else {
    "random": 12, "erk": 12, "magnitude": 12, "snip": 4}
METHODS = list(POPULATION)


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
