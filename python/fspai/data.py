"""Datasets that work offline, as :class:`DataBundle` (train/test loaders plus shape info).

* ``"mnist1d"``: generated locally with ``mnist1d.data.make_dataset`` (never downloaded) and
  cached as ``.npz`` under ``$FSPAI_DATA`` (default ``~/.cache/fspai``)``/mnist1d``. The size is
  configurable (``num_samples=``, default 5000 as in the package; 80 % train).
* ``"digits"``: scikit-learn's bundled 8x8 digits (1797 samples), scaled to [0, 1] and
  standardised; stratified train/test split.
* ``"cifar10"``, ``"cifar100"``: read from a local folder in the standard python-pickle layout
  (``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` and
  ``<root>/cifar-100-python/{train,test,meta}``); ``root`` defaults to the cache folder. A missing
  folder raises ``FileNotFoundError`` naming the expected path. Nothing is downloaded.
"""
from __future__ import annotations

import logging
import os
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ._jsonio import atomic_write
from ._torch_utils import cache_dir

__all__ = ["DataBundle", "load", "DATASETS", "mnist1d_arrays", "digits_arrays", "cifar_arrays",
           "CifarDataset"]

log = logging.getLogger(__name__)

DATASETS = ("mnist1d", "digits", "cifar10", "cifar100")


@dataclass
class DataBundle:
    """Train/test loaders and what a model needs to know about the data."""

    name: str
    train_loader: DataLoader
    test_loader: DataLoader
    num_classes: int
    input_shape: Tuple[int, ...]
    meta: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_tensors(cls, x_train, y_train, x_test, y_test, *, batch_size: int = 128,
                     test_batch_size: Optional[int] = None, seed: int = 0, name: str = "tensors",
                     num_classes: Optional[int] = None, drop_last: bool = False) -> "DataBundle":
        """Bundle in-memory arrays/tensors (features float32, labels int64)."""
        xt, yt = _to_tensors(x_train, y_train)
        xv, yv = _to_tensors(x_test, y_test)
        if num_classes is None:
            num_classes = int(max(int(yt.max()), int(yv.max())) + 1)
        return cls(name=name,
                   train_loader=_loader(TensorDataset(xt, yt), batch_size, True, seed,
                                        drop_last=drop_last),
                   test_loader=_loader(TensorDataset(xv, yv), test_batch_size or batch_size,
                                       False, seed),
                   num_classes=int(num_classes), input_shape=tuple(xt.shape[1:]))


def _to_tensors(x, y) -> Tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).long()
    return x, y


def _loader(ds: Dataset, batch_size: int, shuffle: bool, seed: int, *, num_workers: int = 0,
            drop_last: bool = False) -> DataLoader:
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return DataLoader(ds, batch_size=int(batch_size), shuffle=shuffle, generator=gen,
                      num_workers=num_workers, drop_last=drop_last,
                      persistent_workers=num_workers > 0)


# --------------------------------------------------------------------------------------------
# MNIST-1D
# --------------------------------------------------------------------------------------------

