"""Mask tensors and mask files: the bool-tensor rule, densities, ``save_masks``/``load_masks``.

This is the lower half of :mod:`fspai.masks` (it knows nothing about models); everything here is
re-exported there, which is where users import it from.

Mask files are a ``dict[str, BoolTensor]`` written with ``torch.save`` (``.pt``/``.pth``,
loadable with ``weights_only=True``) or a ``.npz`` archive, plus a JSON sidecar ``<file>.json``
holding the method, seed, densities, per-layer shapes, a format version and a content checksum.
Loading validates all of it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from ._jsonio import atomic_write, atomic_write_text, dumps

__all__ = ["MaskLike", "as_bool_tensor", "realised_density", "layer_densities", "save_masks",
           "load_masks", "read_sidecar", "FORMAT_VERSION"]

log = logging.getLogger("fspai.masks")

#: Version written into mask-file sidecars; :func:`load_masks` accepts only these.
FORMAT_VERSION = 1
_SUPPORTED_VERSIONS = (1,)
_FORMAT_NAME = "fspai.masks"

MaskLike = Union[torch.Tensor, np.ndarray]

def as_bool_tensor(name: str, mask: Any) -> torch.Tensor:
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask for layer {name!r} must be a tensor or numpy array, "
                         f"got {type(mask).__name__}")
    if mask.dtype == torch.bool:
        return mask.detach()
    if mask.is_complex():
        raise ValueError(f"mask for layer {name!r} has complex dtype {mask.dtype}; "
                         "expected bool or 0/1 values")
    if mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
        bad = mask[(mask != 0) & (mask != 1)].flatten()[:3].tolist()
        raise ValueError(f"mask for layer {name!r} must be bool or contain only 0/1 values; "
                         f"found e.g. {bad}")
    return mask.detach() != 0


_as_bool_tensor = as_bool_tensor


# --------------------------------------------------------------------------------------------
# Density helpers
# --------------------------------------------------------------------------------------------

def _count(m: MaskLike) -> Tuple[int, int]:
    if isinstance(m, np.ndarray):
        return int(np.count_nonzero(m)), int(m.size)
    return int(torch.count_nonzero(m)), int(m.numel())


def realised_density(masks: Mapping[str, MaskLike]) -> float:
    """Fraction of weights kept over all masks (``sum nnz / sum numel``)."""
    kept = total = 0
    for m in masks.values():
        k, n = _count(m)
        kept += k
        total += n
    return kept / total if total else float("nan")


def layer_densities(masks: Mapping[str, MaskLike]) -> Dict[str, float]:
    """Per-layer fraction kept."""
    out = {}
    for name, m in masks.items():
        k, n = _count(m)
        out[name] = k / n if n else float("nan")
    return out


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _checksum(masks: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(masks):
        m = masks[name]
        h.update(name.encode("utf-8") + b"\0")
        h.update(json.dumps(list(m.shape)).encode("ascii") + b"\0")
        h.update(np.packbits(m.detach().cpu().numpy().astype(bool).ravel()).tobytes())
    return "sha256:" + h.hexdigest()


def _storage(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix in (".pt", ".pth", ".bin"):
        return "torch"
    raise ValueError(f"{path}: unsupported mask file suffix {suffix!r} (use .pt, .pth or .npz)")


def save_masks(path: Union[str, os.PathLike], masks: Mapping[str, MaskLike], *,
               meta: Optional[Mapping[str, Any]] = None) -> Path:
    """Write ``masks`` to ``path`` (``.pt``/``.pth``: ``torch.save`` of bool tensors; ``.npz``)
    and the JSON sidecar ``<path>.json``. Returns the data file path.

    ``meta`` may hold ``method``, ``seed`` and ``density`` (the target; the realised density is
    always written) and any other JSON-serialisable fields (kept under ``"meta"``).
    """
    path = Path(path)
    storage = _storage(path)
    clean = {str(k): _as_bool_tensor(str(k), v).cpu().contiguous() for k, v in masks.items()}
    meta = dict(meta or {})
    layers = {}
    for name, m in clean.items():
        kept = int(m.sum())
        layers[name] = {"shape": list(m.shape), "kept": kept,
                        "density": kept / m.numel() if m.numel() else None}
    kept_total = sum(v["kept"] for v in layers.values())
    numel_total = sum(m.numel() for m in clean.values())
    side = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "file": path.name,
        "storage": storage,
        "method": meta.pop("method", None),
        "seed": meta.pop("seed", None),
        "target_density": meta.pop("density", None),
        "density": kept_total / numel_total if numel_total else None,
        "num_kept": kept_total,
        "num_params": numel_total,
        "layers": layers,
        "checksum": _checksum(clean),
        "meta": meta,
    }
    try:
        text = dumps(side, indent=2)
    except TypeError as exc:
        raise TypeError(f"save_masks: meta is not JSON data: {exc}") from None
    if storage == "torch":
        atomic_write(path, lambda f: torch.save(clean, f))
    else:
        arrays = {k: v.numpy() for k, v in clean.items()}
        atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    atomic_write_text(_sidecar(path), text)
    log.info("saved %d masks to %s (density %.6g)", len(clean), path, side["density"])
    return path



def _read_data(path: Path, storage: str) -> Dict[str, torch.Tensor]:
    try:
        if storage == "torch":
            data = torch.load(path, map_location="cpu", weights_only=True)
        else:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                data = {k: torch.from_numpy(np.array(z[k])) for k in z.files}
    except Exception as e:  # truncated zip, bad pickle, ...
        raise ValueError(f"{path}: cannot read mask file (truncated or corrupt?): {e}") from e
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ValueError(f"{path}: expected a dict of name -> mask tensor, got "
                         f"{type(data).__name__}")
    out = {}
    for k, v in data.items():
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
        try:
            out[k] = _as_bool_tensor(k, v)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
    return out


def load_masks(path: Union[str, os.PathLike], *, require_sidecar: bool = True
               ) -> Dict[str, torch.Tensor]:
    """Read masks written by :func:`save_masks` and validate them against the sidecar.

    Checks that the file is readable, holds bool/0-1 tensors, and that names, shapes, kept counts,
    the format version and the checksum all agree with ``<path>.json``. Any problem raises
    ``ValueError`` naming the file (and the layer); nothing is returned half-checked. Returns CPU
    bool tensors; attach them with :func:`apply_masks` (which validates them against the model
    before changing anything).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    storage = _storage(path)
    masks = _read_data(path, storage)
    side_path = _sidecar(path)
    if not side_path.is_file():
        if require_sidecar:
            raise ValueError(f"{path}: sidecar {side_path.name} is missing "
                             "(pass require_sidecar=False to load masks without one)")
        return masks
    try:
        side = json.loads(side_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{side_path}: cannot parse mask sidecar: {e}") from e
    if not isinstance(side, dict) or side.get("format") != _FORMAT_NAME:
        raise ValueError(f"{side_path}: not an fspai mask sidecar (format={side.get('format') if isinstance(side, dict) else None!r})")
    version = side.get("format_version")
    if version not in _SUPPORTED_VERSIONS:
        raise ValueError(f"{side_path}: unsupported mask format version {version!r} "
                         f"(this fspai reads {list(_SUPPORTED_VERSIONS)})")
    layers = side.get("layers")
    if not isinstance(layers, dict):
        raise ValueError(f"{side_path}: missing 'layers' table")
    missing = sorted(set(layers) - set(masks))
    extra = sorted(set(masks) - set(layers))
    if missing or extra:
        raise ValueError(f"{path}: layers do not match the sidecar: missing {missing}, "
                         f"unexpected {extra}")
    for name, info in layers.items():
        m = masks[name]
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list) or \
                isinstance(info.get("kept"), bool) or not isinstance(info.get("kept"), int):
            raise ValueError(f"{side_path}: malformed entry for layer {name!r} in 'layers' "
                             f"(expected {{\"shape\": [..], \"kept\": int, ...}}, got {info!r})")
        if list(m.shape) != list(info["shape"]):
            raise ValueError(f"{path}: layer {name!r} has shape {tuple(m.shape)} but the sidecar "
                             f"says {tuple(info.get('shape', []))}")
        if int(m.sum()) != info.get("kept"):
            raise ValueError(f"{path}: layer {name!r} keeps {int(m.sum())} weights but the "
                             f"sidecar says {info.get('kept')}")
    checksum = _checksum(masks)
    if checksum != side.get("checksum"):
        raise ValueError(f"{path}: checksum mismatch (file {checksum}, sidecar "
                         f"{side.get('checksum')}); the file or its sidecar is corrupt")
    return masks


def read_sidecar(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The parsed JSON sidecar of a mask file (no validation; see :func:`load_masks`)."""
    side_path = _sidecar(Path(path))
    try:
        return json.loads(side_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{side_path}: cannot parse mask sidecar: {e}") from e

