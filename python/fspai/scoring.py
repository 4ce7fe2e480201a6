"""Saliency scores of the pruning-at-initialization methods (higher = keep).

A scorer is a small frozen dataclass holding its options; calling :func:`score` with one gives
``{name: score tensor}`` for every prunable weight, computed on a private working copy of the
model (the model itself, the global RNG and the loader's generator are left as they were):

=================  ========================================================================
:class:`Magnitude`  ``|theta|``.
:class:`Snip`       ``|g * theta|``, ``g`` the loss gradient summed over the batches
                    (Lee et al. 2019).
:class:`Grasp`      ``theta * Hg`` with logits divided by ``temperature`` (200); GraSP removes
                    the weights with the largest ``-theta * Hg``, so this is its keep-score
                    (Wang et al. 2020; Tanaka et al.'s implementation).
:class:`SynFlow`    ``|dR/dtheta * theta|`` with ``R = 1^T f(1; |theta|)`` in float64
                    (Tanaka et al. 2020). ``bias="zero"`` (default) also zeroes biases,
                    BatchNorm shifts and running means in the scoring copy (only weight paths
                    count); ``bias="abs"`` takes ``|b|`` like Tanaka et al.'s code.
=================  ========================================================================

Batches are validated: a batch whose inputs hold NaN or infinity raises ``ValueError`` (such a
batch would make every score NaN and leave layers without weights).

This module is the only place where these scores are computed; :func:`fspai.pai.prune` and the
Full-Spectrum sampler both use it.
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._torch_utils import model_device, unwrap
from .masks import extract_masks, prunable_parameters, remove_masks

__all__ = ["Scorer", "Magnitude", "Snip", "Grasp", "SynFlow", "make_scorer", "score",
           "working_copy", "batches", "isolated_rng", "SYNFLOW_BIAS"]

#: SynFlow's options for additive terms (biases, BatchNorm shifts, running means).
SYNFLOW_BIAS = ("zero", "abs")

Scores = Dict[str, torch.Tensor]


def _grad_times_weight(params: Dict[str, nn.Parameter], absolute: bool) -> Scores:
    out = {}
    for n, p in params.items():
        if p.grad is None:
            out[n] = torch.zeros_like(p).detach()
        else:
            s = (p.grad * p).detach()
            out[n] = s.abs() if absolute else s
    return out


@dataclass(frozen=True)
class Scorer:
    """Base class: ``needs_data`` says whether :meth:`__call__` reads batches;
    ``reads_weights_only`` that it only reads the parameters (no forward/backward pass, no
    change to the network), so it may score the model itself instead of a working copy."""

    needs_data = False
    reads_weights_only = False

    def prepare(self, work: nn.Module) -> nn.Module:
        """Turn the working copy into the network that is scored (default: unchanged)."""
        return work

    def __call__(self, work: nn.Module, params: Dict[str, nn.Parameter],
                 data: Any, device: torch.device) -> Scores:
        raise NotImplementedError


@dataclass(frozen=True)
class Magnitude(Scorer):
    reads_weights_only = True

    def __call__(self, work, params, data, device) -> Scores:
        return {n: p.detach().abs() for n, p in params.items()}  # abs() is a new tensor


@dataclass(frozen=True)
class Snip(Scorer):
    """SNIP. ``num_batches``: batches of ``data`` per scoring pass (None: all)."""

    loss_fn: Callable = F.cross_entropy
    num_batches: Optional[int] = None
    needs_data = True

    def __call__(self, work, params, data, device) -> Scores:
        work.zero_grad(set_to_none=True)
        for x, y in batches(data, self.num_batches, device):
            self.loss_fn(work(x), y).backward()
        return _grad_times_weight(params, absolute=True)


@dataclass(frozen=True)
class Grasp(Scorer):
    """GraSP keep-score ``theta * Hg`` (logits / ``temperature``)."""

    temperature: float = 200.0
    loss_fn: Callable = F.cross_entropy
    num_batches: Optional[int] = None
    needs_data = True

    def __post_init__(self):
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (math.isfinite(t)
                                                                          and t > 0):
            raise ValueError(f"GraSP temperature must be a finite number > 0, got {t!r}")

    def __call__(self, work, params, data, device) -> Scores:
        names = list(params)
        plist = [params[n] for n in names]
        stopped = [torch.zeros_like(p) for p in plist]
        for x, y in batches(data, self.num_batches, device):
            loss = self.loss_fn(work(x) / self.temperature, y)
            for s, g in zip(stopped, torch.autograd.grad(loss, plist, allow_unused=True)):
                if g is not None:
                    s.add_(g)
        work.zero_grad(set_to_none=True)
        for x, y in batches(data, self.num_batches, device):
            loss = self.loss_fn(work(x) / self.temperature, y)
            grads = torch.autograd.grad(loss, plist, create_graph=True, allow_unused=True)
            z = sum((s * g).sum() for s, g in zip(stopped, grads) if g is not None)
            if isinstance(z, torch.Tensor) and z.requires_grad:
                z.backward()
        return _grad_times_weight(dict(zip(names, plist)), absolute=False)


@dataclass(frozen=True)
class SynFlow(Scorer):
    """Data-free SynFlow; ``input_shape`` is the per-sample input shape (default: the model's
    ``input_shape`` attribute, else the first batch of ``data``)."""

    bias: str = "zero"
    input_shape: Optional[Tuple[int, ...]] = None

    def __post_init__(self):
        if self.bias not in SYNFLOW_BIAS:
            raise ValueError(f"synflow_bias must be 'zero' or 'abs', got {self.bias!r}")

    @torch.no_grad()
    def prepare(self, work: nn.Module) -> nn.Module:
        """float64, every floating tensor -> |.|; ``bias="zero"`` also zeroes additive terms;
        always ``eval()`` (a batch of one)."""
        work = work.double().eval()
        weights = {id(p) for p in prunable_parameters(work).values()}
        for module in work.modules():
            for name, t in list(module.named_parameters(recurse=False)) + list(
                    module.named_buffers(recurse=False)):
                if not t.is_floating_point():
                    continue
                t.abs_()
                if self.bias == "zero" and name in ("bias", "running_mean") and id(t) not in weights:
                    t.zero_()
        return work

    def shape(self, model: nn.Module, data: Any) -> Tuple[int, ...]:
        if self.input_shape is not None:
            return tuple(int(s) for s in self.input_shape)
        shape = getattr(unwrap(model), "input_shape", None)
        if shape is None and data is not None:
            shape = getattr(data, "input_shape", None)
            if shape is None:
                for x, _ in batches(data, 1, torch.device("cpu")):
                    shape = tuple(x.shape[1:])
        if shape is None:
            raise ValueError("synflow needs the input shape: pass input_shape=(...), data=, or "
                             "build the model with fspai.models.build (which records "
                             "model.input_shape)")
        return tuple(shape)

    def __call__(self, work, params, data, device) -> Scores:
        ones = torch.ones((1, *self.shape(work, data)), dtype=torch.float64, device=device)
        work.zero_grad(set_to_none=True)
        work(ones).sum().backward()
        return _grad_times_weight(params, absolute=True)


def make_scorer(method: str, *, temperature: float = 200.0, synflow_bias: str = "zero",
                input_shape: Optional[Sequence[int]] = None, loss_fn: Callable = F.cross_entropy,
                num_batches: Optional[int] = None) -> Scorer:
    """The scorer of a scoring method (``magnitude``, ``snip``, ``itersnip`` (= SNIP scores),
    ``grasp``, ``synflow``) with its options."""
    if method == "magnitude":
        return Magnitude()
    if method in ("snip", "itersnip"):
        return Snip(loss_fn=loss_fn, num_batches=num_batches)
    if method == "grasp":
        return Grasp(temperature=temperature, loss_fn=loss_fn, num_batches=num_batches)
    if method == "synflow":
        return SynFlow(bias=synflow_bias,
                       input_shape=None if input_shape is None else tuple(input_shape))
    raise ValueError(f"method {method!r} has no saliency scores (random/erk are draws)")


# --------------------------------------------------------------------------------------------
# Plumbing: working copy, batches, RNG isolation
# --------------------------------------------------------------------------------------------

def working_copy(model: nn.Module, *, train_mode: bool = False,
                 device: Optional[torch.device] = None) -> nn.Module:
    """A deep copy of the (unwrapped) model without masks (masked weights kept at 0), with
    gradients enabled and cleared, in ``train()``/``eval()`` mode, on ``device``."""
    work = copy.deepcopy(unwrap(model))
    if extract_masks(work):
        remove_masks(work, make_permanent=True)
    work.train(train_mode)
    for p in work.parameters():
        p.requires_grad_(True)
        p.grad = None
    return work.to(device) if device is not None else work


def _loader_of(data: Any) -> Any:
    return getattr(data, "train_loader", data)


def batches(data: Any, num_batches: Optional[int], device: torch.device
            ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` batches of ``data`` (a loader, a bundle's ``train_loader``, a list of batches or
    one ``(x, y)`` pair) on ``device``; at most ``num_batches``. ``ValueError`` if there are none
    or if an input batch holds NaN/infinity."""
    loader = _loader_of(data)
    if isinstance(loader, (tuple, list)) and len(loader) == 2 and isinstance(loader[0], torch.Tensor):
        loader = [tuple(loader)]
    n = 0
    for batch in loader:
        if num_batches is not None and n >= num_batches:
            break
        x, y = batch[0], batch[1]
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(f"scoring batch {n} holds {bad} NaN/infinite input values; "
                             "pruning scores would be undefined")
        yield x.to(device), y.to(device)
        n += 1
    if n == 0:
        raise ValueError("data yielded no batches")


