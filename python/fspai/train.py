"""Training loop: dense, fixed-mask and SET (dynamic sparse) training, single process or DDP.

:func:`fit` trains for ``steps`` optimizer steps or ``epochs`` passes with SGD/Adam(W), an optional
LR schedule (``"multistep"``, ``"cosine"``), weight decay, evaluation, checkpoints that resume
exactly (model, optimizer, scheduler, masks, RNG and data position), a tqdm progress bar, logging
and a :class:`History` that writes CSV/JSON.

Masks: ``masks=`` (e.g. from :func:`fspai.pai.prune`) are attached with
:func:`fspai.masks.apply_masks`, so pruned weights stay exactly zero. ``sparse="set"`` runs SET as
in SET-ITOP: start from ERK masks at ``density`` (or the given masks); every ``set_update_every``
steps, each sparse layer drops the ``ceil(rate * nnz)`` active weights of smallest magnitude and
regrows as many uniformly at random among its inactive positions (new weights and their optimizer
state start at zero), so every layer keeps its edge count; ``rate`` follows a cosine decay from
``set_prune_rate``. At the start and after every update the per-layer fspai metrics and
coordinates are recorded through :func:`fspai.model_metrics` (``History.metrics``).

Distributed: when ``torch.distributed`` is initialised (e.g. under ``torchrun``; see
:func:`setup_distributed`) the model is wrapped in DistributedDataParallel, the training set is
sharded with a DistributedSampler, evaluation is sharded and summed, SET growth uses an RNG seeded
identically on every rank and the new masks are broadcast from rank 0, and only rank 0 writes
checkpoints, history files and metrics.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm.auto import tqdm

from ._torch_utils import (get_rng_state, is_distributed, model_device, rank, seed_everything,
                           set_rng_state, unwrap, world_size)
from .masks import (apply_masks, extract_masks, masked_weights, prunable_parameters,
                    realised_density, update_masks)

__all__ = ["fit", "fit_set", "evaluate", "History", "TrainState", "set_update",
           "setup_distributed", "cleanup_distributed", "load_checkpoint"]

log = logging.getLogger(__name__)

_CKPT_FORMAT = "fspai.checkpoint"
_CKPT_VERSION = 1


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------

def _plain(obj: Any) -> Any:
    """Recursively convert to JSON/`weights_only`-safe Python types."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.item() if obj.numel() == 1 else obj.tolist()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


@dataclass
class History:
    """What :func:`fit` measured.

    * ``epochs``: one row per evaluation (end of each epoch, every ``eval_every`` steps, and the
      end of training): ``epoch, step, train_loss, train_acc, test_loss, test_acc, lr, density,
      time``.
    * ``steps``: ``step, epoch, loss, lr`` every ``log_every`` steps.
    * ``set_updates``: per SET update ``step, prune_rate, removed, regrown`` and per-layer nnz.
    * ``metrics``: per-layer fspai metrics (:class:`fspai.LayerMetrics` fields plus ``step``) at
      the start of SET and after every update (and every ``metrics_every`` steps if set).
    """

    epochs: List[Dict[str, Any]] = field(default_factory=list)
    steps: List[Dict[str, Any]] = field(default_factory=list)
    set_updates: List[Dict[str, Any]] = field(default_factory=list)
    metrics: List[Dict[str, Any]] = field(default_factory=list)
    config: Dict[str, Any] = field(default_factory=dict)
    total_steps: int = 0

    @property
    def final_test_acc(self) -> Optional[float]:
        for row in reversed(self.epochs):
            if row.get("test_acc") is not None:
                return row["test_acc"]
        return None

    def to_dict(self) -> Dict[str, Any]:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        return cls(**{k: d[k] for k in ("epochs", "steps", "set_updates", "metrics", "config",
                                        "total_steps") if k in d})

    def to_json(self, path: Union[str, os.PathLike]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_json_safe(self.to_dict()), indent=1), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, path: Union[str, os.PathLike]) -> "History":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_csv(self, path: Union[str, os.PathLike], table: str = "epochs") -> Path:
        """Write one table (``"epochs"``, ``"steps"``, ``"set_updates"``, ``"metrics"``) as CSV."""
        rows = getattr(self, table)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys: List[str] = []
        for r in rows:
            for k in r:
                if k not in keys:
                    keys.append(k)
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            for r in rows:
                w.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v)
                            for k, v in r.items()})
        return path

    def save(self, directory: Union[str, os.PathLike]) -> Path:
        """``history.json`` plus one CSV per non-empty table in ``directory``."""
        d = Path(directory)
        self.to_json(d / "history.json")
        for table in ("epochs", "steps", "set_updates", "metrics"):
            if getattr(self, table):
                self.to_csv(d / f"{table}.csv", table)
        return d


