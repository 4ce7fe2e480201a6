"""Shared fixtures for the PyTorch-layer tests (masks, PaI, models/data, training)."""
from __future__ import annotations

import os

import pytest

try:  # torch is optional for fspai; the tests that need it import-or-skip it themselves
    import torch
except ImportError:  # pragma: no cover
    torch = None


@pytest.fixture
def torch_one_thread():
    """One torch intra-op thread for the test (restored after). The torch-layer tests use tiny
    models, where two busy-waiting threads on a shared 2-core machine are up to 10x slower."""
    if torch is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True, scope="session")
def _fspai_data_dir(tmp_path_factory):
    """Keep every generated dataset/cache of the test session in a temporary FSPAI_DATA."""
    old = os.environ.get("FSPAI_DATA")
    os.environ["FSPAI_DATA"] = str(tmp_path_factory.mktemp("fspai_data"))
    yield
    if old is None:
        os.environ.pop("FSPAI_DATA", None)
    else:
        os.environ["FSPAI_DATA"] = old


@pytest.fixture(scope="session")
def digits():
    """scikit-learn digits as a DataBundle (batch 64, offline)."""
    pytest.importorskip("torch")
    from fspai import data

    return data.load("digits", batch_size=64, seed=0)


def _tiny_loader(n=64, shape=(1, 20), classes=4, batch_size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *shape), generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    ds = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True,
                                       generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def make_loader():
    """Factory: ``make_loader(n=64, shape=(1, 20), classes=4, batch_size=16, seed=0)`` gives a
    small random classification DataLoader shuffled with its own generator."""
    return _tiny_loader
