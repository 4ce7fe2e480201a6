"""θ*: the weights a mask is computed (and scored) with.

:func:`prepare_weights` puts θ* into a model: the random init, the dense model after a few SGD
iterations (:func:`pretrain`, the released ``lth_tickets_pretraining.py`` recipe), a checkpoint
(:func:`fspai.checkpoint.load_weights`) or a state dict. Used by the sampler, the experiment and
``fspai prune --weights``.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import torch.nn as nn

from .checkpoint import load_weights
from .train import OptimConfig, fit

__all__ = ["prepare_weights", "pretrain", "PRETRAIN_OPTIM"]

#: The released pre-training recipe: SGD, lr 0.1, momentum 0.9, Nesterov, weight decay 5e-4,
#: constant learning rate.
PRETRAIN_OPTIM = OptimConfig(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)


def pretrain(model: nn.Module, data: Any, *, steps: int = 500, seed: int = 0,
             optim: Optional[OptimConfig] = None, device: Any = None) -> nn.Module:
    """Dense training for θ*, in place: ``steps`` iterations of :func:`fspai.train.fit` with
    ``optim`` (default :data:`PRETRAIN_OPTIM`), no evaluation, and ``distributed=False``: every
    process of a ``torchrun`` job (and a single process) computes the same θ* from
    ``(seed, data)`` alone. ``steps=0`` leaves the model as it is."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"pretrain steps must be an integer >= 0, got {steps!r}")
    if steps == 0:
        return model
    fit(model, getattr(data, "train_loader", data), steps=steps, seed=seed, device=device,
        optim=optim or PRETRAIN_OPTIM, progress=False, distributed=False, log_every=0)
    return model


def prepare_weights(model: nn.Module, weights: Any = "init", *, data: Any = None,
                    steps: int = 500, seed: int = 0, device: Any = None,
                    optim: Optional[OptimConfig] = None) -> nn.Module:
    """Put θ* into ``model`` (in place) and return it.

    ``weights``: ``"init"`` (leave the random init), ``"pretrained"`` (:func:`pretrain` for
    ``steps`` iterations on ``data``), a path to a checkpoint (an fspai checkpoint or a torch
    file holding a state dict), or a state dict mapping.
    """
    if isinstance(weights, Mapping):
        model.load_state_dict(weights)
        return model
    if weights is None or weights == "init":
        return model
    if weights == "pretrained":
        if data is None:
            raise ValueError("weights='pretrained' needs training data")
        return pretrain(model, data, steps=int(steps), seed=seed, optim=optim, device=device)
    if isinstance(weights, (str, os.PathLike)):
        model.load_state_dict(load_weights(weights))
        return model
    raise ValueError(f"weights must be 'init', 'pretrained', a checkpoint path or a state dict, "
                     f"got {weights!r}")
