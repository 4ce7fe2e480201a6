"""Training loop: dense, fixed-mask and SET (dynamic sparse) training, single process or DDP.

:func:`fit` trains for ``steps`` optimizer steps or ``epochs`` passes with SGD/Adam(W), an optional
LR schedule (``"multistep"``, ``"cosine"``), weight decay, evaluation, checkpoints that resume
exactly (model, optimizer, scheduler, masks, RNG and data position), a tqdm progress bar, logging
and a :class:`~fspai.history.History` that writes CSV/JSON.

Options come in typed groups (:class:`TrainConfig` with :class:`OptimConfig`,
:class:`SetConfig`, :class:`CheckpointConfig`, :class:`MetricsConfig`); ``fit`` also takes them
as flat keywords (``lr=``, ``set_update_every=``, ``checkpoint_dir=`` ...), mapped by
:meth:`TrainConfig.from_options`, which rejects unknown names and wrong types.

Masks: ``masks=`` (e.g. from :func:`fspai.pai.prune`) are attached with
:func:`fspai.masks.apply_masks`, so pruned weights stay exactly zero. ``sparse="set"`` runs SET as
in SET-ITOP (:mod:`fspai.dst`): start from the given masks or a random ``set_init`` mask
(``"erk"``, ``"er"`` or ``"uniform"``, from :mod:`fspai.selection`) at ``density``; to start SET
from a scored mask pass ``masks=fspai.pai.prune(...)``. At the start and after every update the
per-layer fspai metrics are recorded (``History.metrics``).

Distributed: when ``torch.distributed`` is initialised (e.g. under ``torchrun``; see
:func:`fspai.distributed.setup_distributed`) the model is wrapped in DistributedDataParallel, the
training set is sharded, evaluation is sharded and summed, SET growth uses an RNG seeded
identically on every rank and the new masks are broadcast from rank 0, and only rank 0 writes
checkpoints, history files and metrics. ``distributed=False`` trains this process alone.

Checkpoints use the one schema of :mod:`fspai.checkpoint`.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ._fit import Trainer, TrainState, evaluate
from ._typed import as_dict, build, check_fields
from ._vocab import check_density
from .checkpoint import Checkpoint, load_checkpoint
from .distributed import cleanup_distributed, setup_distributed
from .dst import set_update
from .history import History

__all__ = ["fit", "fit_set", "evaluate", "History", "TrainState", "TrainConfig", "OptimConfig",
           "SetConfig", "CheckpointConfig", "MetricsConfig", "set_update", "setup_distributed",
           "cleanup_distributed", "load_checkpoint", "Checkpoint"]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
SCHEDULES = (None, "none", "constant", "multistep", "cosine")
OPTIMIZERS = ("sgd", "adam", "adamw")
SET_INITS = ("erk", "er", "uniform")


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and LR schedule. ``optimizer``: ``"sgd"`` (``momentum``, ``nesterov``),
    ``"adam"``/``"adamw"`` (``betas``). ``lr_schedule``: None, ``"multistep"`` (``milestones``:
    fractions of training if floats in (0, 1), else epochs when training by epochs / steps
    otherwise; ``gamma``) or ``"cosine"``; optional linear ``warmup_steps``."""

    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    betas: Tuple[float, float] = (0.9, 0.999)
    lr_schedule: Optional[str] = None
    milestones: Sequence[float] = (0.5, 0.75)
    gamma: float = 0.1
    warmup_steps: int = 0

    def __post_init__(self):
        check_fields(self, "train")
        if self.optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0 or self.gamma <= 0:
            raise ValueError("need 0 <= momentum < 1, weight_decay >= 0 and gamma > 0; got "
                             f"{self.momentum}, {self.weight_decay}, {self.gamma}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be None, 'multistep' or 'cosine', got "
                             f"{self.lr_schedule!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")