@dataclass
class TrainState:
    """Passed to callbacks after every optimizer step. A callback returning ``True`` stops
    training after this step (a checkpoint is written first if checkpointing is on)."""

    step: int
    epoch: int
    total_steps: int
    loss: float
    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History


# --------------------------------------------------------------------------------------------
# Distributed helpers
# --------------------------------------------------------------------------------------------

def setup_distributed(backend: Optional[str] = None) -> Tuple[int, int, torch.device]:
    """Initialise ``torch.distributed`` from the ``torchrun`` environment (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``). Backend: nccl with CUDA, else gloo.
    Returns ``(rank, world_size, device)``. Does nothing (but returns) if already initialised."""
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    local = int(os.environ.get("LOCAL_RANK", 0))
    if dist.get_backend() == "nccl":
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return dist.get_rank(), dist.get_world_size(), device


def cleanup_distributed() -> None:
    if is_distributed():
        dist.destroy_process_group()


def _distributed_loader(loader: Any, seed: int) -> Any:
    if not isinstance(loader, DataLoader) or isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_size is None:
        log.warning("train loader uses a custom batch_sampler; not sharding it across ranks")
        return loader
    sampler = DistributedSampler(loader.dataset, shuffle=isinstance(loader.sampler, RandomSampler),
                                 seed=seed, drop_last=loader.drop_last)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      drop_last=loader.drop_last, pin_memory=loader.pin_memory)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**63 - 1)


def _epoch_iter(loader: Any, seed: int, epoch: int):
    """An iterator over one epoch whose order depends only on (seed, epoch)."""
    es = _epoch_seed(seed, epoch)
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    elif isinstance(sampler, RandomSampler):
        if sampler.generator is None:
            sampler.generator = torch.Generator()
        sampler.generator.manual_seed(es)
    gen = getattr(loader, "generator", None)
    if isinstance(gen, torch.Generator) and gen is not getattr(sampler, "generator", None):
        gen.manual_seed(es)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(es)
        return iter(loader)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(model: nn.Module, data: Any, *, device: Optional[torch.device] = None,
             loss_fn: Optional[Callable] = None) -> Dict[str, float]:
    """Mean loss and accuracy of ``model`` on a loader (or a bundle's ``test_loader``).

    Under ``torch.distributed`` each rank evaluates every ``world_size``-th batch and the sums are
    all-reduced, so all ranks return the exact full-set numbers."""
    loader = getattr(data, "test_loader", data)
    net = unwrap(model)
    device = device or model_device(net)
    loss_fn = loss_fn or F.cross_entropy
    was_training = net.training
    net.eval()
    r, ws = rank(), world_size()
    sums = torch.zeros(3, dtype=torch.float64)
    for i, batch in enumerate(loader):
        if i % ws != r:
            continue
        x, y = batch[0].to(device), batch[1].to(device)
        out = net(x)
        sums[0] += float(loss_fn(out, y, reduction="sum"))
        sums[1] += float((out.argmax(1) == y).sum())
        sums[2] += y.numel()
    net.train(was_training)
    if ws > 1:
        sums = sums.to(_comm_device())
        dist.all_reduce(sums)
        sums = sums.cpu()
    n = max(float(sums[2]), 1.0)
    return {"loss": float(sums[0]) / n, "acc": float(sums[1]) / n}


