"""fspai.models and fspai.data (offline datasets)."""
from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")
nn = torch.nn

from fspai import data, masks, models  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,classes,params,layers", [
    ("resnet18", 10, 11_173_962, 21),      # kuangliu/pytorch-cifar ResNet18
    ("resnet34", 10, 21_282_122, 37),
    ("vgg16", 10, 15_255_626, 16),         # 13 conv + ITOP's 3-layer head
])
def test_cifar_models(name, classes, params, layers):
    m = models.build(name, classes)
    assert sum(p.numel() for p in m.parameters()) == params
    assert len(masks.prunable_parameters(m)) == layers
    assert m.input_shape == (3, 32, 32)
    m.eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, classes)


def test_resnet_layout_is_cifar_style():
    m = models.build("resnet18", 100)
    assert m.conv1.kernel_size == (3, 3) and m.conv1.out_channels == 64 and m.conv1.stride == (1, 1)
    assert not any(isinstance(x, nn.MaxPool2d) for x in m.modules())
    shortcuts = [n for n, p in masks.prunable_parameters(m).items() if "shortcut" in n]
    assert shortcuts == ["layer2.0.shortcut.0.weight", "layer3.0.shortcut.0.weight",
                         "layer4.0.shortcut.0.weight"]
    assert all(masks.prunable_parameters(m)[n].shape[2:] == (1, 1) for n in shortcuts)
    assert m.linear.out_features == 100


def test_vgg_linear_head_matches_kuangliu():
    m = models.build("vgg16", 10, classifier="linear")
    assert sum(p.numel() for p in m.parameters()) == 14_728_266
    assert len(masks.prunable_parameters(m)) == 14
    assert sum(isinstance(x, nn.BatchNorm2d) for x in m.modules()) == 13


def test_mlp_and_cnn1d():
    mlp = models.build("mlp", 10, input_shape=(40,), hidden=(64, 32))
    assert [tuple(p.shape) for p in masks.prunable_parameters(mlp).values()] == \
        [(64, 40), (32, 64), (10, 32)]
    assert mlp(torch.randn(3, 40)).shape == (3, 10)
    cnn = models.build("cnn1d", 10)
    assert sum(p.numel() for p in cnn.parameters()) == 5210      # Greydanus' ConvBase
    assert cnn(torch.randn(3, 40)).shape == (3, 10) and cnn(torch.randn(3, 1, 40)).shape == (3, 10)
    assert models.build("cnn1d", 5, input_shape=(1, 64))(torch.randn(2, 64)).shape == (2, 5)


def test_build_seed_and_errors():
    rng = torch.get_rng_state()
    a = models.build("mlp", 10, input_shape=(8,), seed=3)
    b = models.build("mlp", 10, input_shape=(8,), seed=3)
    assert torch.equal(torch.get_rng_state(), rng)                # global RNG untouched
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match="input_shape"):
        models.build("mlp", 10)
    with pytest.raises(ValueError, match="resnet18"):
        models.build("alexnet", 10)


def test_paper_init():
    m = models.build("vgg16", 10, init="paper", seed=0)
    bn = [x for x in m.modules() if isinstance(x, nn.BatchNorm2d)]
    assert all(torch.all(x.weight == 0.5) and torch.all(x.bias == 0) for x in bn)
    lin = [x for x in m.modules() if isinstance(x, nn.Linear)]
    assert all(abs(float(x.weight.detach().std()) - 0.01) < 0.002 for x in lin)
    conv = m.features[0]
    assert abs(float(conv.weight.detach().std()) - (2 / (9 * 64)) ** 0.5) < 0.015
    with pytest.raises(ValueError):
        models.build("mlp", 10, input_shape=(4,), init="xavier")


# ---------------------------------------------------------------------------------------------
# MNIST-1D and digits
# ---------------------------------------------------------------------------------------------

def test_mnist1d_generated_locally_and_cached(tmp_path, monkeypatch):
    import mnist1d.data

    monkeypatch.setenv("FSPAI_DATA", str(tmp_path))
    monkeypatch.setattr(mnist1d.data, "get_dataset",
                        lambda *a, **k: pytest.fail("must not use the downloading get_dataset"))
    np_state = np.random.get_state()
    py_state = random.getstate()
    b = data.load("mnist1d", num_samples=300, batch_size=32)
    assert np.array_equal(np.random.get_state()[1], np_state[1])     # RNG restored
    assert random.getstate() == py_state
    assert b.name == "mnist1d" and b.num_classes == 10 and b.input_shape == (40,)
    assert len(b.train_loader.dataset) == 240 and len(b.test_loader.dataset) == 60
    x, y = next(iter(b.train_loader))
    assert x.dtype == torch.float32 and x.shape == (32, 40) and y.dtype == torch.int64
    cached = list((tmp_path / "mnist1d").glob("*.npz"))
    assert len(cached) == 1
    # second load comes from the cache (generation would fail now)
    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda *a, **k: pytest.fail("regenerated"))
    b2 = data.load("mnist1d", num_samples=300)
    assert torch.equal(b2.train_loader.dataset.tensors[0], b.train_loader.dataset.tensors[0])


