"""Sampler throughput rows of bench/RESULTS.md (section 6).

* ``resnet18(method, population)``: :class:`fspai.sampler.FullSpectrumSampler` on CIFAR ResNet-18
  at 1 % density (θ* = the random init, the baseline precomputed, default threads), timings from
  ``SamplerResult.timings``: candidates generated *and* scored per second in the sampler loop.
* ``ranks(world)``: the sampler on the MNIST-1D CNN, random candidates at 5 %, population 2000
  (``SMOKE``: 60), K = 10, in a fresh process — one process with the default threads, or
  ``world`` ranks under ``python -m torch.distributed.run`` (gloo, one thread each). Returns the
  sampler loop's seconds on rank 0 (process start, data and baseline excluded).

Run as a script (``python -m bench.sampler_throughput``), it is the per-rank body of ``ranks``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
SMOKE = os.environ.get("FSPAI_BENCH_SMOKE", "") not in ("", "0")
DENSITY = 0.01
WIDTH = 8 if SMOKE else 64
CNN_POPULATION = 60 if SMOKE else 2000


def _loader(batch_size: int = 32, n: int = 256):
    import torch
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size,
                                       shuffle=True, generator=torch.Generator().manual_seed(0))


def make_sampler(method: str, population: int):
    """The ResNet-18 sampler of the benchmarks (also used by bench/bench_sampler.py)."""
    from fspai import models, pai
    from fspai.sampler import FullSpectrumSampler
    model = models.build("resnet18", 10, seed=0, width=WIDTH)
    loader = _loader()
    base = pai.prune(model, method, DENSITY, data=[next(iter(loader))], seed=0)
    return FullSpectrumSampler(model, method, DENSITY, data=loader, population=population,
                               save_interval=population, seed=0, baseline=base,
                               candidate_batches=1, progress=False)


def summary(result) -> dict:
    t = result.timings
    n = max(t["candidates"], 1.0)
    return {"candidates": int(t["candidates"]), "candidates_per_s": t["candidates_per_s"],
            "metrics_fraction": t["metrics_fraction"],
            "generate_s_per_candidate": t["generate_s"] / n,
            "score_s_per_candidate": t["score_s"] / n,
            "accepted": result.accepted, "realised_density": result.realised_density}


def resnet18(method: str, population: int) -> dict:
    return summary(make_sampler(method, population).run())


def ranks(world: int, timeout: float = 600.0) -> dict:
    """Rank 0's JSON line of a fresh run with ``world`` processes (1 = plain process)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(_REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    body = [sys.executable, "-m", "bench.sampler_throughput"]
    if world > 1:
        env["OMP_NUM_THREADS"] = "1"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={world}", "-m", "bench.sampler_throughput"]
    else:
        cmd = body
    out = subprocess.run(cmd, cwd=_REPO, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(lines[-1])


def _rank_body() -> None:
    import torch  # noqa: F401  (torch.distributed.run sets the rank environment)
    from fspai import data, models, pai
    from fspai.sampler import FullSpectrumSampler, dist_info, init_distributed
    init_distributed()
    rank, world = dist_info()
    b = data.load("mnist1d", batch_size=128, seed=0)
    m = models.build("cnn1d", 10, input_shape=b.input_shape, init="paper", seed=0)
    base = pai.prune(m, "random", 0.05, seed=0)
    s = FullSpectrumSampler(m, "random", 0.05, data=b.train_loader, population=CNN_POPULATION,
                            save_interval=10, seed=0, baseline=base, progress=False)
    r = s.run()
    if rank == 0:
        t = r.timings
        print(json.dumps({"world": world, "loop_s": t["loop_s"], "comm_s": t["comm_s"],
                          "population": CNN_POPULATION, "accepted": r.accepted,
                          "sources": [int(x) for x in sorted(set(r.sources.values()))]}), flush=True)


if __name__ == "__main__":
    _rank_body()
