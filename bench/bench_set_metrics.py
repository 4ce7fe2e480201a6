"""Cost of recording the fspai metrics at a SET topology update, relative to training.

Group ``set-metrics-<model>`` on MNIST-1D (generated locally; 4000 samples, batch 128, so 25
steps per epoch; FSPAI_BENCH_SMOKE=1: 500 samples):

* ``test_metrics_per_update``: what :func:`fspai.train.fit` runs after each SET update, i.e.
  ``fspai.model_metrics(masks, W*M)`` over every prunable layer plus the row conversion, on an
  ERK-10 % model after one SET update.
* ``test_train_epoch``: one epoch of fixed-mask training (SGD, same model and masks), without
  metrics.

``extra_info`` of the first holds ``epoch_s`` (median of 3 epochs timed in setup),
``metrics_over_epoch`` (one metrics record / one epoch) and ``overhead_every_N`` (the training-time
overhead of recording at every N steps, ``N = set_update_every``; 100 here, 1500 in SET-ITOP).
"""
from __future__ import annotations

import copy
import os
import statistics
import time

import pytest

torch = pytest.importorskip("torch")

SMOKE = os.environ.get("FSPAI_BENCH_SMOKE", "") not in ("", "0")
NUM_SAMPLES = 500 if SMOKE else 4000
UPDATE_EVERY = 100
MODELS = {
    "cnn1d": dict(name="cnn1d"),
    "mlp": dict(name="mlp", hidden=(256, 128)),
}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from fspai import data

    root = tmp_path_factory.mktemp("fspai_data")
    return data.load("mnist1d", root=root, num_samples=NUM_SAMPLES, batch_size=128, seed=0)


def _sparse_model(bundle, key):
    from fspai import masks, models, pai, train

    spec = dict(MODELS[key])
    net = models.build(spec.pop("name"), bundle.num_classes, input_shape=bundle.input_shape,
                       seed=0, **spec)
    masks.apply_masks(net, pai.prune(net, "erk", 0.1, seed=0))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x, y = next(iter(bundle.train_loader))
    for _ in range(3):                                  # non-trivial weights and momentum
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    train.set_update(net, 0.3, generator=torch.Generator().manual_seed(0), optimizer=opt)
    return net


def _epoch_seconds(net, bundle, repeats=3):
    from fspai import train

    times = []
    for _ in range(repeats):
        work = copy.deepcopy(net)
        t0 = time.perf_counter()
        train.fit(work, bundle.train_loader, epochs=1, lr=0.05, progress=False,
                  record_metrics=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@pytest.mark.needs_fspai
@pytest.mark.parametrize("key", list(MODELS))
def test_metrics_per_update(benchmark, bundle, key, fspai):
    from fspai import _fit, masks, train

    benchmark.group = f"set-metrics-{key}"
    net = _sparse_model(bundle, key)
    epoch_s = _epoch_seconds(net, bundle)
    rows = benchmark.pedantic(_fit._metrics_rows, args=(net, 100, 1, "neurips23"), rounds=10,
                              warmup_rounds=1, iterations=1)
    layers = list(masks.prunable_parameters(net))
    assert [r["name"] for r in rows] == layers
    assert all(r["step"] == 100 for r in rows)
    per_update = benchmark.stats.stats.median if benchmark.stats else float("nan")
    steps_per_epoch = len(bundle.train_loader)
    benchmark.extra_info.update(
        layers=len(layers), density=masks.realised_density(masks.extract_masks(net)),
        epoch_s=epoch_s, steps_per_epoch=steps_per_epoch,
        metrics_over_epoch=per_update / epoch_s,
        overhead_every_N=per_update / (epoch_s / steps_per_epoch * UPDATE_EVERY),
        N=UPDATE_EVERY)


@pytest.mark.parametrize("key", list(MODELS))
def test_train_epoch(benchmark, bundle, key):
    from fspai import train

    benchmark.group = f"set-metrics-{key}"
    net = _sparse_model(bundle, key)

    def one_epoch():
        work = copy.deepcopy(net)
        return train.fit(work, bundle.train_loader, epochs=1, lr=0.05, progress=False,
                         record_metrics=False)

    hist = benchmark.pedantic(one_epoch, rounds=3, warmup_rounds=1, iterations=1)
    assert hist.total_steps == len(bundle.train_loader)
    assert hist.epochs[-1]["density"] == pytest.approx(0.1, abs=1e-3)