@dataclass(frozen=True)
class SetConfig:
    """SET: update every ``update_every`` steps, prune rate ``prune_rate`` decayed by a cosine to
    ``prune_rate_min``; ``init``: random start mask when none is given; ``stop``: fraction of
    training after which the topology is frozen."""

    update_every: int = 100
    prune_rate: float = 0.5
    prune_rate_min: float = 0.005
    init: str = "erk"
    stop: float = 1.0

    def __post_init__(self):
        check_fields(self, "train.set")
        if self.update_every < 1:
            raise ValueError("set_update_every must be >= 1")
        if not (0 < self.prune_rate <= 1 and 0 <= self.prune_rate_min <= self.prune_rate):
            raise ValueError("need 0 <= set_prune_rate_min <= set_prune_rate <= 1")
        if self.init not in SET_INITS + ("random",):
            raise ValueError(f"set_init must be one of {list(SET_INITS)} (pass masks= to start "
                             f"from a scored mask), got {self.init!r}")
        if not 0 <= self.stop <= 1:
            raise ValueError(f"set_stop must be in [0, 1], got {self.stop}")


@dataclass(frozen=True)
class CheckpointConfig:
    """``dir``/``every``: write ``step_<n>.pt`` and ``last.pt`` every n steps (and at the end).
    ``resume``: a checkpoint file or directory, or True for ``dir/last.pt`` if it exists.
    ``history_dir``: write the history (JSON + CSV) there at the end and with each checkpoint."""

    dir: Optional[Union[str, os.PathLike]] = None
    every: Optional[int] = None
    resume: Optional[Union[bool, str, os.PathLike]] = None
    history_dir: Optional[Union[str, os.PathLike]] = None

    def __post_init__(self):
        check_fields(self, "train.checkpoint")


@dataclass(frozen=True)
class MetricsConfig:
    """``record``: record fspai metrics at SET updates (None: if the metrics core is importable;
    True: required). ``every``: also every n steps of any sparse training. ``convention``:
    passed to :func:`fspai.model_metrics`."""

    record: Optional[bool] = None
    every: Optional[int] = None
    convention: str = "neurips23"

    def __post_init__(self):
        check_fields(self, "train.metrics")


#: flat keyword of fit -> (group, field); names not listed are TrainConfig fields.
_FLAT: Dict[str, Tuple[str, str]] = {
    **{f.name: ("optim", f.name) for f in fields(OptimConfig)},
    **{f"set_{f.name}": ("set", f.name) for f in fields(SetConfig)},
    "checkpoint_dir": ("checkpoint", "dir"), "checkpoint_every": ("checkpoint", "every"),
    "resume": ("checkpoint", "resume"), "history_dir": ("checkpoint", "history_dir"),
    "record_metrics": ("metrics", "record"), "metrics_every": ("metrics", "every"),
    "metrics_convention": ("metrics", "convention"),
}
_GROUPS = {"optim": OptimConfig, "set": SetConfig, "checkpoint": CheckpointConfig,
           "metrics": MetricsConfig}


