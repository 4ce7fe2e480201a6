"""fspai.masks: attach/extract, validation, optimizer steps, mask files."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")
nn = torch.nn
from torch.nn.utils import prune as tprune  # noqa: E402

from fspai import masks as M  # noqa: E402


def small_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 18, 8), nn.ReLU(), nn.Linear(8, 3))


def random_masks(net, density=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(p.shape, generator=g) < density
            for k, p in M.prunable_parameters(net).items()}


def snapshot(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------

def test_prunable_parameters_names_and_exclusions():
    net = small_net()
    params = M.prunable_parameters(net)
    assert list(params) == ["0.weight", "4.weight", "6.weight"]      # no biases, no BatchNorm
    assert all(isinstance(p, nn.Parameter) and p.dim() >= 2 for p in params.values())
    # the same names, pointing at the trainable originals, once masks are attached (both forms)
    for method in ("parametrize", "prune"):
        net = small_net()
        M.apply_masks(net, random_masks(net), method=method)
        p2 = M.prunable_parameters(net)
        assert list(p2) == ["0.weight", "4.weight", "6.weight"]
        assert all(p.requires_grad for p in p2.values())


@pytest.mark.parametrize("method", ["parametrize", "prune"])
def test_apply_extract_roundtrip(method):
    net = small_net()
    ms = random_masks(net)
    M.apply_masks(net, ms, method=method)
    keys = set(net.state_dict())
    if method == "parametrize":
        assert "0.parametrizations.weight.original" in keys
        assert "0.parametrizations.weight.0.mask" in keys
    else:
        assert {"0.weight_orig", "0.weight_mask"} <= keys
    got = M.extract_masks(net)
    assert set(got) == set(ms)
    for k in ms:
        assert got[k].dtype == torch.bool and torch.equal(got[k], ms[k])
    eff = M.masked_weights(net)
    for k, w in eff.items():
        assert torch.all(w[~ms[k]] == 0)
    net(torch.randn(5, 1, 20))  # forward works
    for k in ms:     # the live weight used by forward is masked too
        mod = net.get_submodule(k.rsplit(".", 1)[0])
        assert torch.all(mod.weight[~ms[k]] == 0)


def test_extract_masks_made_by_torch_prune_directly():
    net = small_net()
    tprune.l1_unstructured(net[0], "weight", amount=0.5)
    tprune.random_unstructured(net[4], "weight", amount=0.3)
    tprune.l1_unstructured(net[4], "weight", amount=0.2)           # stacked: PruningContainer
    tprune.global_unstructured([(net[6], "weight")], pruning_method=tprune.L1Unstructured,
                               amount=7)
    got = M.extract_masks(net)
    assert set(got) == {"0.weight", "4.weight", "6.weight"}
    assert torch.equal(got["0.weight"], net[0].weight_mask.bool())
    assert torch.equal(got["4.weight"], net[4].weight_mask.bool())
    assert int((~got["6.weight"]).sum()) == 7
    assert int(got["0.weight"].sum()) == net[0].weight.numel() // 2
    # prune on a non-"weight" tensor is read too
    tprune.random_unstructured(net[4], "bias", amount=0.5)
    assert "4.bias" in M.extract_masks(net)


def test_wrappers_are_looked_through():
    net = small_net()
    wrapped = nn.DataParallel(net)                    # same names as DDP's .module
    assert list(M.prunable_parameters(wrapped)) == list(M.prunable_parameters(net))
    ms = random_masks(net)
    M.apply_masks(wrapped, ms)
    assert all(torch.equal(v, ms[k]) for k, v in M.extract_masks(net).items())


def test_extract_on_unmasked_model_is_empty():
    assert M.extract_masks(small_net()) == {}


def test_unknown_and_missing_keys_raise_keyerror():
    net = small_net()
    ms = random_masks(net)
    before = snapshot(net)
    bad = dict(ms, **{"nope.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(KeyError, match="nope.weight"):
        M.apply_masks(net, bad)
    partial = {"0.weight": ms["0.weight"]}
    with pytest.raises(KeyError, match="4.weight"):
        M.apply_masks(net, partial)
    assert same_state(before, snapshot(net))
    M.apply_masks(net, partial, strict=False)
    assert set(M.extract_masks(net)) == {"0.weight"}


def test_invalid_values_and_shapes_name_the_layer_and_apply_nothing():
    net = small_net()
    ms = random_masks(net)
    before = snapshot(net)
    bad = dict(ms)
    bad["4.weight"] = ms["4.weight"].float() * 2.0
    with pytest.raises(ValueError, match="4.weight"):
        M.apply_masks(net, bad)
    bad = dict(ms)
    bad["6.weight"] = torch.ones(8, 3, dtype=torch.bool)            # transposed
    with pytest.raises(ValueError, match=r"6\.weight.*\(8, 3\).*\(3, 8\)"):
        M.apply_masks(net, bad)
    assert same_state(before, snapshot(net))                        # the valid layers untouched
    assert M.extract_masks(net) == {}


def test_numpy_and_01_masks_are_accepted():
    net = small_net()
    ms = random_masks(net)
    mixed = {"0.weight": ms["0.weight"].numpy(), "4.weight": ms["4.weight"].float(),
             "6.weight": ms["6.weight"].to(torch.uint8).numpy()}
    M.apply_masks(net, mixed)
    for k, v in M.extract_masks(net).items():
        assert torch.equal(v, ms[k])


@pytest.mark.parametrize("method", ["parametrize", "prune"])
@pytest.mark.parametrize("opt_name", ["sgd", "adam", "adamw"])
def test_pruned_weights_stay_zero_through_optimizer_steps(method, opt_name):
    net = small_net()
    ms = random_masks(net, density=0.3)
    with torch.no_grad():                       # make pruned entries non-zero before masking
        for p in M.prunable_parameters(net).values():
            p.add_(1.0)
    M.apply_masks(net, ms, method=method)
    if opt_name == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    elif opt_name == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=0.05, weight_decay=0.1)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=0.05, weight_decay=0.1)
    start = {k: v.clone() for k, v in M.masked_weights(net).items()}
    g = torch.Generator().manual_seed(1)
    for _ in range(15):
        x = torch.randn(8, 1, 20, generator=g)
        loss = net(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    eff = M.masked_weights(net)
    raw = M.prunable_parameters(net)
    for k, m in ms.items():
        assert torch.count_nonzero(eff[k][~m]) == 0
        assert torch.count_nonzero(raw[k].detach()[~m]) == 0       # stored originals too
        assert not torch.equal(eff[k][m], start[k][m])              # kept weights did train
    net(torch.randn(2, 1, 20))
    for k, m in ms.items():
        mod = net.get_submodule(k.rsplit(".", 1)[0])
        assert torch.count_nonzero(mod.weight.detach()[~m]) == 0


def test_reapply_replaces_in_place_and_switches_form():
    net = small_net()
    m1, m2 = random_masks(net, seed=1), random_masks(net, seed=2)
    M.apply_masks(net, m1)
    buf = net[4].parametrizations.weight[0].mask
    M.apply_masks(net, m2)
    assert net[4].parametrizations.weight[0].mask is buf             # same buffer object
    assert torch.equal(M.extract_masks(net)["4.weight"], m2["4.weight"])
    M.apply_masks(net, m1, method="prune")
    assert "4.weight_mask" in net.state_dict()
    assert "4.parametrizations.weight.original" not in net.state_dict()
    for k, v in M.extract_masks(net).items():
        assert torch.equal(v, m1[k])
        # weights were baked under m2 when the parametrization was removed
        assert torch.count_nonzero(M.masked_weights(net)[k][~(m1[k] & m2[k])]) == 0


@pytest.mark.parametrize("method", ["parametrize", "prune"])
def test_update_masks_keeps_form(method):
    net = small_net()
    M.apply_masks(net, random_masks(net, seed=1), method=method)
    m2 = random_masks(net, seed=2)
    M.update_masks(net, m2)
    assert ("4.weight_mask" in net.state_dict()) == (method == "prune")
    for k, v in M.extract_masks(net).items():
        assert torch.equal(v, m2[k])
        assert torch.count_nonzero(M.prunable_parameters(net)[k].detach()[~m2[k]]) == 0
    with pytest.raises(KeyError):
        M.update_masks(small_net(), m2)


@pytest.mark.parametrize("method", ["parametrize", "prune"])
def test_remove_masks_bakes_weights(method):
    net = small_net()
    ms = random_masks(net)
    M.apply_masks(net, ms, method=method)
    eff = M.masked_weights(net)
    M.remove_masks(net)
    assert M.extract_masks(net) == {}
    assert set(net.state_dict()) == set(small_net().state_dict())
    for k, w in M.prunable_parameters(net).items():
        assert torch.equal(w.detach(), eff[k])


def test_density_helpers():
    ms = {"a": torch.tensor([True, False, False, False]), "b": np.ones((2, 3), dtype=bool)}
    assert M.realised_density(ms) == pytest.approx(7 / 10)
    assert M.layer_densities(ms) == {"a": 0.25, "b": 1.0}


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_save_load_roundtrip(tmp_path, suffix):
    net = small_net()
    ms = random_masks(net)
    path = M.save_masks(tmp_path / f"m{suffix}", ms, meta={"method": "snip", "seed": 3,
                                                           "density": 0.4, "note": "x"})
    side = json.loads((tmp_path / f"m{suffix}.json").read_text())
    assert side["format_version"] == M.FORMAT_VERSION
    assert side["method"] == "snip" and side["seed"] == 3 and side["target_density"] == 0.4
    assert side["density"] == pytest.approx(M.realised_density(ms))
    assert side["layers"]["4.weight"]["shape"] == [8, 72]
    assert side["layers"]["4.weight"]["density"] == pytest.approx(float(ms["4.weight"].float().mean()))
    assert side["checksum"].startswith("sha256:") and side["meta"] == {"note": "x"}
    got = M.load_masks(path)
    assert set(got) == set(ms)
    for k in ms:
        assert got[k].dtype == torch.bool and torch.equal(got[k], ms[k])
    if suffix == ".pt":   # plain dict of bool tensors, safe to load
        raw = torch.load(path, weights_only=True)
        assert all(v.dtype == torch.bool for v in raw.values())
    net2 = small_net(seed=5)
    M.apply_masks(net2, got)
    assert all(torch.equal(v, ms[k]) for k, v in M.extract_masks(net2).items())


def _saved(tmp_path, suffix=".pt"):
    net = small_net()
    ms = random_masks(net)
    return net, ms, M.save_masks(tmp_path / f"m{suffix}", ms, meta={"method": "random"})


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_truncated_file(tmp_path, suffix):
    _, _, path = _saved(tmp_path, suffix)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"m\.(pt|npz).*(truncated|corrupt)"):
        M.load_masks(path)


def test_bad_checksum(tmp_path):
    _, _, path = _saved(tmp_path)
    side_path = tmp_path / "m.pt.json"
    side = json.loads(side_path.read_text())
    side["checksum"] = "sha256:" + "0" * 64
    side_path.write_text(json.dumps(side))
    with pytest.raises(ValueError, match="checksum"):
        M.load_masks(path)


def test_content_change_with_same_counts_is_caught(tmp_path):
    _, ms, path = _saved(tmp_path)
    m = ms["4.weight"].clone().flatten()
    on, off = int(m.nonzero()[0]), int((~m).nonzero()[0])
    m[on], m[off] = False, True                                     # same nnz, other topology
    torch.save(dict(ms, **{"4.weight": m.view(8, 72)}), path)
    with pytest.raises(ValueError, match="checksum"):
        M.load_masks(path)


def test_shape_mismatch_in_file(tmp_path):
    _, ms, path = _saved(tmp_path)
    torch.save(dict(ms, **{"6.weight": torch.ones(3, 4, dtype=torch.bool)}), path)
    with pytest.raises(ValueError, match=r"6\.weight.*shape"):
        M.load_masks(path)


def test_wrong_version_and_missing_sidecar(tmp_path):
    _, _, path = _saved(tmp_path)
    side_path = tmp_path / "m.pt.json"
    side = json.loads(side_path.read_text())
    side["format_version"] = 99
    side_path.write_text(json.dumps(side))
    with pytest.raises(ValueError, match="version 99"):
        M.load_masks(path)
    side_path.write_text("{not json")
    with pytest.raises(ValueError, match=r"m\.pt\.json"):
        M.load_masks(path)
    side_path.unlink()
    with pytest.raises(ValueError, match="sidecar"):
        M.load_masks(path)
    assert set(M.load_masks(path, require_sidecar=False)) == {"0.weight", "4.weight", "6.weight"}


def test_missing_layer_and_non_bool_values_in_file(tmp_path):
    _, ms, path = _saved(tmp_path)
    torch.save({k: v for k, v in ms.items() if k != "0.weight"}, path)
    with pytest.raises(ValueError, match="0.weight"):
        M.load_masks(path)
    torch.save(dict(ms, **{"0.weight": ms["0.weight"].float() * 3}), path)
    with pytest.raises(ValueError, match="0.weight"):
        M.load_masks(path)


def test_masks_for_another_model_apply_nothing(tmp_path):
    _, _, path = _saved(tmp_path)
    other = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 18, 16), nn.ReLU(), nn.Linear(16, 3))
    before = snapshot(other)
    with pytest.raises(ValueError, match="4.weight"):
        M.apply_masks(other, M.load_masks(path))
    assert same_state(before, snapshot(other)) and M.extract_masks(other) == {}


def test_unsupported_suffix(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        M.save_masks(tmp_path / "m.txt", {"a": torch.ones(2, 2, dtype=torch.bool)})