def mnist1d_arrays(num_samples: int = 5000, *, generation_seed: int = 42, train_split: float = 0.8,
                   cache: bool = True, root: Optional[Union[str, os.PathLike]] = None
                   ) -> Dict[str, np.ndarray]:
    """MNIST-1D as arrays ``x, y, x_test, y_test`` (x float32 of shape (n, 40)).

    Generated with ``mnist1d.data.make_dataset`` from the package's default arguments
    (``get_dataset_args``), overriding ``num_samples``, ``seed`` and ``train_split``; the
    ``url`` entry of those arguments is never used. The global ``random``/numpy RNG states, which
    ``make_dataset`` reseeds, are restored afterwards. Cached under
    ``<root or cache dir>/mnist1d``.
    """
    base = Path(root).expanduser() if root is not None else cache_dir()
    path = base / "mnist1d" / f"mnist1d_n{int(num_samples)}_s{int(generation_seed)}_split{train_split:g}_v1.npz"
    if cache and path.is_file():
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                return {k: np.array(z[k]) for k in ("x", "y", "x_test", "y_test")}
        except Exception as e:  # corrupt cache: regenerate
            log.warning("ignoring unreadable MNIST-1D cache %s (%s)", path, e)
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = int(num_samples)
    args.seed = int(generation_seed)
    args.train_split = float(train_split)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    out = {"x": d["x"].astype(np.float32), "y": d["y"].astype(np.int64),
           "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int64)}
    if cache:
        atomic_write(path, lambda f: np.savez(f, **out))
        log.info("cached MNIST-1D (%d samples) at %s", num_samples, path)
    return out


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------

def digits_arrays(*, test_fraction: float = 0.2, split_seed: int = 0) -> Dict[str, np.ndarray]:
    """scikit-learn digits (bundled, offline): standardised float32 features (n, 64)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction,
                                              random_state=split_seed, stratify=y)
    mean, std = x_tr.mean(0), x_tr.std(0)
    std[std == 0] = 1.0
    return {"x": (x_tr - mean) / std, "y": y_tr, "x_test": (x_te - mean) / std, "y_test": y_te}


# --------------------------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------------------------

_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "labels": "labels",
        "names": "label_names",
        "classes": 10,
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2470, 0.2435, 0.2616),
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "labels": "fine_labels",
        "names": "fine_label_names",
        "classes": 100,
        "mean": (0.5071, 0.4865, 0.4409),
        "std": (0.2673, 0.2564, 0.2762),
    },
}


def _cifar_folder(name: str, root: Optional[Union[str, os.PathLike]]) -> Path:
    spec = _CIFAR[name]
    base = Path(root).expanduser() if root is not None else cache_dir()
    folder = base if base.name == spec["folder"] else base / spec["folder"]
    needed = spec["train"] + spec["test"] + [spec["meta"]]
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        what = "folder is missing" if not folder.is_dir() else f"files {missing} are missing"
        raise FileNotFoundError(
            f"{name} not found: expected the folder {folder} with {', '.join(needed)} "
            f"(the python version from https://www.cs.toronto.edu/~kriz/cifar.html, unpacked); "
            f"the {what}. fspai never downloads data: unpack it there or pass root=.")
    return folder


#: The only globals a CIFAR batch pickle may name: numpy's array/dtype reconstruction (both
#: numpy 1 and 2 module paths; pickle protocols 2-5) and the bytes codec of protocol-2 pickles
#: written by Python 3. Nothing else can be constructed while reading a CIFAR file.
_CIFAR_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})


class _CifarUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that builds only dicts, lists, str/bytes/int/float and numpy
    arrays: any other global (a function to call, a class to build) is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in _CIFAR_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch file "
                                     "holds only arrays, lists, strings and numbers")


def _unpickle(path: Path) -> Dict[str, Any]:
    """A CIFAR pickle with its keys as ``str`` (the originals are Python 2 pickles whose keys
    load as bytes), read with :class:`_CifarUnpickler` (never runs code from the file)."""
    try:
        with open(path, "rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
    except Exception as e:
        raise ValueError(f"{path}: cannot read CIFAR batch file: {e}") from e
    if isinstance(d, dict) and any(isinstance(v, np.ndarray) and v.dtype.hasobject
                                   for v in d.values()):
        raise ValueError(f"{path}: CIFAR arrays must be numeric, found an object array")
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(d).__name__}")
    return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in d.items()}


def cifar_arrays(name: str = "cifar10", root: Optional[Union[str, os.PathLike]] = None
                 ) -> Dict[str, Any]:
    """Raw CIFAR arrays: ``x``/``x_test`` uint8 (n, 3, 32, 32), ``y``/``y_test`` int64, and
    ``classes`` (label names)."""
    if name not in _CIFAR:
        raise ValueError(f"unknown CIFAR variant {name!r}")
    spec = _CIFAR[name]
    folder = _cifar_folder(name, root)

    def read(files):
        xs, ys = [], []
        for f in files:
            d = _unpickle(folder / f)
            try:
                xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(d[spec["labels"]], dtype=np.int64))
            except (KeyError, ValueError) as e:
                raise ValueError(f"{folder / f}: not a {name} batch file ({e})") from e
            if len(xs[-1]) != len(ys[-1]):
                raise ValueError(f"{folder / f}: {len(xs[-1])} images but {len(ys[-1])} labels")
        return np.concatenate(xs), np.concatenate(ys)

    x, y = read(spec["train"])
    x_test, y_test = read(spec["test"])
    meta = _unpickle(folder / spec["meta"])
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta.get(spec["names"], [])]
    return {"x": x, "y": y, "x_test": x_test, "y_test": y_test, "classes": classes}


class CifarDataset(Dataset):
    """uint8 CIFAR images -> normalised float tensors, optional crop(32, pad 4) + flip.

    Augmentation draws from torch's global RNG (seeded by :func:`fspai.train.fit`)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mean: Sequence[float], std: Sequence[float],
                 augment: bool = False):
        self.x = torch.from_numpy(np.ascontiguousarray(x))
        self.y = torch.from_numpy(np.ascontiguousarray(y)).long()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        img = self.x[i]
        if self.augment:
            padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
            dy, dx = torch.randint(0, 9, (2,)).tolist()
            img = padded[:, dy:dy + 32, dx:dx + 32]
            if torch.rand(()) < 0.5:
                img = img.flip(-1)
        img = (img.float() / 255.0 - self.mean) / self.std
        return img, self.y[i]


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def _subset(arr: Dict[str, Any], train_size: Optional[int], test_size: Optional[int]):
    if train_size is not None:
        arr["x"], arr["y"] = arr["x"][:train_size], arr["y"][:train_size]
    if test_size is not None:
        arr["x_test"], arr["y_test"] = arr["x_test"][:test_size], arr["y_test"][:test_size]
    return arr