@dataclass(frozen=True)
class TrainConfig:
    """Everything :func:`fit` needs besides the model, the data, masks and callbacks.

    ``steps``/``epochs``: training length (exactly one, checked by ``fit``). ``seed`` seeds
    torch/numpy/random and the per-epoch shuffling (the order depends only on ``seed`` and the
    epoch, which makes resuming exact). ``sparse``: None (dense unless masks are given),
    ``"fixed"`` or ``"set"`` (``density``: SET's start density without masks). ``eval_every``:
    also evaluate every n steps. ``distributed``: use the process group if one is initialised.
    """

    steps: Optional[int] = None
    epochs: Optional[int] = None
    seed: int = 0
    device: Optional[Union[str, torch.device]] = None
    sparse: Optional[str] = None
    density: Optional[float] = None
    eval_every: Optional[int] = None
    log_every: int = 50
    progress: bool = True
    loss_fn: Optional[Callable] = None
    mask_method: str = "parametrize"
    distributed: bool = True
    optim: OptimConfig = field(default_factory=OptimConfig)
    set: SetConfig = field(default_factory=SetConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def __post_init__(self):
        check_fields(self, "train")
        for key in ("steps", "epochs", "eval_every"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise ValueError(f"{key} must be >= 1, got {v}")
        if self.sparse not in (None, "fixed", "set"):
            raise ValueError(f"sparse must be None, 'fixed' or 'set', got {self.sparse!r}")
        if self.density is not None:
            object.__setattr__(self, "density", check_density(self.density))
        if self.mask_method not in ("parametrize", "prune"):
            raise ValueError(f"mask_method must be 'parametrize' or 'prune', got "
                             f"{self.mask_method!r}")

    @classmethod
    def from_options(cls, base: Optional["TrainConfig"] = None, **options: Any) -> "TrainConfig":
        """A config from ``fit``'s flat keywords (on top of ``base``); ``TypeError`` naming
        unknown options, ``TypeError``/``ValueError`` for bad values."""
        top = {f.name for f in fields(cls)}
        unknown = sorted(k for k in options if k not in _FLAT and k not in top)
        if unknown:
            raise TypeError(f"unknown training option(s) {unknown}; known: "
                            f"{sorted(set(_FLAT) | top)}")
        base = base or cls()
        values = as_dict(base)
        groups = {}
        for g, cls_g in _GROUPS.items():
            start = options.get(g, getattr(base, g))
            if not isinstance(start, cls_g):
                raise TypeError(f"train.{g} must be a {cls_g.__name__}, got {start!r}")
            groups[g] = as_dict(start)
        for k, v in options.items():
            if k in _FLAT:
                g, name = _FLAT[k]
                groups[g][name] = v
            elif k not in _GROUPS:
                values[k] = v
        for g, cls_g in _GROUPS.items():
            values[g] = build(cls_g, groups[g], f"train.{g}")
        return build(cls, values, "train")


def fit(model: nn.Module, data: Any, *, masks: Optional[Mapping[str, Any]] = None,
        config: Optional[TrainConfig] = None,
        callbacks: Sequence[Callable[[TrainState], Optional[bool]]] = (),
        **options: Any) -> History:
    """Train ``model`` in place and return its :class:`~fspai.history.History`.

    data : a :class:`fspai.data.DataBundle` (or anything with ``train_loader``/``test_loader``),
        a ``(train_loader, test_loader)`` pair, or a train loader alone (no evaluation).
    masks : ``{name: mask}`` to attach (fixed-mask training, or SET's start). Masks already
        attached to ``model`` are used if ``masks`` is None.
    config / options : a :class:`TrainConfig` and/or its flat keywords (``steps``, ``epochs``,
        ``lr``, ``optimizer``, ``lr_schedule``, ``seed``, ``sparse``, ``density``,
        ``set_update_every``, ``checkpoint_dir``, ``resume``, ``record_metrics`` ... see the
        dataclasses); unknown keywords raise ``TypeError``.
    callbacks : functions of :class:`TrainState` called after each step; returning True stops.

    Resuming (``resume=``) restores the model with its masks (these win over ``masks=``),
    optimizer, scheduler, RNG states, data position and history, so ``N`` uninterrupted steps and
    ``k`` + resumed ``N - k`` steps give identical weights.
    """
    cfg = TrainConfig.from_options(config, **options)
    if (cfg.steps is None) == (cfg.epochs is None):
        raise ValueError("give exactly one of steps= or epochs=")
    return Trainer(model, data, masks, cfg, list(callbacks)).run()


def fit_set(model: nn.Module, data: Any, *, density: Optional[float] = None,
            update_every: int = 100, prune_rate: float = 0.5, init: str = "erk",
            **kwargs: Any) -> History:
    """SET training: ``fit(..., sparse="set", set_update_every=update_every,
    set_prune_rate=prune_rate, set_init=init, density=density)``."""
    return fit(model, data, sparse="set", density=density, set_update_every=update_every,
               set_prune_rate=prune_rate, set_init=init, **kwargs)