def test_mnist1d_matches_the_package_generator(tmp_path):
    from mnist1d.data import get_dataset_args, make_dataset

    arr = data.mnist1d_arrays(200, root=tmp_path)
    args = get_dataset_args()
    args.num_samples = 200
    ref = make_dataset(args)
    assert np.allclose(arr["x"], ref["x"].astype(np.float32))
    assert np.array_equal(arr["y_test"], ref["y_test"])


def test_digits():
    b = data.load("digits", batch_size=100, seed=1)
    assert b.input_shape == (64,) and b.num_classes == 10
    n_tr, n_te = len(b.train_loader.dataset), len(b.test_loader.dataset)
    assert n_tr + n_te == 1797 and n_te == 360
    x = b.train_loader.dataset.tensors[0]
    assert abs(float(x.mean())) < 1e-4
    assert sorted(set(b.test_loader.dataset.tensors[1].tolist())) == list(range(10))


def test_unknown_dataset():
    with pytest.raises(ValueError, match="cifar100"):
        data.load("imagenet")


def test_from_tensors():
    b = data.DataBundle.from_tensors(np.zeros((10, 3)), np.arange(10) % 2, np.zeros((4, 3)),
                                     np.array([0, 1, 0, 1]), batch_size=4)
    assert b.num_classes == 2 and b.input_shape == (3,) and len(b.train_loader) == 3


# ---------------------------------------------------------------------------------------------
# CIFAR from a local folder (small files in the exact layout)
# ---------------------------------------------------------------------------------------------

def _write(path, obj, protocol=2):        # the real files are protocol-2 pickles
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def _fake_cifar10(root, per_batch=6):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _write(d / f"data_batch_{i}", {
            b"batch_label": f"training batch {i} of 5".encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [b"x.png"] * per_batch})
    _write(d / "test_batch", {b"labels": list(range(10)),
                              b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8)})
    _write(d / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)],
                                b"num_cases_per_batch": per_batch, b"num_vis": 3072})
    return d


def _fake_cifar100(root):
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    _write(d / "train", {b"fine_labels": [int(v) for v in rng.integers(0, 100, 12)],
                         b"coarse_labels": [0] * 12,
                         b"data": rng.integers(0, 256, (12, 3072), dtype=np.uint8)})
    _write(d / "test", {b"fine_labels": [5, 99, 0, 1], b"coarse_labels": [0] * 4,
                        b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8)})
    _write(d / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                        b"coarse_label_names": [b"c"] * 20})
    return d


def test_cifar10_local_folder(tmp_path):
    folder = _fake_cifar10(tmp_path)
    b = data.load("cifar10", root=tmp_path, batch_size=8, augment=False)
    assert b.num_classes == 10 and b.input_shape == (3, 32, 32)
    assert len(b.train_loader.dataset) == 30 and len(b.test_loader.dataset) == 10
    assert b.meta["classes"][:2] == ["c0", "c1"]
    x, y = next(iter(b.test_loader))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.tolist() == list(range(8))
    raw = data.cifar_arrays("cifar10", tmp_path)
    first = torch.from_numpy(raw["x_test"][0]).float() / 255
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(3, 1, 1)
    assert torch.allclose(x[0], (first - mean) / std, atol=1e-6)
    # root may also be the batches folder itself; augmentation keeps shapes
    b2 = data.load("cifar10", root=folder, batch_size=8)
    xa, _ = next(iter(b2.train_loader))
    assert xa.shape == (8, 3, 32, 32)


def test_cifar100_local_folder(tmp_path):
    _fake_cifar100(tmp_path)
    b = data.load("cifar100", root=tmp_path, batch_size=4, augment=False)
    assert b.num_classes == 100 and len(b.train_loader.dataset) == 12
    assert b.test_loader.dataset.y.tolist() == [5, 99, 0, 1]
    assert len(b.meta["classes"]) == 100


def test_cifar_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        data.load("cifar10", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        data.load("cifar100", root=tmp_path)
    folder = _fake_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        data.load("cifar10", root=tmp_path)


def test_cifar_corrupt_batch(tmp_path):
    folder = _fake_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match="test_batch"):
        data.load("cifar10", root=tmp_path)


class _Exploit:
    """A pickle payload that would run a command when unpickled by ``pickle.load``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_loader_never_runs_code_from_a_batch_file(tmp_path, protocol):
    folder = _fake_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    _write(folder / "data_batch_1", {b"labels": [0], b"data": _Exploit(marker)}, protocol)
    with pytest.raises(ValueError, match="data_batch_1.*refusing to load"):
        data.load("cifar10", root=tmp_path)
    assert not marker.exists()
    # the same folder with honest arrays (either pickle protocol) loads
    rng = np.random.default_rng(0)
    _write(folder / "data_batch_1", {b"labels": [1, 2],
                                     b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8)},
           protocol)
    assert len(data.load("cifar10", root=tmp_path, augment=False).train_loader.dataset) == 26
