"""Binary pruning masks on PyTorch models: attach, read, validate, save and load.

Masks are keyed by the **state-dict name of the parameter they mask in the unmasked model**, e.g.
``"layer1.0.conv1.weight"``. The same names are used whichever way a mask is attached, and a
``DistributedDataParallel``/``DataParallel`` wrapper is looked through (no ``module.`` prefix).

Two attachment forms are supported:

* ``method="parametrize"`` (default): :func:`torch.nn.utils.parametrize.register_parametrization`
  with a :class:`Mask` parametrization; the state dict then holds
  ``<module>.parametrizations.weight.original`` and ``<module>.parametrizations.weight.0.mask``.
* ``method="prune"``: :mod:`torch.nn.utils.prune` (``weight_orig`` / ``weight_mask``). Masks made
  directly with ``torch.nn.utils.prune`` by other code are read by :func:`extract_masks` too.

In both forms the stored (original) weights are zeroed outside the mask when it is attached, so the
gradient and the stored value of a pruned weight are both exactly zero: pruned weights stay zero
through any optimizer step (SGD with momentum, Adam, weight decay), and no optimizer state builds
up for them.

Mask files (:func:`save_masks`, :func:`load_masks`) are a ``dict[str, BoolTensor]`` written with
``torch.save`` (``.pt``/``.pth``, loadable with ``weights_only=True``) or a ``.npz`` archive, plus a
JSON sidecar ``<file>.json`` holding the method, seed, densities, per-layer shapes, a format
version and a content checksum. Loading validates all of it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import parametrize, prune

from ._torch_utils import unwrap

__all__ = [
    "Mask", "PRUNABLE_TYPES", "prunable_parameters", "apply_masks", "extract_masks",
    "update_masks", "remove_masks", "masked_weights", "validate_masks", "save_masks", "load_masks",
    "realised_density", "layer_densities", "read_sidecar", "FORMAT_VERSION",
]

log = logging.getLogger(__name__)

#: Module types whose ``weight`` is prunable (every such weight has >= 2 dims).
PRUNABLE_TYPES: Tuple[type, ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: Version written into mask-file sidecars; :func:`load_masks` accepts only these.
FORMAT_VERSION = 1
_SUPPORTED_VERSIONS = (1,)
_FORMAT_NAME = "fspai.masks"

MaskLike = Union[torch.Tensor, np.ndarray]


class Mask(nn.Module):
    """Parametrization ``W -> W * mask`` with a boolean ``mask`` buffer.

    ``right_inverse`` also multiplies by the mask, so registering it (or assigning a new weight)
    stores an original that is already zero outside the mask.
    """

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.bool).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask

    def right_inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask

    def extra_repr(self) -> str:
        n = self.mask.numel()
        return f"density={int(self.mask.sum()) / max(n, 1):.4g}"


# --------------------------------------------------------------------------------------------
# Naming and lookup
# --------------------------------------------------------------------------------------------

def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _mask_parametrizations(module: nn.Module, tensor_name: str) -> List[Mask]:
    if not parametrize.is_parametrized(module, tensor_name):
        return []
    return [p for p in module.parametrizations[tensor_name] if isinstance(p, Mask)]


def _prune_hook(module: nn.Module, tensor_name: str) -> Optional[prune.BasePruningMethod]:
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, prune.BasePruningMethod) and hook._tensor_name == tensor_name:
            return hook
    return None


def _raw_parameter(module: nn.Module, tensor_name: str) -> Optional[nn.Parameter]:
    """The trainable tensor behind ``module.<tensor_name>`` in any attachment form."""
    if parametrize.is_parametrized(module, tensor_name):
        return getattr(module.parametrizations[tensor_name], "original", None)
    if _prune_hook(module, tensor_name) is not None:
        return getattr(module, tensor_name + "_orig", None)
    p = module._parameters.get(tensor_name)
    return p


def _iter_prunable(model: nn.Module) -> Iterator[Tuple[str, nn.Module, str]]:
    for mod_name, module in unwrap(model).named_modules():
        if isinstance(module, PRUNABLE_TYPES):
            yield _join(mod_name, "weight"), module, "weight"


def prunable_parameters(model: nn.Module) -> Dict[str, nn.Parameter]:
    """Prunable weights by state-dict name: ``weight`` of every Linear/Conv1d/Conv2d/Conv3d.

    Biases and normalisation parameters are excluded. When a mask is attached the returned
    parameter is the trainable original (``...parametrizations.weight.original`` or
    ``weight_orig``), still under the plain name ``<module>.weight``.
    """
    out: Dict[str, nn.Parameter] = {}
    for name, module, tname in _iter_prunable(model):
        p = _raw_parameter(module, tname)
        if p is not None and p.dim() >= 2:
            out[name] = p
    return out


def _resolve(model: nn.Module, name: str) -> Optional[Tuple[nn.Module, str, nn.Parameter]]:
    """(module, tensor name, trainable parameter) for a plain parameter name, or None."""
    prefix, _, tname = name.rpartition(".")
    try:
        module = unwrap(model).get_submodule(prefix) if prefix else unwrap(model)
    except AttributeError:
        return None
    p = _raw_parameter(module, tname)
    if not isinstance(p, torch.Tensor):
        return None
    return module, tname, p


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _as_bool_tensor(name: str, mask: Any) -> torch.Tensor:
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


def validate_masks(model: nn.Module, masks: Mapping[str, MaskLike], *,
                   strict: bool = True) -> Dict[str, torch.Tensor]:
    """Check ``masks`` against ``model`` and return them as bool tensors on the parameters' devices.

    Raises ``KeyError`` listing unknown names (not parameters of the model) and, with
    ``strict=True``, prunable parameters that have no mask; ``ValueError`` naming the layer for a
    non-0/1 mask or a shape different from the parameter's. Nothing is modified.
    """
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must be a mapping name -> mask, got {type(masks).__name__}")
    unknown = [k for k in masks if _resolve(model, k) is None]
    if unknown:
        raise KeyError(f"unknown mask keys (not parameters of the model): {sorted(unknown)}; "
                       f"prunable parameters are {sorted(prunable_parameters(model))}")
    if strict:
        missing = [k for k in prunable_parameters(model) if k not in masks]
        if missing:
            raise KeyError(f"no mask given for prunable parameters {missing} "
                           "(pass strict=False to mask only some layers)")
    out: Dict[str, torch.Tensor] = {}
    errors: List[str] = []
    for name, m in masks.items():
        _, _, p = _resolve(model, name)  # type: ignore[misc]
        mb = _as_bool_tensor(name, m)
        if tuple(mb.shape) != tuple(p.shape):
            errors.append(f"layer {name!r}: mask shape {tuple(mb.shape)} != parameter shape "
                          f"{tuple(p.shape)}")
            continue
        out[name] = mb.to(p.device)
    if errors:
        raise ValueError("mask shape mismatch: " + "; ".join(errors))
    return out


# --------------------------------------------------------------------------------------------
# Attach / read / remove
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def apply_masks(model: nn.Module, masks: Mapping[str, MaskLike], *, method: str = "parametrize",
                strict: bool = True) -> nn.Module:
    """Attach ``masks`` (name -> bool/0-1 tensor or array) to ``model`` in place and return it.

    ``method`` is ``"parametrize"`` (default) or ``"prune"``. Everything is validated first
    (:func:`validate_masks`), so an invalid mask leaves the model untouched. A layer that already
    carries a mask gets it replaced in place (same buffers, so optimizers and DDP keep working);
    its stored weights outside the new mask are set to zero.
    """
    if method not in ("parametrize", "prune"):
        raise ValueError(f"method must be 'parametrize' or 'prune', got {method!r}")
    checked = validate_masks(model, masks, strict=strict)
    for name, mask in checked.items():
        module, tname, _ = _resolve(model, name)  # type: ignore[misc]
        own = bool(_mask_parametrizations(module, tname))
        hook = _prune_hook(module, tname) is not None
        if method == "parametrize":
            if hook:                    # switch form: bake the old prune mask, then re-mask
                prune.remove(module, tname)
            if own:
                _write_mask(module, tname, mask)
            else:
                parametrize.register_parametrization(module, tname, Mask(mask))
        else:
            if own:
                parametrize.remove_parametrizations(module, tname, leave_parametrized=True)
            if not hook:
                prune.custom_from_mask(module, tname, mask)
            _write_mask(module, tname, mask)
    return model


@torch.no_grad()
def update_masks(model: nn.Module, masks: Mapping[str, MaskLike]) -> nn.Module:
    """Change masks that are already attached, in place and keeping their form (parametrize or
    prune); stored weights outside the new masks are zeroed. Used by SET. Every name must
    already carry a mask (``KeyError`` otherwise); everything is validated before any change."""
    checked = validate_masks(model, masks, strict=False)
    attached = extract_masks(model)
    missing = sorted(n for n in checked if n not in attached)
    if missing:
        raise KeyError(f"update_masks: no mask attached to {missing}; use apply_masks")
    for name, mask in checked.items():
        module, tname, _ = _resolve(model, name)  # type: ignore[misc]
        _write_mask(module, tname, mask)
    return model


def _write_mask(module: nn.Module, tname: str, mask: torch.Tensor) -> None:
    """Overwrite an attached mask in place (either form) and zero the stored weights outside it."""
    own = _mask_parametrizations(module, tname)
    if own:
        own[0].mask.copy_(mask)
        for extra in own[1:]:
            extra.mask.fill_(True)
    orig = _raw_parameter(module, tname)
    orig.mul_(mask)
    if _prune_hook(module, tname) is not None:
        buf = getattr(module, tname + "_mask")
        buf.copy_(mask.to(buf.dtype))
        if not own:
            setattr(module, tname, orig * buf)


def extract_masks(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The attached masks as ``{name: BoolTensor}`` (clones, on the parameters' devices).

    Reads fspai's parametrizations and any :mod:`torch.nn.utils.prune` mask (``<name>_mask``
    buffer behind a pruning forward pre-hook), whoever attached it. If both forms mask one
    parameter, their intersection is returned. Parameters without a mask are absent; a model
    without masks gives ``{}``.
    """
    out: Dict[str, torch.Tensor] = {}
    for mod_name, module in unwrap(model).named_modules():
        names = set()
        if parametrize.is_parametrized(module):
            names.update(module.parametrizations.keys())
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                names.add(hook._tensor_name)
        for tname in sorted(names):
            mask = None
            for p in _mask_parametrizations(module, tname):
                mask = p.mask.clone() if mask is None else mask & p.mask
            if _prune_hook(module, tname) is not None:
                pm = getattr(module, tname + "_mask") != 0
                mask = pm if mask is None else mask & pm
            if mask is not None:
                out[_join(mod_name, tname)] = mask
    return out


