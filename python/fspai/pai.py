"""Pruning at initialization (PaI) and lottery tickets (IMP with rewinding).

One vocabulary throughout: ``density`` is the fraction of weights **kept** (0.01 = 99 % sparse).
Every method returns ``{name: BoolTensor}`` keyed by the state-dict names of
:func:`fspai.masks.prunable_parameters`, covering every prunable weight (layers a method leaves
dense get an all-True mask), on the CPU. The realised density equals the target to within one
weight (``scope="global"``) or one weight per layer (``scope="layer"``).

``prune(model, method, density)`` is ``select(score(...))``: the scores come from
:mod:`fspai.scoring`, the selection (budget, top-k, random draws, ERK) from
:mod:`fspai.selection`. Methods (:data:`METHODS`):

=============  ==============================================================================
``random``     a uniformly random set of exactly the budget. ``distribution="uniform"``
               (default), ``"er"`` or ``"erk"`` (per-layer densities of Erdos-Renyi /
               Erdos-Renyi-Kernel with capacity clipping, exact counts).
``erk``        ``random`` with ``distribution="erk"`` (Evci et al. 2020, RigL's allocation).
``magnitude``  ``|theta|``.
``snip``       ``|g * theta|`` (Lee et al. 2019); needs ``data``.
``grasp``      keep-score ``theta * Hg``, ``temperature=200`` (Wang et al. 2020); needs ``data``.
``synflow``    iterative, data-free: ``rounds`` (100) rounds of SynFlow scores with the
               exponential schedule ``density**(r/R)`` (Tanaka et al. 2020).
``itersnip``   SNIP re-scored on the masked network over ``rounds`` (100) with the same schedule
               (as in the ICLR 2023 code); needs ``data``.
=============  ==============================================================================

Lottery tickets: :func:`imp` and :class:`IMPResult` live in :mod:`fspai.lottery` (they train, so
they sit above :mod:`fspai.train`, which never imports this module) and are re-exported here.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._torch_utils import model_device, resolve_device, unwrap
from ._vocab import DATA_METHODS, ITERATIVE_METHODS, METHODS, SCOPES, check_density, \
    check_method, check_scope
from .lottery import IMPResult, imp
from .masks import extract_masks, layer_densities, prunable_parameters, realised_density
from .scoring import isolated_rng, make_scorer, working_copy
from .selection import (DISTRIBUTIONS, KEEP_RULES, check_budget, erk_densities, random_masks,
                        select_above_kth, select_topk)

__all__ = ["METHODS", "DATA_METHODS", "SCOPES", "PruneOptions", "prune", "erk_densities",
           "realised_density", "layer_densities", "select_topk", "imp", "IMPResult"]

log = logging.getLogger(__name__)

SCHEDULES = ("exponential", "linear")


@dataclass(frozen=True)
class PruneOptions:
    """Options of :func:`prune` (every keyword it accepts besides data/scope/seed).

    exclude : names of prunable weights to leave dense (not counted in the budget).
    num_batches : batches of ``data`` per scoring pass (None: all, i.e. one epoch).
    rounds : rounds of synflow/itersnip (100). schedule : ``"exponential"`` or ``"linear"``.
    temperature : GraSP logit temperature (200). loss_fn : ``F.cross_entropy`` by default.
    input_shape : per-sample input shape for synflow (default ``model.input_shape`` or ``data``).
    synflow_bias : ``"zero"`` (the paper's ``R = 1^T prod|W| 1``: biases, BatchNorm shifts and
        running means set to 0 in the scoring copy) or ``"abs"`` (Tanaka et al.'s code, ``|b|``).
    distribution : for ``random``: ``"uniform"``, ``"er"``, ``"erk"``. power_scale : ERK exponent.
    train_mode : score snip/grasp/itersnip in ``train()`` mode (default ``eval()``).
    device : where to score (default: the model's device).
    keep_rule : ``"top-k"`` (exactly ``round(density * N)`` weights) or ``"above-kth"`` (the
        released code's rule, :func:`fspai.selection.select_above_kth`: scores strictly above
        the k-th largest, ``k = floor(density * N)``, global scope only; random masks keep a
        uniform ``k - 1``-subset, ERK draws Bernoulli counts).
    """

    exclude: Tuple[str, ...] = ()
    num_batches: Optional[int] = None
    rounds: int = 100
    schedule: str = "exponential"
    temperature: float = 200.0
    loss_fn: Callable = F.cross_entropy
    input_shape: Optional[Tuple[int, ...]] = None
    synflow_bias: str = "zero"
    distribution: Optional[str] = None
    power_scale: float = 1.0
    train_mode: bool = False
    device: Any = None
    keep_rule: str = "top-k"

    def __post_init__(self):
        _int = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
        if not _int(self.rounds) or self.rounds < 1:
            raise ValueError(f"rounds must be an integer >= 1, got {self.rounds!r}")
        if self.num_batches is not None and (not _int(self.num_batches) or self.num_batches < 1):
            raise ValueError(f"num_batches must be an integer >= 1 or None, got "
                             f"{self.num_batches!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be 'exponential' or 'linear', got {self.schedule!r}")
        if self.distribution is not None and self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {list(DISTRIBUTIONS)}, got "
                             f"{self.distribution!r}")
        for key in ("power_scale", "temperature"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{key} must be a finite number, got {v!r}")
        if not isinstance(self.train_mode, bool):
            raise TypeError(f"train_mode must be True or False, got {self.train_mode!r}")
        if isinstance(self.exclude, str) or not all(isinstance(n, str) for n in self.exclude):
            raise TypeError(f"exclude must be a list of parameter names, got {self.exclude!r}")
        object.__setattr__(self, "exclude", tuple(self.exclude))
        if self.keep_rule not in KEEP_RULES:
            raise ValueError(f"keep_rule must be one of {list(KEEP_RULES)}, got "
                             f"{self.keep_rule!r}")
        make_scorer("synflow", synflow_bias=self.synflow_bias)      # validates synflow_bias

    @classmethod
    def from_options(cls, **options: Any) -> "PruneOptions":
        """Build from keyword arguments; ``TypeError`` naming any unknown one."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unexpected prune options {unknown}; known: {sorted(known)}")
        return cls(**options)


def _schedule(density: float, rounds: int, kind: str) -> List[float]:
    if kind == "exponential":
        return [density ** ((r + 1) / rounds) for r in range(rounds)]
    if kind == "linear":
        return [1.0 - (1.0 - density) * (r + 1) / rounds for r in range(rounds)]
    raise ValueError(f"schedule must be 'exponential' or 'linear', got {kind!r}")


@torch.no_grad()
def _set_masked(params, originals, masks) -> None:
    for n, p in params.items():
        p.copy_(originals[n] * masks[n].to(p.device))


def _keep(scores, density, scope, keep_rule, alive=None) -> Dict[str, torch.Tensor]:
    if keep_rule == "above-kth":
        if alive is not None:
            scores = {n: torch.where(alive[n].cpu(), s.detach().double().cpu(),
                                     torch.full(s.shape, -math.inf, dtype=torch.float64))
                      for n, s in scores.items()}
        return select_above_kth(scores, density)
    return select_topk(scores, density, scope=scope, alive=alive)


def _iterative(work, params, density, *, scope, rounds, schedule, scorer, data, device,
               keep_rule="top-k") -> Dict[str, torch.Tensor]:
    """Score, keep the top ``d_r`` of the surviving weights, re-mask, for ``d_r`` on the
    schedule; the last round keeps exactly ``density``.  ``data`` is iterated once per round
    (an iterable that yields new batches on every pass gives every round fresh batches)."""
    originals = {n: p.detach().clone() for n, p in params.items()}
    masks = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in params.items()}
    for d in _schedule(density, rounds, schedule):
        _set_masked(params, originals, masks)
        masks = _keep(scorer(work, params, data, device), d, scope, keep_rule, alive=masks)
    _set_masked(params, originals, masks)
    return masks