def _comm_device() -> torch.device:
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# --------------------------------------------------------------------------------------------
# SET
# --------------------------------------------------------------------------------------------

def _set_rate(step: int, total: int, rate: float, rate_min: float) -> float:
    """Cosine-decayed prune rate (sparselearning's CosineDecay)."""
    return rate_min + 0.5 * (rate - rate_min) * (1.0 + math.cos(math.pi * min(step, total) / total))


@torch.no_grad()
def set_update(model: nn.Module, rate: float, *, generator: torch.Generator,
               optimizer: Optional[torch.optim.Optimizer] = None) -> Dict[str, Any]:
    """One SET topology update on a masked ``model`` (in place).

    Per sparse layer: remove ``ceil(rate * nnz)`` active weights of smallest magnitude (ties: lower
    index first) and regrow as many uniformly at random among the inactive positions (including
    the just-removed ones, as in sparselearning). Every regrown weight, and its optimizer state
    (momentum, Adam moments), starts at 0; removed weights and their state are zeroed. Dense
    layers (nnz = numel) are left alone. Under ``torch.distributed`` the new masks are broadcast
    from rank 0. Returns a summary dict.
    """
    net = unwrap(model)
    masks = extract_masks(net)
    params = prunable_parameters(net)
    new_masks: Dict[str, torch.Tensor] = {}
    survivors: Dict[str, torch.Tensor] = {}
    removed = 0
    for name, mask in masks.items():
        nnz, numel = int(mask.sum()), mask.numel()
        if nnz == 0 or nnz == numel:
            continue
        k = min(int(math.ceil(rate * nnz)), nnz)
        if k == 0:
            continue
        flat = mask.flatten()
        mag = params[name].detach().abs().flatten().to(torch.float64)
        mag = torch.where(flat, mag, torch.full_like(mag, math.inf))
        drop = torch.sort(mag, stable=True).indices[:k]
        new = flat.clone()
        new[drop] = False
        survivors[name] = new.view_as(mask).clone()
        cand = (~new).nonzero().flatten().cpu()
        grow = cand[torch.randperm(cand.numel(), generator=generator)[:k]].to(new.device)
        new[grow] = True
        new_masks[name] = new.view_as(mask)
        removed += k
    if world_size() > 1:
        for table in (new_masks, survivors):
            for name in sorted(table):
                buf = table[name].to(torch.uint8).to(_comm_device())
                dist.broadcast(buf, src=0)
                table[name] = buf.to(masks[name].device).bool()
    if new_masks:
        update_masks(net, new_masks)
        for name, keep in survivors.items():
            params[name].mul_(keep)                      # regrown weights start at 0
            if optimizer is not None:
                for v in optimizer.state.get(params[name], {}).values():
                    if isinstance(v, torch.Tensor) and v.shape == keep.shape:
                        v.mul_(keep)
    return {"prune_rate": float(rate), "removed": removed, "regrown": removed,
            "nnz": {n: int(m.sum()) for n, m in extract_masks(net).items()}}


def _metrics_rows(net: nn.Module, step: int, epoch: int, convention: str) -> List[Dict[str, Any]]:
    import fspai

    masks = extract_masks(net)
    weights = masked_weights(net, list(masks))
    table = fspai.model_metrics(masks, weights, convention=convention)
    rows = []
    for r in table.to_dicts():
        row = {"step": step, "epoch": epoch}
        row.update(_plain(r))
        rows.append(row)
    return rows


def _metrics_available() -> bool:
    try:
        import fspai

        fspai.model_metrics  # noqa: B018  (raises if the metrics core is missing)
        return True
    except (ImportError, AttributeError):
        return False


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------

