"""The implementation of :func:`fspai.train.fit`: :class:`Trainer` and :func:`evaluate`.

Internal; use :mod:`fspai.train`. The options are documented on
:class:`fspai.train.TrainConfig`.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DistributedSampler, RandomSampler
from tqdm.auto import tqdm

from ._jsonio import jsonable
from ._torch_utils import (get_rng_state, model_device, resolve_device, seed_everything,
                           set_rng_state, unwrap)
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .distributed import all_gather_objects, comm_device, rank, shard_loader, world_size
from .dst import set_rate, set_update
from .history import History
from .masks import (apply_masks, extract_masks, load_plain_state_dict, masked_weights,
                    prunable_parameters, realised_density)
from .selection import random_masks

__all__ = ["Trainer", "TrainState", "evaluate"]

log = logging.getLogger("fspai.train")


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


@torch.no_grad()
def evaluate(model: nn.Module, data: Any, *, device: Optional[torch.device] = None,
             loss_fn: Optional[Callable] = None, distributed: bool = True) -> Dict[str, float]:
    """``{"loss", "acc"}``: mean loss and accuracy of ``model`` on a loader (or a bundle's
    ``test_loader``).

    Under ``torch.distributed`` (and ``distributed=True``) each rank evaluates every
    ``world_size``-th batch and the sums are all-reduced, so all ranks return the exact
    full-set numbers."""
    loader = getattr(data, "test_loader", data)
    net = unwrap(model)
    device = device or model_device(net)
    loss_fn = loss_fn or F.cross_entropy
    was_training = net.training
    net.eval()
    r, ws = (rank(), world_size()) if distributed else (0, 1)
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
        sums = sums.to(comm_device())
        torch.distributed.all_reduce(sums)
        sums = sums.cpu()
    n = max(float(sums[2]), 1.0)
    return {"loss": float(sums[0]) / n, "acc": float(sums[1]) / n}




def _split_data(data: Any) -> Tuple[Any, Any]:
    if hasattr(data, "train_loader"):
        return data.train_loader, getattr(data, "test_loader", None)
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], torch.Tensor):
        return data[0], data[1]
    return data, None


def _make_optimizer(params, o) -> torch.optim.Optimizer:
    name = o.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                               weight_decay=o.weight_decay)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


def _lr_lambda(o, total: int, steps_per_unit: int) -> Callable[[int], float]:
    ms: List[int] = []
    for m in o.milestones:
        if isinstance(m, float) and 0.0 < m < 1.0:
            ms.append(int(round(m * total)))
        else:
            ms.append(int(m) * steps_per_unit)

    def factor(step: int) -> float:
        f = 1.0
        if o.warmup_steps and step < o.warmup_steps:
            f *= (step + 1) / o.warmup_steps
        if o.lr_schedule == "cosine":
            f *= 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        elif o.lr_schedule == "multistep":
            f *= o.gamma ** sum(step >= m for m in ms)
        return f

    return factor


def _metrics_rows(net: nn.Module, step: int, epoch: int, convention: str) -> List[Dict[str, Any]]:
    from .tables import model_metrics   # the metric tables of the core layer

    masks = extract_masks(net)
    table = model_metrics(masks, masked_weights(net, list(masks)), convention=convention)
    return [{"step": step, "epoch": epoch, **jsonable(r)} for r in table.to_dicts()]


def _metrics_available() -> bool:
    try:
        from .tables import model_metrics  # noqa: F401
        return True
    except ImportError:
        return False


class Trainer:
    """One run of :func:`fspai.train.fit` (its state and steps; see there for the behaviour).

    Kept as a class so every phase (set-up, one step, evaluation, checkpoint) is a short method.
    """

    def __init__(self, model: nn.Module, data: Any, masks: Optional[Mapping[str, Any]], cfg,
                 callbacks: List[Callable[[TrainState], Optional[bool]]]):
        self.cfg, self.callbacks, self.model = cfg, callbacks, model
        self.r, self.ws = (rank(), world_size()) if cfg.distributed else (0, 1)
        self.loss_fn = cfg.loss_fn or F.cross_entropy
        self.train_loader, self.test_loader = _split_data(data)
        if self.ws > 1:
            self.train_loader = shard_loader(self.train_loader, cfg.seed)
        self._plan_length()
        ckpt = self._checkpoint_to_resume()
        seed_everything(int(cfg.seed) + self.r)
        self.net = unwrap(model)
        self.dev = self._device()
        self.net.to(self.dev)
        self._attach(masks, ckpt)
        self._setup_optimizer()
        self.history = History(config=self._summary(), total_steps=self.total)
        self.step, self.pending_rng = 0, None
        self.accum = {"loss": 0.0, "correct": 0.0, "count": 0.0}
        if ckpt is not None:
            self._restore(ckpt)

    # ---- set-up ----------------------------------------------------------------------------
    def _plan_length(self) -> None:
        try:
            spe = len(self.train_loader)
            self.sized = spe > 0
        except TypeError:
            spe, self.sized = 0, False
        if self.cfg.epochs is not None:
            if not self.sized:
                raise ValueError("epochs= needs a train loader with a length; use steps=")
            self.total = int(self.cfg.epochs) * spe
        else:
            self.total = int(self.cfg.steps)
        if self.total < 1:
            raise ValueError("nothing to train: 0 steps")
        self.steps_per_epoch = spe or self.total

    def _checkpoint_to_resume(self) -> Optional[Checkpoint]:
        c = self.cfg.checkpoint
        if c.resume is True:
            if c.dir is not None and (Path(c.dir) / "last.pt").is_file():
                return load_checkpoint(Path(c.dir) / "last.pt")
            return None
        if c.resume:
            ck = load_checkpoint(c.resume)
            if ck.training is None:
                raise ValueError(f"{c.resume}: the checkpoint holds no training state to resume")
            return ck
        return None

    def _device(self) -> torch.device:
        if self.cfg.device is not None:
            return resolve_device(self.cfg.device)
        if self.ws > 1 and torch.distributed.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return model_device(self.net)

    def _attach(self, masks, ckpt: Optional[Checkpoint]) -> None:
        cfg, net = self.cfg, self.net
        method = cfg.mask_method
        if ckpt is not None and ckpt.masks:
            apply_masks(net, ckpt.masks, strict=False, method=method)
        elif masks is not None:
            apply_masks(net, masks, strict=False, method=method)
        elif cfg.sparse == "set" and not extract_masks(net):
            if cfg.density is None:
                raise ValueError("sparse='set' needs density= (or masks=)")
            shapes = {n: tuple(p.shape) for n, p in prunable_parameters(net).items()}
            dist = "uniform" if cfg.set.init == "random" else cfg.set.init
            apply_masks(net, random_masks(shapes, cfg.density, seed=cfg.seed, distribution=dist),
                        method=method)
        self.has_masks = bool(extract_masks(net))
        self.sparse = cfg.sparse or ("fixed" if self.has_masks else None)
        if self.sparse == "set" and not self.has_masks:
            raise ValueError("sparse='set' needs masks")
        if ckpt is not None:
            load_plain_state_dict(net, ckpt.state_dict)
        rec = cfg.metrics.record
        if rec is None:
            rec = self.has_masks and _metrics_available()
            if self.has_masks and not rec and (self.sparse == "set" or cfg.metrics.every):
                log.warning("fspai metrics core not importable; SET metrics are not recorded")
        elif rec and not _metrics_available():
            raise ImportError("record_metrics=True but fspai.model_metrics (the compiled metrics "
                              "core) is not importable")
        self.record_metrics = bool(rec)

    def _setup_optimizer(self) -> None:
        self.train_model: nn.Module = self.model
        if self.ws > 1 and not isinstance(self.model, nn.parallel.DistributedDataParallel):
            ids = [self.dev.index] if self.dev.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        o = self.cfg.optim
        self.opt = _make_optimizer(self.net.parameters(), o)
        units = self.steps_per_epoch if self.cfg.epochs is not None else 1
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(o, self.total, units))

    def _summary(self) -> Dict[str, Any]:
        c, o = self.cfg, self.cfg.optim
        return jsonable({"steps": self.total, "epochs": c.epochs, "optimizer": o.optimizer,
                         "lr": o.lr, "momentum": o.momentum, "nesterov": o.nesterov,
                         "weight_decay": o.weight_decay, "lr_schedule": o.lr_schedule,
                         "seed": c.seed, "sparse": self.sparse, "density": c.density,
                         "set_update_every": c.set.update_every,
                         "set_prune_rate": c.set.prune_rate, "world_size": self.ws})

    def _restore(self, ckpt: Checkpoint) -> None:
        t = ckpt.training
        self.opt.load_state_dict(t["optimizer"])
        self.sched.load_state_dict(t["scheduler"])
        self.step = int(t["step"])
        self.history = History.from_dict(t["history"])
        self.history.total_steps = self.total
        self.accum = dict(t["accum"])
        rng = t["rng"]
        self.pending_rng = rng[self.r] if isinstance(rng, list) and len(rng) == self.ws else (
            rng[0] if isinstance(rng, list) else rng)
        if int(t.get("total_steps", self.total)) != self.total:
            log.warning("resuming a run planned for %s steps with %s steps",
                        t.get("total_steps"), self.total)
        log.info("resumed from step %d", self.step)

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> History:
        cfg = self.cfg
        if self.step == 0 and self.has_masks and (self.sparse == "set" or cfg.metrics.every):
            self._record(0, 0)
        self.pbar = tqdm(total=self.total, initial=self.step, leave=False, desc="train",
                         disable=not cfg.progress or self.r != 0, dynamic_ncols=True)
        self.stop = False
        try:
            while self.step < self.total and not self.stop:
                self._run_epoch()
        finally:
            self.pbar.close()
        if self.r == 0 and cfg.checkpoint.history_dir is not None:
            self.history.save(cfg.checkpoint.history_dir)
        return self.history

    def _run_epoch(self) -> None:
        seed = self.cfg.seed
        epoch = self.step // self.steps_per_epoch
        in_epoch = self.step % self.steps_per_epoch
        it = _epoch_iter(self.train_loader, seed, epoch)
        for _ in range(in_epoch):
            next(it)
        if self.pending_rng is not None:
            set_rng_state(self.pending_rng)
            self.pending_rng = None
        if in_epoch == 0:
            self.accum = {"loss": 0.0, "correct": 0.0, "count": 0.0}
        while in_epoch < self.steps_per_epoch and self.step < self.total:
            try:
                batch = next(it)
            except StopIteration:
                if self.sized:
                    raise
                it = _epoch_iter(self.train_loader, seed, self.step)  # unsized loader: restart
                batch = next(it)
            in_epoch += 1
            self._train_step(batch, epoch)
            self._after_step(epoch, in_epoch == self.steps_per_epoch)
            if self.stop:
                break

    def _train_step(self, batch, epoch: int) -> None:
        x, y = batch[0].to(self.dev), batch[1].to(self.dev)
        self.train_model.train()
        out = self.train_model(x)
        loss = self.loss_fn(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.step += 1
        lv = float(loss.detach())
        self.last_loss = lv
        self.accum["loss"] += lv * y.shape[0]
        self.accum["correct"] += float((out.detach().argmax(1) == y).sum())
        self.accum["count"] += float(y.shape[0])
        self.pbar.update(1)
        if self.cfg.log_every and self.step % self.cfg.log_every == 0:
            self.history.steps.append({"step": self.step, "epoch": epoch, "loss": lv,
                                       "lr": self.opt.param_groups[0]["lr"]})
            self.pbar.set_postfix(loss=f"{lv:.4f}")

    def _after_step(self, epoch: int, epoch_done: bool) -> None:
        cfg, step = self.cfg, self.step
        if self.sparse == "set" and step % cfg.set.update_every == 0 and \
                step < int(cfg.set.stop * self.total):
            rate = set_rate(step, self.total, cfg.set.prune_rate, cfg.set.prune_rate_min)
            gen = torch.Generator().manual_seed(_epoch_seed(cfg.seed, step))
            info = set_update(self.net, rate, generator=gen, optimizer=self.opt)
            self.history.set_updates.append({"step": step, **jsonable(info)})
            self._record(step, epoch)
        elif cfg.metrics.every and self.has_masks and step % cfg.metrics.every == 0:
            self._record(step, epoch)
        state = TrainState(step=step, epoch=epoch, total_steps=self.total, loss=self.last_loss,
                           model=self.net, optimizer=self.opt, history=self.history)
        for cb in self.callbacks:
            if cb(state):
                self.stop = True
        if epoch_done or step == self.total or (cfg.eval_every and step % cfg.eval_every == 0):
            self._evaluate(epoch + (1 if epoch_done else 0))
        c = cfg.checkpoint
        if c.dir is not None and (step == self.total or self.stop or (
                c.every and step % c.every == 0)):
            self._save()

    def _record(self, step: int, epoch: int) -> None:
        if self.record_metrics and self.r == 0:
            self.history.metrics.extend(
                _metrics_rows(self.net, step, epoch, self.cfg.metrics.convention))

    def _evaluate(self, epoch: int) -> None:
        a = self.accum
        n = max(a["count"], 1.0)
        row: Dict[str, Any] = {"epoch": epoch, "step": self.step,
                               "train_loss": a["loss"] / n, "train_acc": a["correct"] / n}
        if self.ws > 1:
            t = torch.tensor([a["loss"], a["correct"], a["count"]], dtype=torch.float64,
                             device=comm_device())
            torch.distributed.all_reduce(t)
            t = t.cpu()
            n = max(float(t[2]), 1.0)
            row["train_loss"], row["train_acc"] = float(t[0]) / n, float(t[1]) / n
        if self.test_loader is not None:
            ev = evaluate(self.net, self.test_loader, device=self.dev, loss_fn=self.loss_fn,
                          distributed=self.cfg.distributed)
            row["test_loss"], row["test_acc"] = ev["loss"], ev["acc"]
        row["lr"] = self.opt.param_groups[0]["lr"]
        row["density"] = realised_density(extract_masks(self.net)) if self.has_masks else 1.0
        row["time"] = time.time()
        self.history.epochs.append(row)
        log.info("epoch %d step %d: train loss %.4f acc %.4f, test acc %s", epoch, self.step,
                 row["train_loss"], row["train_acc"], row.get("test_acc"))

    def _save(self) -> None:
        rng_state: Any = get_rng_state()
        if self.ws > 1:
            rng_state = all_gather_objects(rng_state)
        c = self.cfg.checkpoint
        if self.r == 0:
            training = {"step": self.step, "total_steps": self.total,
                        "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                        "rng": rng_state, "accum": dict(self.accum),
                        "history": self.history.to_dict(), "config": self.history.config}
            masks = {k: v.cpu() for k, v in extract_masks(self.net).items()}
            for name in (f"step_{self.step:08d}.pt", "last.pt"):
                save_checkpoint(Path(c.dir) / name, self.net.state_dict(), masks=masks,
                                meta={"kind": "train"}, training=training)
            if c.history_dir is not None:
                self.history.save(c.history_dir)
        if self.ws > 1:
            torch.distributed.barrier()
