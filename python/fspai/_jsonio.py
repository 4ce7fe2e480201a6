"""Atomic file writes and JSON sanitising: the one implementation every fspai module uses.

* :func:`atomic_write` (and the ``_bytes`` / ``_text`` / :func:`write_json` forms) writes to a
  temporary file in the destination folder and renames it over the destination with
  :func:`os.replace`, so a reader sees either the old file or the complete new one, never a
  partial write (also when the writer raises or the process is interrupted: the temporary file
  is removed).
* :func:`jsonable` turns a value into plain JSON data: NaN and ±inf become ``None`` (JSON has no
  NaN; an undefined metric reads back as ``null``), numpy scalars and arrays become Python
  numbers and lists, tuples and sets become lists, paths become strings, dataclasses and objects
  with ``to_dict()`` become dicts. Anything else raises ``TypeError`` naming the offending
  key path, rather than being written as an unreadable ``str(obj)``.

This module imports only the standard library and numpy (no torch), so the core layer and the
torch layer can both use it.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "jsonable", "dumps",
           "write_json", "read_json"]


def atomic_write(path: PathLike, writer: Callable[[IO[bytes]], Any], *, fsync: bool = False) -> Path:
    """Write ``path`` atomically: ``writer(f)`` fills a binary temporary file in the same folder,
    which then replaces ``path``. Creates missing parent folders. Returns ``Path(path)``.

    ``fsync=True`` flushes the data to disk before the rename (durable across a power loss; slower).
    Example: ``atomic_write(p, lambda f: torch.save(obj, f))``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: PathLike, data: bytes, *, fsync: bool = False) -> Path:
    """Atomically replace ``path`` with ``data``."""
    return atomic_write(path, lambda fh: fh.write(data), fsync=fsync)


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8", fsync: bool = False) -> Path:
    """Atomically replace ``path`` with ``text`` (UTF-8 by default, ``\\n`` line ends kept as given)."""
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


def _key(k: Any, where: str) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, (bool, np.bool_)):
        return "true" if k else "false"
    if isinstance(k, (int, np.integer)):
        return str(int(k))
    if isinstance(k, (float, np.floating)):
        return repr(float(k))
    if isinstance(k, Path):
        return str(k)
    raise TypeError(f"{where}: dict key {k!r} of type {type(k).__name__} cannot be a JSON key")


def _float(x: float):
    return x if math.isfinite(x) else None


def jsonable(obj: Any, *, where: str = "value") -> Any:
    """``obj`` as plain JSON data (dict/list/str/int/float/bool/None), recursively.

    Rules: non-finite floats → ``None``; numpy bool/int/float scalars → ``bool``/``int``/``float``;
    numpy arrays (and any object with ``tolist()``, e.g. a CPU tensor) → nested lists;
    tuple/list → list; set/frozenset → sorted list; dict → dict with string keys (int/float/bool
    keys converted as ``json`` does); ``pathlib.Path`` → str; ``Enum`` → its value; a dataclass
    instance → dict of its fields; an object with a ``to_dict()`` method → that dict.
    ``where`` names the value in error messages (``TypeError`` for anything else).
    """
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):  # also np.float64, a float subclass
        return _float(float(obj))
    if isinstance(obj, np.generic):
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return _float(float(obj))
        if isinstance(obj, np.str_):
            return str(obj)
        raise TypeError(f"{where}: numpy scalar of dtype {obj.dtype} is not JSON data")
    if isinstance(obj, dict):
        return {_key(k, where): jsonable(v, where=f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, where=f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        items = [jsonable(v, where=f"{where}{{}}") for v in obj]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"{where}: numpy array of dtype {obj.dtype} is not JSON data")
        return jsonable(obj.tolist(), where=where)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value, where=where)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict(), where=where)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name), where=f"{where}.{f.name}")
                for f in dataclasses.fields(obj)}
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):  # torch tensors and other array types, without importing them
        return jsonable(tolist(), where=where)
    raise TypeError(f"{where}: object of type {type(obj).__name__} is not JSON data")


def dumps(obj: Any, *, indent: Union[int, None] = 2, sort_keys: bool = False) -> str:
    """``json.dumps(jsonable(obj))``; never writes ``NaN``/``Infinity`` (strict JSON)."""
    return json.dumps(jsonable(obj), indent=indent, sort_keys=sort_keys, allow_nan=False)


def write_json(path: PathLike, obj: Any, *, indent: Union[int, None] = 2, sort_keys: bool = False,
               fsync: bool = False) -> Path:
    """Atomically write ``obj`` as strict JSON (see :func:`jsonable`) with a trailing newline."""
    return atomic_write_text(path, dumps(obj, indent=indent, sort_keys=sort_keys) + "\n", fsync=fsync)


def read_json(path: PathLike) -> Any:
    """Read a JSON file written by :func:`write_json` (``null`` stays ``None``). Raises
    ``ValueError`` naming the file when it is not valid JSON."""
    path = Path(path)
    try:
        with open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
