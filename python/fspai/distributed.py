"""``torch.distributed`` helpers shared by training and the sampler (the one place for them).

* :func:`setup_distributed` / :func:`cleanup_distributed`: initialise / tear down the process
  group from the ``torchrun`` environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``/``PORT``).
* :func:`is_distributed`, :func:`rank`, :func:`world_size`, :func:`dist_info`: where this process
  stands (``(0, 1)`` without a process group).
* collectives used by training and the sampler: :func:`comm_device`, :func:`all_gather_objects`,
  :func:`all_gather_float64`,
  :func:`broadcast_bool`, :func:`broadcast_masks`, :func:`broadcast_module`, and
  :func:`shard_loader` (a ``DistributedSampler`` copy of a ``DataLoader``).
"""
from __future__ import annotations

import atexit
import datetime
import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

__all__ = ["setup_distributed", "init_distributed", "cleanup_distributed", "is_distributed", "rank", "world_size",
           "dist_info", "comm_device", "all_gather_objects", "all_gather_float64", "broadcast_bool", "broadcast_masks",
           "broadcast_module", "shard_loader"]

log = logging.getLogger(__name__)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def dist_info(group=None) -> Tuple[int, int]:
    """``(rank, world_size)`` in ``group`` (the default group if None), ``(0, 1)`` if none."""
    if is_distributed():
        return dist.get_rank(group), dist.get_world_size(group)
    return 0, 1


def setup_distributed(backend: Optional[str] = None, *, require: bool = True
                      ) -> Tuple[int, int, torch.device]:
    """Initialise ``torch.distributed`` from the ``torchrun`` environment and return
    ``(rank, world_size, device)``. Backend: nccl with CUDA, else gloo. Nothing is done if a
    group is already initialised. With ``require=False`` a process not started by ``torchrun``
    (``WORLD_SIZE`` unset or 1) stays single-process and gets ``(0, 1, cpu)``."""
    if not is_distributed():
        if not require and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return 0, 1, torch.device("cpu")
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        # A process group still alive at interpreter exit can abort the process ("terminate
        # called without an active exception" from gloo's threads): destroy the one we made.
        atexit.register(cleanup_distributed)
    local = int(os.environ.get("LOCAL_RANK", 0))
    if dist.get_backend() == "nccl":
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return dist.get_rank(), dist.get_world_size(), device


def init_distributed(backend: Optional[str] = None) -> bool:
    """:func:`setup_distributed` for code that also runs without ``torchrun``: returns True when
    a process group with more than one process is (now) initialised."""
    return setup_distributed(backend, require=False)[1] > 1


_EXIT_BARRIER_S = 60.0  # how long a rank waits at teardown for the others before giving up


def cleanup_distributed() -> None:
    """Destroy the process group (if any); registered at exit by :func:`setup_distributed`.

    The ranks first meet at a barrier: a rank that tore down its gloo transport while a peer was
    still using the connection aborted the peer at exit ("terminate called without an active
    exception", about 1 run in 15 of two-rank sampler runs). The barrier is bounded (gloo's
    monitored barrier, 60 s), so a rank whose peer already died still exits."""
    if not is_distributed():
        return
    try:
        if dist.get_world_size() > 1:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=_EXIT_BARRIER_S))
            else:
                dist.barrier()
    except Exception as exc:  # a dead peer: tear down anyway
        log.warning("distributed teardown without the exit barrier: %s", exc)
    finally:
        dist.destroy_process_group()


def comm_device(group=None) -> torch.device:
    """The device collectives of the current backend work on (CUDA for nccl, else CPU)."""
    if is_distributed() and dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _global_src(src: int, group) -> int:
    return src if group is None else dist.get_global_rank(group, src)


def all_gather_objects(obj: Any, group=None) -> List[Any]:
    """Every rank's ``obj`` (picklable), in rank order."""
    out: List[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(out, obj, group=group)
    return out


def all_gather_float64(tensor: torch.Tensor, group=None) -> List[torch.Tensor]:
    """Every rank's float64 ``tensor`` (same shape on every rank), in rank order, on the CPU:
    one tensor collective instead of pickled objects."""
    dev = comm_device(group)
    buf = tensor.to(device=dev, dtype=torch.float64).contiguous()
    out = [torch.empty_like(buf) for _ in range(dist.get_world_size(group))]
    dist.all_gather(out, buf, group=group)
    return [o.cpu() for o in out]


def broadcast_bool(tensor: Optional[torch.Tensor], shape: Sequence[int], *, src: int,
                   group=None) -> torch.Tensor:
    """Broadcast a bool tensor from ``src`` (other ranks pass None and its ``shape``); returns
    it on the CPU on every rank."""
    dev = comm_device(group)
    buf = (tensor.to(device=dev, dtype=torch.uint8).contiguous() if tensor is not None
           else torch.empty(tuple(shape), dtype=torch.uint8, device=dev))
    dist.broadcast(buf, src=_global_src(src, group), group=group)
    return buf.bool().cpu()


def broadcast_masks(masks: Optional[Mapping[str, torch.Tensor]], *, src: int, group=None
                    ) -> Dict[str, torch.Tensor]:
    """Broadcast a whole ``{name: BoolTensor}`` dict from ``src`` (names and shapes included)."""
    meta = [[(k, tuple(v.shape)) for k, v in masks.items()] if masks is not None else None]
    dist.broadcast_object_list(meta, src=_global_src(src, group), group=group)
    return {name: broadcast_bool(masks[name] if masks is not None else None, shape, src=src,
                                 group=group)
            for name, shape in meta[0]}


def broadcast_module(model: nn.Module, *, src: int, group=None) -> None:
    """Overwrite every rank's parameters and buffers with those of rank ``src`` (in place)."""
    gsrc = _global_src(src, group)
    with torch.no_grad():
        for tensor in list(model.state_dict().values()):
            if tensor.device.type == "cpu" or dist.get_backend(group) != "gloo":
                dist.broadcast(tensor, src=gsrc, group=group)
            else:  # gloo cannot broadcast CUDA tensors
                buf = tensor.cpu()
                dist.broadcast(buf, src=gsrc, group=group)
                tensor.copy_(buf)


def shard_loader(loader: Any, seed: int) -> Any:
    """``loader`` with a :class:`DistributedSampler` (each rank sees its share of every epoch);
    returned unchanged when it is not a ``DataLoader`` or already sharded."""
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
