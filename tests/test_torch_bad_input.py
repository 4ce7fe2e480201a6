"""Hostile input to the PyTorch layer: each bad value gets a clear TypeError/ValueError."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from fspai import masks as M  # noqa: E402
from fspai import pai, selection  # noqa: E402
from fspai.sampler import FullSpectrumSampler  # noqa: E402


def _net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    net.input_shape = (6,)
    return net


def _batches(bad=None):
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(4, 6, generator=g) for _ in range(3)]
    if bad is not None:
        xs[1][2, 3] = bad
    return [(x, torch.randint(0, 3, (4,), generator=g)) for x in xs]


@pytest.mark.parametrize("method", ["snip", "grasp", "itersnip"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_in_scoring_batches_is_an_error(method, bad):
    with pytest.raises(ValueError, match="NaN/infinite"):
        pai.prune(_net(), method, 0.3, data=_batches(bad), rounds=2)
    ms = pai.prune(_net(), method, 0.3, data=_batches(), rounds=2)
    assert all(int(m.sum()) > 0 for m in ms.values())


@pytest.mark.parametrize("method", ["random", "erk", "magnitude", "synflow"])
def test_density_too_small_for_one_weight_per_layer(method):
    with pytest.raises(ValueError, match="too small"):
        pai.prune(_net(), method, 1e-9)
    with pytest.raises(ValueError, match="too small"):
        pai.prune(_net(), "random", 0.01, scope="layer")      # 0.01 * 24 rounds to 0
    with pytest.raises(ValueError, match="too small"):
        selection.random_masks({"a": (10, 10)}, 1e-9)
    with pytest.raises(ValueError, match="density"):
        pai.prune(_net(), method, 0.0)


def test_one_density_rule_everywhere():
    net = _net()
    a = pai.prune(net, "random", np.float32(0.25), seed=1)
    b = pai.prune(net, "random", 0.25, seed=1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert selection.erk_densities({"a": (4, 4)}, np.float64(0.5)) == {"a": 0.5}
    FullSpectrumSampler(net, "random", np.float32(0.1))
    for bad in (True, np.bool_(True), "0.1", None):
        with pytest.raises(TypeError, match="density"):
            pai.prune(net, "random", bad)
        with pytest.raises(TypeError, match="density"):
            FullSpectrumSampler(net, "random", bad)
    for bad in (float("nan"), float("inf"), 1.5, -0.1):
        with pytest.raises(ValueError, match="density"):
            pai.prune(net, "random", bad)


def test_topk_ties_go_to_the_lower_index_like_a_stable_sort():
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        flat = torch.randint(0, 4, (50,), generator=g).double()
        flat[torch.randint(0, 50, (5,), generator=g)] = float("-inf")
        for k in (0, 1, 7, 25, 49, 50):
            want = torch.zeros(50, dtype=torch.bool)
            want[torch.sort(flat, descending=True, stable=True).indices[:k]] = True
            assert torch.equal(selection.topk_mask(flat, k), want)


@pytest.mark.parametrize("layers", [
    {"0.weight": [8, 6], "2.weight": {"shape": [3, 8], "kept": 5}},
    {"0.weight": {"shape": "8x6", "kept": 1}, "2.weight": {"shape": [3, 8], "kept": 5}},
    {"0.weight": {"shape": [8, 6], "kept": True}, "2.weight": {"shape": [3, 8], "kept": 5}},
    {"0.weight": None, "2.weight": {"shape": [3, 8], "kept": 5}},
])
def test_sidecar_with_malformed_layers_is_a_value_error(tmp_path, layers):
    path = tmp_path / "m.pt"
    M.save_masks(path, pai.prune(_net(), "random", 0.5))
    side = tmp_path / "m.pt.json"
    obj = json.loads(side.read_text())
    obj["layers"] = layers
    side.write_text(json.dumps(obj))
    with pytest.raises(ValueError, match="layer|layers"):
        M.load_masks(path)


def test_device_that_does_not_exist_is_a_value_error():
    from fspai._torch_utils import resolve_device
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")
        with pytest.raises(ValueError, match="cuda"):
            pai.prune(_net(), "magnitude", 0.5, device="cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu7")


def test_importing_the_core_does_not_import_torch():
    code = ("import sys, fspai\nfrom fspai import *\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nprint('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_grasp_temperature_and_unknown_options_are_checked():
    with pytest.raises(ValueError, match="temperature"):
        pai.prune(_net(), "grasp", 0.3, data=_batches(), temperature=math.nan)
    with pytest.raises(ValueError, match="synflow_bias"):
        pai.prune(_net(), "synflow", 0.3, synflow_bias="both")
    with pytest.raises(ValueError, match="rounds"):
        pai.prune(_net(), "synflow", 0.3, rounds=0)


def test_model_sizes_and_imp_length_are_checked(digits):
    from fspai import models, train
    with pytest.raises(ValueError, match="hidden"):
        models.build("mlp", 10, input_shape=(64,), hidden=(0, 0))
    with pytest.raises(TypeError, match="widht"):
        models.build("resnet18", 10, widht=8)
    net = models.build("mlp", 10, input_shape=(64,), hidden=(8,), seed=0)
    with pytest.raises(ValueError, match="steps= or epochs="):
        pai.imp(net, digits, 0.5, rounds=1, rewind_to=2)
    with pytest.raises(ValueError, match="rewind_to"):
        pai.imp(net, digits, 0.5, rounds=1, steps=3, rewind_to=5)
    with pytest.raises(TypeError, match="density"):
        train.fit_set(net, digits, density=True, steps=2, progress=False)


def test_data_options_are_checked():
    from fspai import data
    with pytest.raises(TypeError, match="batch_sise"):
        data.load("digits", batch_sise=8)
    with pytest.raises(TypeError, match="batch_size"):
        data.load("digits", batch_size=8.5)
    with pytest.raises(ValueError, match="batch_size"):
        data.load("digits", batch_size=0)
