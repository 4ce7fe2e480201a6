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

The state-dict key layout of both forms is owned here: :func:`plain_name` maps a key of a masked
model's state dict to the plain parameter name (or ``None`` for a mask buffer),
:func:`plain_state_dict` / :func:`load_plain_state_dict` convert between a masked model and a
plain state dict, and :func:`masks_and_weights` splits any state dict into masks and weights.
No other module spells ``parametrizations.weight.original`` or ``weight_orig``.

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

import logging
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from torch.nn.utils import parametrize, prune

from ._mask_io import (FORMAT_VERSION, MaskLike, as_bool_tensor, layer_densities, load_masks,
                       read_sidecar, realised_density, save_masks)
from ._torch_utils import unwrap

__all__ = [
    "Mask", "PRUNABLE_TYPES", "prunable_parameters", "apply_masks", "extract_masks",
    "update_masks", "remove_masks", "masked_weights", "validate_masks", "save_masks", "load_masks",
    "realised_density", "layer_densities", "read_sidecar", "FORMAT_VERSION", "plain_name",
    "plain_state_dict", "load_plain_state_dict", "masks_and_weights",
]

log = logging.getLogger(__name__)

#: Module types whose ``weight`` is prunable (every such weight has >= 2 dims).
PRUNABLE_TYPES: Tuple[type, ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


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
        mb = as_bool_tensor(name, m)
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
# State-dict key layout (the one place that knows it)
# --------------------------------------------------------------------------------------------

_PARAM_TAG = ".parametrizations."


def plain_name(key: str, keys: Optional[Mapping[str, Any]] = None) -> Optional[str]:
    """The plain parameter name behind a state-dict ``key`` of a (possibly masked) model.

    ``"fc.parametrizations.weight.original"`` -> ``"fc.weight"``;
    ``"fc.parametrizations.weight.0.mask"`` -> ``None`` (a mask buffer);
    ``"fc.weight_orig"`` -> ``"fc.weight"`` and ``"fc.weight_mask"`` -> ``None`` when ``keys``
    (the whole state dict) shows the :mod:`torch.nn.utils.prune` pair, or when ``keys`` is not
    given; any other key is returned unchanged.
    """
    if _PARAM_TAG in key:
        head, _, tail = key.partition(_PARAM_TAG)
        tname, _, rest = tail.partition(".")
        return f"{head}.{tname}" if rest == "original" else None
    for suffix, other in (("_orig", "_mask"), ("_mask", "_orig")):
        if key.endswith(suffix):
            base = key[:-len(suffix)]
            if keys is None or base + other in keys:
                return base if suffix == "_orig" else None
    return key


def plain_state_dict(model_or_state: Any) -> Dict[str, torch.Tensor]:
    """A state dict with plain names (as of the unmasked model) and no mask buffers.

    Accepts a model (masks attached in either form, DDP wrappers looked through) or a state
    dict. The stored weights are the originals, which fspai keeps at zero outside the mask, so
    the result loads into a freshly built model with ``load_state_dict``.
    """
    sd = unwrap(model_or_state).state_dict() if isinstance(model_or_state, nn.Module) \
        else dict(model_or_state)
    out: Dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        name = plain_name(key, sd)
        if name is not None:
            out[name] = value
    return out


def load_plain_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load a plain state dict (:func:`plain_state_dict`) into ``model`` whatever masks are
    attached to it; the attached masks stay as they are. Missing or unexpected names raise
    ``KeyError`` listing them."""
    net = unwrap(model)
    own = net.state_dict()
    target: Dict[str, Any] = {}
    used = set()
    missing = []
    for key, value in own.items():
        name = plain_name(key, own)
        if name is None:
            target[key] = value
        elif name in state:
            target[key] = state[name]
            used.add(name)
        else:
            missing.append(name)
    unexpected = sorted(set(state) - used)
    if missing or unexpected:
        raise KeyError(f"state dict does not fit the model: missing {missing[:5]}, "
                       f"unexpected {unexpected[:5]}")
    net.load_state_dict(target)
    return model


def masks_and_weights(state: Mapping[str, Any]
                      ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """``(masks, weights)`` of the prunable tensors (floating, >= 2-D, named ``*weight``) of any
    state dict, with plain names. Masks come from attached mask buffers (either form); a weight
    without one gets its nonzero pattern."""
    weights: Dict[str, torch.Tensor] = {}
    masks: Dict[str, torch.Tensor] = {}
    for key, v in state.items():
        if not isinstance(v, torch.Tensor):
            continue
        name = plain_name(key, state)
        if name is None:                                  # a mask buffer
            if _PARAM_TAG in key:
                head, _, tail = key.partition(_PARAM_TAG)
                masks[f"{head}.{tail.split('.')[0]}"] = v.bool()
            else:
                masks[key[:-len("_mask")]] = v.bool()
        elif v.dim() >= 2 and v.is_floating_point() and name.endswith("weight"):
            weights[name] = v
    return {n: masks.get(n, weights[n] != 0) for n in weights}, weights


def is_masked_state_dict(obj: Any) -> bool:
    """Whether ``obj`` is a state dict carrying mask buffers in either layout (fspai's
    parametrizations or :mod:`torch.nn.utils.prune`'s ``<name>_orig``/``<name>_mask`` pair)."""
    if not isinstance(obj, Mapping):
        return False
    keys = [k for k in obj if isinstance(k, str)]
    return any(isinstance(obj[k], torch.Tensor) and plain_name(k, obj) is None for k in keys)


def metrics_inputs(model_or_state: Any, weights: Optional[Mapping[str, Any]] = None
                   ) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """``(masks, weights)`` by plain name, in model order, for :func:`fspai.tables.model_metrics`.

    ``model_or_state``: an ``nn.Module`` (attached masks in either form are read; a weight without
    one gets its nonzero pattern; the weights are ``W ⊙ M``) or a masked state dict. ``weights``
    optionally overrides weights by name (names must be prunable layers).
    """
    if isinstance(model_or_state, nn.Module):
        attached = extract_masks(model_or_state)
        effective = masked_weights(model_or_state)  # W ⊙ M by plain name, in model order
        masks = {n: attached.get(n, w != 0) for n, w in effective.items()}
    else:
        masks, raw = masks_and_weights(model_or_state)
        effective = {n: raw[n] * masks[n] for n in masks}
    out_w: Dict[str, Any] = dict(effective)
    if weights is not None:
        unknown = sorted(set(weights) - set(effective), key=str)
        if unknown:
            raise KeyError(f"weights given for names that are not prunable layers of the model: {unknown}")
        out_w.update(weights)
    return masks, out_w
