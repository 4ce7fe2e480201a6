"""SET (sparse evolutionary training) topology updates, as in SET-ITOP / sparselearning.

:func:`set_update` drops the smallest-magnitude active weights of every sparse layer and regrows
as many at random; :func:`set_rate` is the cosine-decayed prune rate. :func:`fspai.train.fit`
calls them when ``sparse="set"``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import torch
import torch.nn as nn

from ._torch_utils import unwrap
from .distributed import broadcast_bool, world_size
from .masks import extract_masks, prunable_parameters, update_masks
from .selection import topk_mask

__all__ = ["set_update", "set_rate"]


def set_rate(step: int, total: int, rate: float, rate_min: float) -> float:
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
        drop = topk_mask(-mag, k)        # the k smallest active magnitudes, lower index first
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
                table[name] = broadcast_bool(table[name], table[name].shape, src=0).to(
                    masks[name].device)
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