#: Options of :func:`load` for every dataset, and the dataset-specific ones, with their types.
_COMMON_OPTIONS: Dict[str, Tuple[type, ...]] = {
    "root": (str, os.PathLike), "batch_size": (int,), "test_batch_size": (int,), "seed": (int,),
    "num_workers": (int,), "train_size": (int,), "test_size": (int,), "drop_last": (bool,)}
_DATASET_OPTIONS: Dict[str, Dict[str, Tuple[type, ...]]] = {
    "mnist1d": {"num_samples": (int,), "generation_seed": (int,), "train_split": (float, int),
                "cache": (bool,)},
    "digits": {"test_fraction": (float, int), "split_seed": (int,)},
    "cifar10": {"augment": (bool,)},
    "cifar100": {"augment": (bool,)},
}


def _key(name: str) -> str:
    return str(name).lower().replace("-", "").replace("_", "")


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """``TypeError`` for an option :func:`load` does not take for dataset ``name`` or a value of
    the wrong type; ``ValueError`` for an unknown dataset or a non-positive size."""
    key = _key(name)
    if key not in _DATASET_OPTIONS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(DATASETS)}")
    known = {**_COMMON_OPTIONS, **_DATASET_OPTIONS[key]}
    for k, v in options.items():
        if k not in known:
            raise TypeError(f"unknown option {k!r} for dataset {name!r}; known: {sorted(known)}")
        if v is None and k in ("root", "test_batch_size", "train_size", "test_size"):
            continue
        types = known[k]
        if isinstance(v, bool) and bool not in types or not isinstance(v, types):
            raise TypeError(f"data option {k!r} must be "
                            f"{' or '.join(t.__name__ for t in types)}, got {v!r}")
        if k in ("batch_size", "test_batch_size", "train_size", "test_size", "num_samples") \
                and v < 1:
            raise ValueError(f"data option {k!r} must be >= 1, got {v}")


def load(name: str, *, root: Optional[Union[str, os.PathLike]] = None, batch_size: int = 128,
         test_batch_size: Optional[int] = None, seed: int = 0, num_workers: int = 0,
         train_size: Optional[int] = None, test_size: Optional[int] = None,
         drop_last: bool = False, **options) -> DataBundle:
    """Load a dataset by name as a :class:`DataBundle`.

    Common arguments: ``root`` (data/cache folder; default ``$FSPAI_DATA`` or ``~/.cache/fspai``),
    ``batch_size``, ``test_batch_size`` (default ``batch_size``), ``seed`` (train shuffling),
    ``num_workers`` (CIFAR only; the in-memory datasets need no workers), ``train_size``/
    ``test_size`` (keep the first n samples), ``drop_last``.

    Dataset options:

    * mnist1d: ``num_samples=5000``, ``generation_seed=42``, ``train_split=0.8``, ``cache=True``.
    * digits: ``test_fraction=0.2``, ``split_seed=0``.
    * cifar10/cifar100: ``augment=True`` (random crop with 4-pixel padding and horizontal flip on
      the training set).
    """
    check_options(name, {"batch_size": batch_size, "test_batch_size": test_batch_size,
                         "seed": seed, "num_workers": num_workers, "train_size": train_size,
                         "test_size": test_size, "drop_last": drop_last, **options})
    key = _key(name)
    tb = test_batch_size or batch_size
    if key == "mnist1d":
        arr = mnist1d_arrays(root=root, **options)
        arr = _subset(arr, train_size, test_size)
        bundle = DataBundle.from_tensors(arr["x"], arr["y"], arr["x_test"], arr["y_test"],
                                         batch_size=batch_size, test_batch_size=tb, seed=seed,
                                         name="mnist1d", num_classes=10, drop_last=drop_last)
        bundle.meta.update(num_samples=options.get("num_samples", 5000))
        return bundle
    if key == "digits":
        arr = _subset(digits_arrays(**options), train_size, test_size)
        return DataBundle.from_tensors(arr["x"], arr["y"], arr["x_test"], arr["y_test"],
                                       batch_size=batch_size, test_batch_size=tb, seed=seed,
                                       name="digits", num_classes=10, drop_last=drop_last)
    if key in _CIFAR:
        augment = bool(options.pop("augment", True))
        if options:
            raise TypeError(f"unexpected options for {key}: {sorted(options)}")
        spec = _CIFAR[key]
        arr = _subset(cifar_arrays(key, root), train_size, test_size)
        train = CifarDataset(arr["x"], arr["y"], spec["mean"], spec["std"], augment=augment)
        test = CifarDataset(arr["x_test"], arr["y_test"], spec["mean"], spec["std"])
        return DataBundle(name=key,
                          train_loader=_loader(train, batch_size, True, seed,
                                               num_workers=num_workers, drop_last=drop_last),
                          test_loader=_loader(test, tb, False, seed, num_workers=num_workers),
                          num_classes=spec["classes"], input_shape=(3, 32, 32),
                          meta={"classes": arr["classes"]})
    raise ValueError(f"unknown dataset {name!r}; choose one of {list(DATASETS)}")