def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Read a checkpoint written by :func:`fit` (``weights_only=True``). A directory means its
    ``last.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"{path}: cannot read checkpoint (truncated or corrupt?): {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != _CKPT_FORMAT:
        raise ValueError(f"{path}: not an fspai training checkpoint")
    if ckpt.get("version") != _CKPT_VERSION:
        raise ValueError(f"{path}: unsupported checkpoint version {ckpt.get('version')!r}")
    return ckpt


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------

def _split_data(data: Any) -> Tuple[Any, Any]:
    if hasattr(data, "train_loader"):
        return data.train_loader, getattr(data, "test_loader", None)
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], torch.Tensor):
        return data[0], data[1]
    return data, None


def _make_optimizer(params, name: str, lr: float, momentum: float, nesterov: bool,
                    weight_decay: float, betas: Tuple[float, float]) -> torch.optim.Optimizer:
    name = name.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov,
                               weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {name!r}")


def _lr_lambda(schedule: Optional[str], total: int, milestones: Sequence[float], gamma: float,
               warmup: int, steps_per_unit: int) -> Callable[[int], float]:
    if schedule not in (None, "none", "constant", "multistep", "cosine"):
        raise ValueError(f"lr_schedule must be None, 'multistep' or 'cosine', got {schedule!r}")
    ms: List[int] = []
    for m in milestones:
        if isinstance(m, float) and 0.0 < m < 1.0:
            ms.append(int(round(m * total)))
        else:
            ms.append(int(m) * steps_per_unit)

    def factor(step: int) -> float:
        f = 1.0
        if warmup and step < warmup:
            f *= (step + 1) / warmup
        if schedule == "cosine":
            f *= 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        elif schedule == "multistep":
            f *= gamma ** sum(step >= m for m in ms)
        return f

    return factor