def _scored_masks(base: nn.Module, method: str, density: float, data: Any, scope: str,
                  opts: PruneOptions) -> Dict[str, torch.Tensor]:
    device = resolve_device(opts.device) if opts.device is not None else model_device(base)
    scorer = make_scorer(method, temperature=opts.temperature, synflow_bias=opts.synflow_bias,
                         input_shape=opts.input_shape, loss_fn=opts.loss_fn,
                         num_batches=opts.num_batches)
    if method == "synflow":
        scorer.shape(base, data)                       # clear error before any work
    if scorer.reads_weights_only and device == model_device(base) and not extract_masks(unwrap(base)):
        work = unwrap(base)  # |w| of the parameters as they are: copying the network buys nothing
    else:
        work = scorer.prepare(working_copy(base, train_mode=opts.train_mode, device=device))
    params = {n: p for n, p in prunable_parameters(work).items() if n not in set(opts.exclude)}
    if method in ITERATIVE_METHODS:
        return _iterative(work, params, density, scope=scope, rounds=opts.rounds,
                          schedule=opts.schedule, scorer=scorer, data=data, device=device,
                          keep_rule=opts.keep_rule)
    return _keep(scorer(work, params, data, device), density, scope, opts.keep_rule)


def prune(model: nn.Module, method: str, density: float, *, data: Any = None,
          scope: str = "global", seed: int = 0, **options: Any) -> Dict[str, torch.Tensor]:
    """Pruning-at-initialization masks for ``model``: ``{name: BoolTensor}`` (CPU), every prunable
    weight present.

    Parameters
    ----------
    method : one of :data:`METHODS`.
    density : fraction of weights kept, in (0, 1]; too small to keep one weight per layer raises.
    data : iterable of ``(x, y)`` batches (a DataLoader, or a :class:`fspai.data.DataBundle`, whose
        ``train_loader`` is used). Required by snip, grasp and itersnip (:data:`DATA_METHODS`).
    scope : ``"global"`` (one threshold over all layers) or ``"layer"`` (``density`` per layer).
    seed : seeds random masks and the data order used for scoring.
    options : the fields of :class:`PruneOptions` (unknown names raise ``TypeError``).

    Pruning never modifies the model: scores are computed on a deep copy (in ``eval()`` mode by
    default, as in the ICLR 2023 code), and the global RNG and the data loader's generator are
    left as they were.
    """
    check_method(method)
    check_scope(scope)
    density = check_density(density)
    opts = PruneOptions.from_options(**options)
    if method in DATA_METHODS and data is None:
        raise ValueError(f"method {method!r} needs data: pass data= an iterable of (x, y) batches "
                         "(e.g. a DataLoader or a fspai.data.DataBundle)")
    base = unwrap(model)
    all_shapes = {n: tuple(p.shape) for n, p in prunable_parameters(base).items()}
    unknown = [n for n in opts.exclude if n not in all_shapes]
    if unknown:
        raise KeyError(f"exclude names are not prunable parameters: {unknown}; "
                       f"prunable parameters are {sorted(all_shapes)}")
    shapes = {n: s for n, s in all_shapes.items() if n not in set(opts.exclude)}
    check_budget({n: math.prod(s) for n, s in shapes.items()}, density,
                 scope if method != "erk" else "global")
    if opts.keep_rule == "above-kth" and scope != "global":
        raise ValueError("keep_rule='above-kth' is the released global rule; use scope='global'")
    with isolated_rng(data, seed):
        if method in ("random", "erk"):
            dist = opts.distribution or ("erk" if method == "erk" else "uniform")
            masks = random_masks(shapes, density, scope=scope, seed=seed, distribution=dist,
                                 power_scale=opts.power_scale, keep_rule=opts.keep_rule)
        else:
            masks = _scored_masks(base, method, density, data, scope, opts)
    out = {n: (masks[n].cpu().bool() if n in masks else torch.ones(s, dtype=torch.bool))
           for n, s in all_shapes.items()}
    log.info("prune(%s, scope=%s): target density %.6g, realised %.6g over %d layers "
             "(%d excluded)", method, scope, density,
             realised_density({n: out[n] for n in masks}), len(masks), len(opts.exclude))
    return out