@torch.no_grad()
def masked_weights(model: nn.Module, names: Optional[List[str]] = None) -> Dict[str, torch.Tensor]:
    """Effective (masked) weights ``W * M`` by name, detached. Defaults to every prunable weight."""
    masks = extract_masks(model)
    params = prunable_parameters(model)
    if names is not None:
        params = {n: _resolve(model, n)[2] for n in names}  # type: ignore[index]
    out = {}
    for n, p in params.items():
        w = p.detach()
        out[n] = w * masks[n] if n in masks else w.clone()
    return out


@torch.no_grad()
def remove_masks(model: nn.Module, *, make_permanent: bool = True) -> nn.Module:
    """Detach every mask from ``model`` (both forms). With ``make_permanent`` (default) the
    weights keep their masked values; otherwise the stored originals are kept as they are."""
    for mod_name, module in unwrap(model).named_modules():
        if parametrize.is_parametrized(module):
            for tname in list(module.parametrizations.keys()):
                plist = module.parametrizations[tname]
                if any(isinstance(p, Mask) for p in plist):
                    if not make_permanent:
                        for p in plist:
                            if isinstance(p, Mask):
                                p.mask.fill_(True)
                    parametrize.remove_parametrizations(module, tname, leave_parametrized=True)
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                tname = hook._tensor_name
                if not make_permanent:
                    getattr(module, tname + "_mask").fill_(1)
                prune.remove(module, tname)
    return model


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


def _atomic_write(path: Path, writer) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    text = json.dumps(side, indent=2, sort_keys=False, default=_json_default)
    if storage == "torch":
        _atomic_write(path, lambda f: torch.save(clean, f))
    else:
        arrays = {k: v.numpy() for k, v in clean.items()}
        _atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    _atomic_write(_sidecar(path), lambda f: f.write(text.encode("utf-8")))
    log.info("saved %d masks to %s (density %.6g)", len(clean), path, side["density"])
    return path


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (tuple, set)):
        return list(obj)
    raise TypeError(f"meta value of type {type(obj).__name__} is not JSON serialisable")


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
        if list(m.shape) != list(info.get("shape", [])):
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
    return json.loads(_sidecar(Path(path)).read_text(encoding="utf-8"))
