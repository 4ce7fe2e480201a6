"""The bad-input table: clear TypeError/ValueError naming the argument and shape; never a crash."""
import numpy as np
import pytest
import scipy.sparse as sp

import fspai


@pytest.mark.parametrize("mask,exc,match", [
    (np.array(1.0), ValueError, r"at least 2 dims.*shape \(\)"),
    (np.ones(5), ValueError, r"at least 2 dims.*shape \(5,\)"),
    (np.array([[0, 2], [1, 0]]), ValueError, "not binary"),
    (np.array([[0.5, 1.0]]), ValueError, "not binary"),
    (np.array([[np.nan, 1.0]]), ValueError, "NaN"),
    (np.array([[None, 1]], dtype=object), TypeError, "object"),
    (np.array([["a", "b"]]), TypeError, "dtype"),
    ([[0, 1], [1, 0]], TypeError, "numpy array, torch tensor or scipy.sparse"),
    ("mask", TypeError, "numpy array"),
    (np.ones((2, 2), dtype=complex), TypeError, "dtype"),
])
def test_bad_masks(mask, exc, match):
    with pytest.raises(exc, match=match):
        fspai.ramanujan_gap(mask)


def test_mismatched_shapes_name_both():
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(5, 4\)"):
        fspai.weighted_gap(np.ones((4, 5)), np.ones((5, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(bad):
    w = np.ones((4, 5))
    w[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        fspai.weighted_gap(np.ones((4, 5)), w)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, bool])
def test_integer_weights_rejected(dtype):
    with pytest.raises(TypeError, match="weights must be float"):
        fspai.coordinate(np.ones((4, 5)), np.ones((4, 5), dtype=dtype))


def test_weighted_gap_needs_weight():
    with pytest.raises(ValueError, match="weight"):
        fspai.weighted_gap(np.ones((4, 5)), None)


def test_mixed_frameworks():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="different frameworks"):
        fspai.coordinate(torch.ones(4, 5), np.ones((4, 5)))
    with pytest.raises(TypeError, match="different frameworks"):
        fspai.coordinate(np.ones((4, 5)), torch.ones(4, 5))


def test_torch_dtypes_and_devices():
    torch = pytest.importorskip("torch")
    m = torch.rand(16, 8, 3) < 0.5
    for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        assert np.isfinite(fspai.weighted_gap(m, torch.randn(16, 8, 3).to(dt))) or True
    with pytest.raises(TypeError, match="float"):
        fspai.weighted_gap(m, torch.ones(16, 8, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="not binary"):
        fspai.ramanujan_gap(torch.full((4, 4), 3))


def test_oversized_layer_rejected_without_allocating():
    huge = sp.csr_matrix((1, 2**31))
    with pytest.raises(ValueError, match="2\\^31-1"):
        fspai.ramanujan_gap(huge)


def test_bad_options():
    with pytest.raises(ValueError, match="k must be"):
        fspai.singular_values(np.ones((3, 3)), k=0)
    with pytest.raises(ValueError, match="threads"):
        fspai.singular_values(np.ones((3, 3)), threads=-1)
    with pytest.raises(ValueError, match="tol"):
        fspai.singular_values(np.ones((3, 3)), tol=0.0)
    with pytest.raises(ValueError, match="edge_count"):
        fspai.narc(np.ones((5, 5)), edge_count="both")
    with pytest.raises(TypeError, match="Coordinate"):
        fspai.distance([1, 2, 3, 4])
    with pytest.raises(ValueError, match="differ in length"):
        c = fspai.Coordinate(1, 2, 3, 4)
        fspai.distance([c, c], [c])
    with pytest.raises(TypeError, match="sequence"):
        fspai.batch_singular_values(np.ones((3, 3)))
    with pytest.raises(ValueError, match="2 masks but 1 weights"):
        fspai.coordinates([np.ones((3, 3))] * 2, [np.ones((3, 3))])


def test_scipy_mask_values_checked():
    m = sp.csr_matrix(np.array([[0, 2.0], [1, 0]]))
    with pytest.raises(ValueError, match="not binary"):
        fspai.ramanujan_gap(m)
    # explicit zeros and duplicates are canonicalised
    coo = sp.coo_matrix((np.array([1.0, 0.0, 1.0]), (np.array([0, 1, 1]), np.array([0, 1, 0]))), shape=(2, 2))
    assert fspai.ramanujan_gap(coo).edges == 2


def test_model_metrics_bad_inputs():
    with pytest.raises(TypeError, match="model_metrics expects"):
        fspai.model_metrics([np.ones((3, 3))])
    with pytest.raises(ValueError, match=r"layer 'b'.*\(3,\)|b: mask must have at least 2 dims") as ei:
        fspai.layer_metrics(np.ones(3), name="b")
    assert "b" in str(ei.value)