@contextmanager
def isolated_rng(data: Any, seed: int):
    """Seed the global RNG and the loader's (and its sampler's) generator with ``seed``; restore
    all of them afterwards."""
    loader = _loader_of(data)
    gens: List[Tuple[torch.Generator, torch.Tensor]] = []
    for owner in (loader, getattr(loader, "sampler", None)):
        g = getattr(owner, "generator", None)
        if isinstance(g, torch.Generator) and all(g is not h for h, _ in gens):
            gens.append((g, g.get_state()))
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cuda else []):
        torch.manual_seed(seed)
        for g, _ in gens:
            g.manual_seed(seed)
        try:
            yield
        finally:
            for g, state in gens:
                g.set_state(state)


def score(model: nn.Module, scorer: Union[Scorer, str], data: Any = None, *,
          exclude: Sequence[str] = (), device: Any = None, train_mode: bool = False,
          seed: int = 0) -> Scores:
    """One-shot saliency of every prunable weight of ``model`` (except ``exclude``) on CPU.

    ``scorer``: a :class:`Scorer` or a method name (default options). ``data`` is required by
    SNIP/GraSP. Scored on a working copy (``train_mode``: score in ``train()`` mode; SynFlow is
    always in ``eval()``); the global RNG and the loader's generator are seeded with ``seed`` and
    restored.
    """
    if isinstance(scorer, str):
        scorer = make_scorer(scorer)
    if scorer.needs_data and data is None:
        raise ValueError(f"{type(scorer).__name__} scores need data: pass data= an iterable of "
                         "(x, y) batches (e.g. a DataLoader or a fspai.data.DataBundle)")
    dev = torch.device(device) if device is not None else model_device(model)
    with isolated_rng(data, seed):
        work = scorer.prepare(working_copy(model, train_mode=train_mode, device=dev))
        params = {n: p for n, p in prunable_parameters(work).items() if n not in set(exclude)}
        out = scorer(work, params, data, dev)
    return {n: s.detach().cpu() for n, s in out.items()}

