"""The one checkpoint schema of fspai, written by ``fit`` and the CLI and read by every command.

A checkpoint is a ``torch.save`` file, loadable with ``weights_only=True``, holding a dict::

    {"format": "fspai.checkpoint", "version": 2,
     "state_dict": {plain name: tensor},  # as of the unmasked model (fspai.masks.plain_state_dict)
     "masks": {name: BoolTensor} | None,   # the attached masks, if any
     "meta": {...},                        # JSON data: model, dataset, seed, accuracy, kind, ...
     "training": {...} | None}             # fit's resume state: step, total_steps, optimizer,
                                           # scheduler, rng, accum, history, config

:func:`load_checkpoint` also reads the two layouts earlier fspai 0.1 wrote: ``fit``'s
``{"format": "fspai.checkpoint", "version": 1, "model": <masked state dict>, ...}`` and the
CLI's ``{"format": "fspai.checkpoint", "state_dict": ..., "model": "<name>", ...}``; anything
else raises ``ValueError`` naming the schema. Writes are atomic (``fspai._jsonio``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch

from ._jsonio import atomic_write, jsonable
from .masks import plain_state_dict

__all__ = ["FORMAT", "VERSION", "Checkpoint", "save_checkpoint", "load_checkpoint",
           "load_state", "load_weights"]

FORMAT = "fspai.checkpoint"
VERSION = 2
_SCHEMA = f"{FORMAT!r} version {VERSION} (also reads version 1 and the 0.1 CLI layout)"
_TRAINING_KEYS = ("step", "total_steps", "optimizer", "scheduler", "rng", "accum", "history",
                  "config")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Checkpoint:
    """A loaded checkpoint (see the module docstring for the fields)."""

    state_dict: Dict[str, torch.Tensor]
    masks: Optional[Dict[str, torch.Tensor]] = None
    meta: Dict[str, Any] = field(default_factory=dict)
    training: Optional[Dict[str, Any]] = None
    version: Optional[int] = VERSION
    path: Optional[Path] = None

    @property
    def step(self) -> Optional[int]:
        """The training step it was written at (None if it holds no training state)."""
        return None if self.training is None else int(self.training["step"])


def save_checkpoint(path: PathLike, state_dict: Mapping[str, torch.Tensor], *,
                    masks: Optional[Mapping[str, torch.Tensor]] = None,
                    meta: Optional[Mapping[str, Any]] = None,
                    training: Optional[Mapping[str, Any]] = None) -> Path:
    """Write a checkpoint atomically. ``state_dict`` may be a masked model's state dict (keys
    are made plain); ``meta`` must be JSON data; ``training`` is ``fit``'s resume state."""
    obj = {"format": FORMAT, "version": VERSION,
           "state_dict": {k: v.detach().cpu() for k, v in plain_state_dict(state_dict).items()},
           "masks": None if masks is None else {k: v.detach().cpu().bool()
                                               for k, v in masks.items()},
           "meta": jsonable(dict(meta or {}), where="checkpoint meta"),
           "training": None if training is None else dict(training)}
    return atomic_write(path, lambda f: torch.save(obj, f))


def _read(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - any unpickling problem is bad input
        raise ValueError(f"{path}: cannot read checkpoint (not a torch file of tensors, or "
                         f"truncated): {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                         ) from None


def _tensors(path: Path, obj: Any, what: str) -> Dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in obj.items()):
        raise ValueError(f"{path}: {what} is not a dict of tensors (schema {_SCHEMA})")
    return plain_state_dict(obj)


def _convert(path: Path, obj: Any) -> Checkpoint:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"{path}: not an fspai checkpoint (expected {_SCHEMA})")
    version = obj.get("version")
    masks = obj.get("masks")
    if masks is not None:
        masks = {k: v.bool() for k, v in _tensors(path, masks, "'masks'").items()}
    if version == VERSION:
        meta = obj.get("meta") or {}
        return Checkpoint(_tensors(path, obj.get("state_dict"), "'state_dict'"), masks,
                          dict(meta), obj.get("training"), VERSION, path)
    if version == 1:                                   # fit's 0.1 layout
        training = {k: obj[k] for k in _TRAINING_KEYS if k in obj}
        return Checkpoint(_tensors(path, obj.get("model"), "'model'"), masks, {}, training, 1,
                          path)
    if version is None and isinstance(obj.get("state_dict"), dict):   # the 0.1 CLI layout
        meta = {k: v for k, v in obj.items()
                if k not in ("format", "state_dict", "masks") and
                isinstance(v, (str, int, float, bool, type(None)))}
        return Checkpoint(_tensors(path, obj["state_dict"], "'state_dict'"), masks, meta, None,
                          0, path)
    raise ValueError(f"{path}: unsupported fspai checkpoint version {version!r} "
                     f"(this fspai reads {_SCHEMA})")


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read a checkpoint (a directory means its ``last.pt``); ``FileNotFoundError`` if missing,
    ``ValueError`` naming the schema if it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return _convert(path, _read(path))


def load_state(path: PathLike) -> Checkpoint:
    """Like :func:`load_checkpoint`, but also accepts a torch file holding a plain state dict
    (bare, or under ``"state_dict"``/``"model_state_dict"``/``"model"``), returned as a
    :class:`Checkpoint` with ``version=None`` and no masks or training state."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    obj = _read(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return _convert(path, obj)
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    return Checkpoint(_tensors(path, obj, "the file"), version=None, path=path)


def load_weights(path: PathLike) -> Dict[str, torch.Tensor]:
    """The plain state dict of an fspai checkpoint or of a torch state-dict file
    (:func:`load_state`)."""
    return load_state(path).state_dict