def fit(model: nn.Module, data: Any, *, masks: Optional[Mapping[str, Any]] = None,
        steps: Optional[int] = None, epochs: Optional[int] = None,
        optimizer: str = "sgd", lr: float = 0.1, momentum: float = 0.9, nesterov: bool = False,
        weight_decay: float = 5e-4, betas: Tuple[float, float] = (0.9, 0.999),
        lr_schedule: Optional[str] = None, milestones: Sequence[float] = (0.5, 0.75),
        gamma: float = 0.1, warmup_steps: int = 0, loss_fn: Optional[Callable] = None,
        seed: int = 0, device: Optional[Union[str, torch.device]] = None,
        eval_every: Optional[int] = None, log_every: int = 50, progress: bool = True,
        checkpoint_dir: Optional[Union[str, os.PathLike]] = None,
        checkpoint_every: Optional[int] = None,
        resume: Optional[Union[str, os.PathLike, bool]] = None,
        history_dir: Optional[Union[str, os.PathLike]] = None,
        sparse: Optional[str] = None, density: Optional[float] = None,
        set_update_every: int = 100, set_prune_rate: float = 0.5,
        set_prune_rate_min: float = 0.005, set_init: str = "erk", set_stop: float = 1.0,
        record_metrics: Optional[bool] = None, metrics_every: Optional[int] = None,
        metrics_convention: str = "neurips23",
        callbacks: Sequence[Callable[[TrainState], Optional[bool]]] = (),
        mask_method: str = "parametrize") -> History:
    """Train ``model`` in place and return its :class:`History`.

    Parameters (main ones)
    ----------------------
    data : a :class:`fspai.data.DataBundle` (or anything with ``train_loader``/``test_loader``),
        a ``(train_loader, test_loader)`` pair, or a train loader alone (no evaluation).
    masks : ``{name: mask}`` to attach (fixed-mask training, or SET's start). Masks already
        attached to ``model`` are used if ``masks`` is None.
    steps / epochs : training length (optimizer steps, or passes over the train loader).
    optimizer : ``"sgd"`` (``momentum``, ``nesterov``), ``"adam"`` or ``"adamw"`` (``betas``);
        ``lr``, ``weight_decay``.
    lr_schedule : None, ``"multistep"`` (``milestones``: fractions of training if floats in
        (0, 1), else epochs when ``epochs`` is given / steps otherwise; ``gamma``) or
        ``"cosine"``; optional linear ``warmup_steps``.
    seed : seeds torch/numpy/random and the per-epoch shuffling (the order depends only on
        ``seed`` and the epoch, which makes resuming exact).
    eval_every : also evaluate every n steps (always at each epoch end and at the end).
    checkpoint_dir / checkpoint_every : write ``step_<n>.pt`` and ``last.pt`` every n steps (and
        at the end). resume : a checkpoint file or directory (its ``last.pt``), or True for
        ``checkpoint_dir/last.pt`` if it exists; restores the model with its masks (these win
        over ``masks=``), optimizer, scheduler, RNG states, data position and history, so
        ``N`` uninterrupted steps and ``k`` + resumed ``N - k`` steps give identical weights.
    history_dir : write the history (JSON + CSV) there at the end and with each checkpoint.
    sparse : None (dense unless masks are given), ``"fixed"`` or ``"set"``. For SET:
        ``density`` (start from ``prune(model, set_init, density)`` when no masks are given),
        ``set_update_every``, ``set_prune_rate`` (decayed by a cosine to
        ``set_prune_rate_min``), ``set_stop`` (fraction of training after which the topology is
        frozen).
    record_metrics : record fspai metrics at SET updates (None: if the metrics core is
        importable; True: required). metrics_every : also record every n steps of any sparse
        training. metrics_convention : passed to :func:`fspai.model_metrics`.
    callbacks : functions of :class:`TrainState` called after each step; returning True stops.
    """
    if (steps is None) == (epochs is None):
        raise ValueError("give exactly one of steps= or epochs=")
    if sparse not in (None, "fixed", "set"):
        raise ValueError(f"sparse must be None, 'fixed' or 'set', got {sparse!r}")
    if set_update_every < 1:
        raise ValueError("set_update_every must be >= 1")
    r, ws = rank(), world_size()
    loss_fn = loss_fn or F.cross_entropy
    train_loader, test_loader = _split_data(data)
    if ws > 1:
        train_loader = _distributed_loader(train_loader, seed)
    try:
        steps_per_epoch = len(train_loader)
        sized = steps_per_epoch > 0
    except TypeError:
        steps_per_epoch, sized = 0, False
    if epochs is not None:
        if not sized:
            raise ValueError("epochs= needs a train loader with a length; use steps=")
        total = int(epochs) * steps_per_epoch
    else:
        total = int(steps)
    if total < 1:
        raise ValueError("nothing to train: 0 steps")
    steps_per_epoch = steps_per_epoch or total

    ckpt = None
    if resume is True:
        if checkpoint_dir is not None and (Path(checkpoint_dir) / "last.pt").is_file():
            ckpt = load_checkpoint(Path(checkpoint_dir) / "last.pt")
    elif resume:
        ckpt = load_checkpoint(resume)

    seed_everything(int(seed) + r)
    net = unwrap(model)
    if device is not None:
        dev = torch.device(device)
    elif is_distributed() and dist.get_backend() == "nccl":
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = model_device(net)
    net.to(dev)

    # ---- masks --------------------------------------------------------------------------
    if ckpt is not None and ckpt.get("masks"):
        apply_masks(net, ckpt["masks"], strict=False, method=mask_method)
    elif masks is not None:
        apply_masks(net, masks, strict=False, method=mask_method)
    elif sparse == "set" and not extract_masks(net):
        if density is None:
            raise ValueError("sparse='set' needs density= (or masks=)")
        from .pai import prune

        init_masks = prune(net, set_init, density, seed=seed,
                           data=train_loader if set_init in ("snip", "grasp", "itersnip") else None)
        apply_masks(net, init_masks, method=mask_method)
    has_masks = bool(extract_masks(net))
    if sparse is None and has_masks:
        sparse = "fixed"
    if sparse == "set" and not has_masks:
        raise ValueError("sparse='set' needs masks")
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])

    if record_metrics is None:
        record_metrics = bool(has_masks) and _metrics_available()
        if has_masks and not record_metrics and (sparse == "set" or metrics_every):
            log.warning("fspai metrics core not importable; SET metrics are not recorded")
    elif record_metrics and not _metrics_available():
        raise ImportError("record_metrics=True but fspai.model_metrics (the compiled metrics "
                          "core) is not importable")

    # ---- optimisation -------------------------------------------------------------------
    train_model: nn.Module = model
    if ws > 1 and not isinstance(model, nn.parallel.DistributedDataParallel):
        ids = [dev.index] if dev.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(net, device_ids=ids)
    opt = _make_optimizer(net.parameters(), optimizer, lr, momentum, nesterov, weight_decay, betas)
    units = steps_per_epoch if epochs is not None else 1
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(lr_schedule, total, milestones, gamma, warmup_steps, units))

    config = _plain({"steps": total, "epochs": epochs, "optimizer": optimizer, "lr": lr,
                     "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay,
                     "lr_schedule": lr_schedule, "seed": seed, "sparse": sparse,
                     "density": density, "set_update_every": set_update_every,
                     "set_prune_rate": set_prune_rate, "world_size": ws})
    history = History(config=config, total_steps=total)
    step = 0
    accum = {"loss": 0.0, "correct": 0.0, "count": 0.0}
    pending_rng = None
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        step = int(ckpt["step"])
        history = History.from_dict(ckpt["history"])
        history.total_steps = total
        accum = dict(ckpt["accum"])
        rng = ckpt["rng"]
        pending_rng = rng[r] if isinstance(rng, list) and len(rng) == ws else (
            rng[0] if isinstance(rng, list) else rng)
        if int(ckpt.get("total_steps", total)) != total:
            log.warning("resuming a run planned for %s steps with %s steps",
                        ckpt.get("total_steps"), total)
        log.info("resumed from step %d", step)

    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    set_stop_step = int(set_stop * total)

    def record(step_now: int, epoch_now: int) -> None:
        if record_metrics and r == 0:
            history.metrics.extend(_metrics_rows(net, step_now, epoch_now, metrics_convention))

    def do_eval(epoch_now: int, step_now: int) -> None:
        n = max(accum["count"], 1.0)
        row: Dict[str, Any] = {"epoch": epoch_now, "step": step_now,
                               "train_loss": accum["loss"] / n, "train_acc": accum["correct"] / n}
        if ws > 1:
            t = torch.tensor([accum["loss"], accum["correct"], accum["count"]],
                             dtype=torch.float64, device=_comm_device())
            dist.all_reduce(t)
            t = t.cpu()
            n = max(float(t[2]), 1.0)
            row["train_loss"], row["train_acc"] = float(t[0]) / n, float(t[1]) / n
        if test_loader is not None:
            ev = evaluate(net, test_loader, device=dev, loss_fn=loss_fn)
            row["test_loss"], row["test_acc"] = ev["loss"], ev["acc"]
        row["lr"] = opt.param_groups[0]["lr"]
        row["density"] = realised_density(extract_masks(net)) if has_masks else 1.0
        row["time"] = time.time()
        history.epochs.append(row)
        log.info("epoch %d step %d: train loss %.4f acc %.4f, test acc %s", epoch_now, step_now,
                 row["train_loss"], row["train_acc"], row.get("test_acc"))

    def save_ckpt(step_now: int) -> None:
        rng_state = get_rng_state()
        if ws > 1:
            states: List[Any] = [None] * ws
            dist.all_gather_object(states, rng_state)
            rng_state = states
        if r == 0 and ckpt_dir is not None:
            obj = {"format": _CKPT_FORMAT, "version": _CKPT_VERSION, "step": step_now,
                   "total_steps": total, "model": net.state_dict(), "optimizer": opt.state_dict(),
                   "scheduler": sched.state_dict(),
                   "masks": {k: v.cpu() for k, v in extract_masks(net).items()},
                   "rng": rng_state, "accum": dict(accum), "history": history.to_dict(),
                   "config": config}
            _atomic_save(obj, ckpt_dir / f"step_{step_now:08d}.pt")
            _atomic_save(obj, ckpt_dir / "last.pt")
            if history_dir is not None:
                history.save(history_dir)
        if ws > 1:
            dist.barrier()

    if step == 0 and has_masks and (sparse == "set" or metrics_every):
        record(0, 0)

    pbar = tqdm(total=total, initial=step, disable=not progress or r != 0, leave=False,
                desc="train", dynamic_ncols=True)
    stop = False
    try:
        while step < total and not stop:
            epoch = step // steps_per_epoch
            in_epoch = step % steps_per_epoch
            it = _epoch_iter(train_loader, seed, epoch)
            for _ in range(in_epoch):
                next(it)
            if pending_rng is not None:
                set_rng_state(pending_rng)
                pending_rng = None
            if in_epoch == 0:
                accum = {"loss": 0.0, "correct": 0.0, "count": 0.0}
            while in_epoch < steps_per_epoch and step < total:
                try:
                    batch = next(it)
                except StopIteration:
                    if sized:
                        raise
                    it = _epoch_iter(train_loader, seed, step)  # unsized loader: start over
                    batch = next(it)
                x, y = batch[0].to(dev), batch[1].to(dev)
                train_model.train()
                out = train_model(x)
                loss = loss_fn(out, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                in_epoch += 1
                lv = float(loss.detach())
                accum["loss"] += lv * y.shape[0]
                accum["correct"] += float((out.detach().argmax(1) == y).sum())
                accum["count"] += float(y.shape[0])
                pbar.update(1)
                if log_every and step % log_every == 0:
                    history.steps.append({"step": step, "epoch": epoch, "loss": lv,
                                          "lr": opt.param_groups[0]["lr"]})
                    pbar.set_postfix(loss=f"{lv:.4f}")

                if sparse == "set" and step % set_update_every == 0 and step < set_stop_step:
                    rate = _set_rate(step, total, set_prune_rate, set_prune_rate_min)
                    gen = torch.Generator().manual_seed(_epoch_seed(seed, step))
                    info = set_update(net, rate, generator=gen, optimizer=opt)
                    history.set_updates.append({"step": step, **_plain(info)})
                    record(step, epoch)
                elif metrics_every and has_masks and step % metrics_every == 0:
                    record(step, epoch)

                state = TrainState(step=step, epoch=epoch, total_steps=total, loss=lv,
                                   model=net, optimizer=opt, history=history)
                for cb in callbacks:
                    if cb(state):
                        stop = True
                epoch_done = in_epoch == steps_per_epoch
                if epoch_done or step == total or (eval_every and step % eval_every == 0):
                    do_eval(epoch + (1 if epoch_done else 0), step)
                if ckpt_dir is not None and (step == total or stop or (
                        checkpoint_every and step % checkpoint_every == 0)):
                    save_ckpt(step)
                if stop:
                    break
    finally:
        pbar.close()
    if r == 0 and history_dir is not None:
        history.save(history_dir)
    return history


def fit_set(model: nn.Module, data: Any, *, density: Optional[float] = None,
            update_every: int = 100, prune_rate: float = 0.5, init: str = "erk",
            **kwargs) -> History:
    """SET training: ``fit(..., sparse="set", set_update_every=update_every,
    set_prune_rate=prune_rate, set_init=init, density=density)``."""
    return fit(model, data, sparse="set", density=density, set_update_every=update_every,
               set_prune_rate=prune_rate, set_init=init, **kwargs)
