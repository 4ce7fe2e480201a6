"""Model-level tables: torch modules, state dicts, dicts of arrays; CSV/JSON export."""
import csv
import json
import math

import numpy as np
import pytest

import fspai


def test_dict_of_arrays_matches_layer_metrics(tmp_path):
    rng = np.random.default_rng(0)
    masks = {"conv.weight": rng.random((32, 16, 3, 3)) < 0.1, "fc.weight": rng.random((10, 64)) < 0.3}
    weights = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in masks.items()}
    table = fspai.model_metrics(masks, weights)
    assert table.names() == list(masks)
    for name in masks:
        ref = fspai.layer_metrics(masks[name], weights[name], name=name)
        assert table[name] == ref
    rec = table["conv.weight"]
    assert rec.shape == (32, 16, 3, 3) and rec.n_cols == 144 and rec.density == pytest.approx(masks["conv.weight"].mean())
    table.to_csv(tmp_path / "m.csv")
    with open(tmp_path / "m.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == list(masks) and "coord_weighted_gap" in rows[0]
    data = json.loads(table.to_json(tmp_path / "m.json"))
    assert len(data["layers"]) == 2 and "ramanujan_fraction" in data["summary"]
    assert table.mean_coordinate_norm() == pytest.approx(np.mean([r.coordinate_norm for r in table]))
    assert "| name |" in table.to_markdown()
    with pytest.raises(KeyError, match="no layer named"):
        table["nope"]


def test_weights_only_dict_uses_nonzero_pattern_and_skips_1d():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((20, 30)) * (rng.random((20, 30)) < 0.2)
    t = fspai.model_metrics({"a.weight": w, "a.bias": np.ones(20)})
    assert t.names() == ["a.weight"] and t["a.weight"].edges == int((w != 0).sum())
    assert t["a.weight"].weighted_gap == pytest.approx(fspai.weighted_gap(w != 0, w))


def test_torch_model_with_attached_masks_and_prune_state_dict():
    torch = pytest.importorskip("torch")
    from torch import nn
    import torch.nn.utils.prune as prune

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 6 * 6, 10))
    prune.random_unstructured(model[0], "weight", amount=0.5)
    prune.l1_unstructured(model[3], "weight", amount=0.9)
    table = fspai.model_metrics(model)
    assert table.names() == ["0.weight", "3.weight"]
    assert table["3.weight"].edges == int(model[3].weight_mask.sum())
    ref = fspai.layer_metrics(model[3].weight_mask, (model[3].weight_orig * model[3].weight_mask).detach(),
                              name="3.weight")
    assert table["3.weight"] == ref
    # the same through the pruned state dict (weight_orig / weight_mask keys)
    t2 = fspai.model_metrics(model.state_dict())
    assert t2.names() == ["0.weight", "3.weight"]
    assert t2["3.weight"].weighted_gap == pytest.approx(table["3.weight"].weighted_gap)


def test_dense_model_without_masks():
    torch = pytest.importorskip("torch")
    from torch import nn

    model = nn.Sequential(nn.Linear(8, 6), nn.Linear(6, 3))
    t = fspai.model_metrics(model, convention="iclr23")
    assert len(t) == 2 and all(r.density == 1.0 for r in t)
    assert all(abs(r.mu_hat) <= 1e-7 * r.mu0 for r in t)  # dense 0/1 pattern is rank 1
    assert not math.isnan(t.summary()["weighted_gap"])


def test_json_export_is_strict_and_scipy_masks_are_masks(tmp_path):
    import scipy.sparse as sp

    tiny = np.zeros((4, 4), bool)
    tiny[0, 0] = True  # every gap undefined -> NaN in the table, null in JSON
    rng = np.random.default_rng(2)
    big = rng.random((20, 30)) < 0.3
    table = fspai.model_metrics({"a.weight": sp.csr_matrix(tiny), "b.weight": sp.csr_array(big)})
    assert math.isnan(table["a.weight"].delta_r) and table["a.weight"].reason
    assert math.isnan(table["b.weight"].weighted_gap)  # masks only: no weights
    text = table.to_json(tmp_path / "t.json")
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["layers"][0]["delta_r"] is None and data["layers"][1]["edges"] == int(big.sum())
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]  # written atomically, no temporary left
