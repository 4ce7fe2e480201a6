"""Pruning at initialization (PaI) and lottery tickets (IMP with rewinding).

One vocabulary throughout: ``density`` is the fraction of weights **kept** (0.01 = 99 % sparse).
Every method returns ``{name: BoolTensor}`` keyed by the state-dict names of
:func:`fspai.masks.prunable_parameters`, covering every prunable weight (layers a method leaves
dense get an all-True mask), on the CPU. The realised density is logged and equals the target to
within one weight (``scope="global"``) or one weight per layer (``scope="layer"``).

Methods (``prune(model, method, density, ...)``), with the published definitions:

=============  ==============================================================================
``random``     i.i.d. random scores. ``distribution="uniform"`` (default; global threshold or
               exactly ``density`` per layer), ``"er"`` or ``"erk"`` (per-layer densities of
               Erdos-Renyi / Erdos-Renyi-Kernel with capacity clipping, exact counts).
``erk``        ``random`` with ``distribution="erk"`` (Evci et al. 2020, RigL's allocation).
``magnitude``  ``|theta|``.
``snip``       ``|g * theta|`` with ``g`` the loss gradient summed over the batches of ``data``
               (Lee et al. 2019).
``grasp``      ``S = -theta * Hg`` with temperature ``T=200`` on the logits; the weights with the
               largest ``S`` are removed (Wang et al. 2020; Tanaka et al.'s implementation).
``synflow``    iterative, data-free: ``|dR/dtheta * theta|`` with ``R = 1^T f(1; |theta|)``,
               float64, 100 rounds, exponential schedule ``density**(r/R)`` (Tanaka et al. 2020).
``itersnip``   SNIP re-scored on the masked network over ``rounds`` (100) with the same
               exponential schedule (as in the ICLR 2023 code).
=============  ==============================================================================

``scope="global"`` ranks all layers together; ``scope="layer"`` keeps ``density`` of every layer.
ERK/ER fix the per-layer densities themselves, so scope does not apply to them.

Pruning never modifies the model: scores are computed on a deep copy (in ``eval()`` mode by
default, as in the ICLR 2023 code), and the global RNG and the data loader's generator are left as
they were.
"""
from __future__ import annotations

import copy
import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._torch_utils import model_device, unwrap
from .masks import (apply_masks, extract_masks, layer_densities, prunable_parameters,
                    realised_density, remove_masks)

__all__ = ["METHODS", "prune", "erk_densities", "realised_density", "layer_densities",
           "select_topk", "imp", "IMPResult"]

log = logging.getLogger(__name__)

METHODS = ("random", "erk", "magnitude", "snip", "grasp", "synflow", "itersnip")
SCOPES = ("global", "layer")


# --------------------------------------------------------------------------------------------
# Layer densities (ER / ERK) and exact budgets
# --------------------------------------------------------------------------------------------

def erk_densities(shapes: Mapping[str, Sequence[int]], density: float, *, kernel: bool = True,
                  power_scale: float = 1.0) -> Dict[str, float]:
    """Per-layer densities of the Erdos-Renyi(-Kernel) allocation with capacity clipping.

    Layer ``l`` gets ``eps * raw_l`` with ``raw_l = (sum(shape) / prod(shape))**power_scale``
    (ERK) or ``(n_out + n_in) / (n_out * n_in)`` on the first two dims (ER, ``kernel=False``).
    Layers whose density would exceed 1 are made dense and ``eps`` is re-solved (RigL's loop), so
    the overall density is exactly ``density`` and no layer exceeds 1.
    """
    _check_density(density)
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    raw = {}
    for n, s in shapes.items():
        if kernel:
            raw[n] = (sum(s) / math.prod(s)) ** power_scale
        else:
            raw[n] = ((s[0] + s[1]) / (s[0] * s[1])) ** power_scale
    dense: set = set()
    while True:
        rhs = 0.0
        divisor = 0.0
        for n, size in sizes.items():
            if n in dense:
                rhs -= size * (1.0 - density)
            else:
                rhs += size * density
                divisor += raw[n] * size
        if divisor == 0:
            break
        eps = rhs / divisor
        over = [n for n in sizes if n not in dense and eps * raw[n] > 1.0]
        if not over:
            break
        dense.update(over)
    if divisor == 0:
        return {n: 1.0 for n in sizes}
    return {n: 1.0 if n in dense else eps * raw[n] for n in sizes}


def _apportion(ideal: Mapping[str, float], caps: Mapping[str, int], total: int) -> Dict[str, int]:
    """Integer counts near ``ideal`` (each in [0, cap]) summing exactly to ``total``
    (largest-remainder rounding)."""
    counts = {n: min(int(math.floor(v)), caps[n]) for n, v in ideal.items()}
    rest = total - sum(counts.values())
    order = sorted(ideal, key=lambda n: (-(ideal[n] - math.floor(ideal[n])), n))
    while rest > 0:
        moved = False
        for n in order:
            if rest == 0:
                break
            if counts[n] < caps[n]:
                counts[n] += 1
                rest -= 1
                moved = True
        if not moved:
            break
    while rest < 0:
        for n in reversed(order):
            if rest == 0:
                break
            if counts[n] > 0:
                counts[n] -= 1
                rest += 1
    return counts


def _check_density(density: float) -> None:
    if not (isinstance(density, (int, float)) and 0.0 < float(density) <= 1.0):
        raise ValueError(f"density (fraction of weights kept) must be in (0, 1], got {density!r}")


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------

def _clean(s: torch.Tensor) -> torch.Tensor:
    s = s.detach().double()
    return torch.nan_to_num(s, nan=-math.inf, posinf=math.inf, neginf=-math.inf)


def _topk_mask(flat: torch.Tensor, k: int) -> torch.Tensor:
    keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        order = torch.sort(flat, descending=True, stable=True).indices[:k]
        keep[order] = True
    return keep


def select_topk(scores: Mapping[str, torch.Tensor], density: float, *, scope: str = "global",
                alive: Optional[Mapping[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
    """Keep the highest scores: ``round(density * N)`` over all layers (``scope="global"``) or
    ``round(density * n_l)`` per layer. Ties go to the lower index (stable, deterministic). Weights
    outside ``alive`` are never selected unless nothing else is left."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    cleaned = {}
    for n, s in scores.items():
        s = _clean(s)
        if alive is not None and n in alive:
            s = torch.where(alive[n].to(s.device), s, torch.full_like(s, -math.inf))
        cleaned[n] = s
    if scope == "layer":
        return {n: _topk_mask(s.flatten(), int(round(density * s.numel()))).view_as(s).cpu()
                for n, s in cleaned.items()}
    flat = torch.cat([s.flatten().cpu() for s in cleaned.values()]) if cleaned else torch.zeros(0)
    keep = _topk_mask(flat, int(round(density * flat.numel())))
    out, i = {}, 0
    for n, s in cleaned.items():
        out[n] = keep[i:i + s.numel()].view(s.shape)
        i += s.numel()
    return out


# --------------------------------------------------------------------------------------------
# Helpers: working copy, data batches, RNG isolation
# --------------------------------------------------------------------------------------------

def _working_copy(model: nn.Module, train_mode: bool) -> nn.Module:
    work = copy.deepcopy(unwrap(model))
    if extract_masks(work):
        remove_masks(work, make_permanent=True)
    work.train(train_mode)
    for p in work.parameters():
        p.requires_grad_(True)
        p.grad = None
    return work


def _loader_of(data: Any) -> Any:
    return getattr(data, "train_loader", data)


@contextmanager
def _isolated_rng(data: Any, seed: int):
    """Seed the global RNG and the loader's (and its sampler's) generator with ``seed``; restore
    all of them afterwards."""
    loader = _loader_of(data)
    gens = []
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


def _batches(data: Any, num_batches: Optional[int], device: torch.device
             ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    loader = _loader_of(data)
    if isinstance(loader, (tuple, list)) and len(loader) == 2 and isinstance(loader[0], torch.Tensor):
        loader = [tuple(loader)]
    n = 0
    for batch in loader:
        if num_batches is not None and n >= num_batches:
            break
        x, y = batch[0], batch[1]
        yield x.to(device), y.to(device)
        n += 1
    if n == 0:
        raise ValueError("data yielded no batches")


def _need_data(method: str, data: Any) -> None:
    if data is None:
        raise ValueError(f"method {method!r} needs data: pass data= an iterable of (x, y) batches "
                         "(e.g. a DataLoader or a fspai.data.DataBundle)")


def _weights(work: nn.Module, exclude: Sequence[str]) -> Dict[str, nn.Parameter]:
    return {n: p for n, p in prunable_parameters(work).items() if n not in set(exclude)}


# --------------------------------------------------------------------------------------------
# Scores (higher = keep)
# --------------------------------------------------------------------------------------------

def _snip_scores(work, params, data, *, num_batches, loss_fn, device) -> Dict[str, torch.Tensor]:
    work.zero_grad(set_to_none=True)
    for x, y in _batches(data, num_batches, device):
        loss_fn(work(x), y).backward()
    return {n: (p.grad * p).abs().detach() if p.grad is not None else torch.zeros_like(p)
            for n, p in params.items()}


def _grasp_scores(work, params, data, *, num_batches, loss_fn, device, temperature
                  ) -> Dict[str, torch.Tensor]:
    names = list(params)
    plist = [params[n] for n in names]
    stopped = [torch.zeros_like(p) for p in plist]
    for x, y in _batches(data, num_batches, device):
        loss = loss_fn(work(x) / temperature, y)
        grads = torch.autograd.grad(loss, plist, allow_unused=True)
        for s, g in zip(stopped, grads):
            if g is not None:
                s.add_(g)
    work.zero_grad(set_to_none=True)
    for x, y in _batches(data, num_batches, device):
        loss = loss_fn(work(x) / temperature, y)
        grads = torch.autograd.grad(loss, plist, create_graph=True, allow_unused=True)
        z = sum((s * g).sum() for s, g in zip(stopped, grads) if g is not None)
        if isinstance(z, torch.Tensor) and z.requires_grad:
            z.backward()
    # keep-score = theta * Hg = -S: the weights with the largest S = -theta*Hg are removed.
    return {n: (p.grad * p).detach() if p.grad is not None else torch.zeros_like(p)
            for n, p in zip(names, plist)}


def _synflow_scores(work, params, ones) -> Dict[str, torch.Tensor]:
    work.zero_grad(set_to_none=True)
    work(ones).sum().backward()
    return {n: (p.grad * p).abs().detach() if p.grad is not None else torch.zeros_like(p)
            for n, p in params.items()}


def _schedule(density: float, rounds: int, kind: str) -> List[float]:
    if kind == "exponential":
        return [density ** ((r + 1) / rounds) for r in range(rounds)]
    if kind == "linear":
        return [1.0 - (1.0 - density) * (r + 1) / rounds for r in range(rounds)]
    raise ValueError(f"schedule must be 'exponential' or 'linear', got {kind!r}")


def _input_shape(model: nn.Module, data: Any, input_shape) -> Tuple[int, ...]:
    if input_shape is not None:
        return tuple(int(s) for s in input_shape)
    shape = getattr(unwrap(model), "input_shape", None)
    if shape is not None:
        return tuple(shape)
    if data is not None:
        shape = getattr(data, "input_shape", None)
        if shape is not None:
            return tuple(shape)
        for x, _ in _batches(data, 1, torch.device("cpu")):
            return tuple(x.shape[1:])
    raise ValueError("synflow needs the input shape: pass input_shape=(...), data=, or build the "
                     "model with fspai.models.build (which records model.input_shape)")


@torch.no_grad()
def _linearize(work: nn.Module, bias: str) -> nn.Module:
    """SynFlow's linearisation: every floating tensor -> |.|; with ``bias="zero"`` also zero the
    additive terms (biases, BatchNorm shifts and running means)."""
    weights = {id(p) for p in prunable_parameters(work).values()}
    for module in work.modules():
        for name, t in list(module.named_parameters(recurse=False)) + list(
                module.named_buffers(recurse=False)):
            if not t.is_floating_point():
                continue
            t.abs_()
            additive = name in ("bias", "running_mean") and id(t) not in weights
            if bias == "zero" and additive:
                t.zero_()
    return work


@torch.no_grad()
def _set_masked(params, originals, masks) -> None:
    for n, p in params.items():
        p.copy_(originals[n] * masks[n].to(p.device))


def _iterative(work, params, density, *, scope, rounds, schedule, scorer) -> Dict[str, torch.Tensor]:
    originals = {n: p.detach().clone() for n, p in params.items()}
    masks = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in params.items()}
    for d in _schedule(density, rounds, schedule):
        _set_masked(params, originals, masks)
        masks = select_topk(scorer(), d, scope=scope, alive=masks)
    _set_masked(params, originals, masks)
    return masks


# --------------------------------------------------------------------------------------------
# prune()
# --------------------------------------------------------------------------------------------

def prune(model: nn.Module, method: str, density: float, *, data: Any = None,
          scope: str = "global", seed: int = 0, **options) -> Dict[str, torch.Tensor]:
    """Pruning-at-initialization masks for ``model``: ``{name: BoolTensor}`` (CPU), every prunable
    weight present.

    Parameters
    ----------
    method : one of :data:`METHODS`.
    density : fraction of weights kept, in (0, 1].
    data : iterable of ``(x, y)`` batches (a DataLoader, or a :class:`fspai.data.DataBundle`, whose
        ``train_loader`` is used). Required by snip, grasp and itersnip.
    scope : ``"global"`` (one threshold over all layers) or ``"layer"`` (``density`` per layer).
    seed : seeds random masks and the data order used for scoring.

    Options
    -------
    exclude : names of prunable weights to leave dense (not counted in the budget).
    num_batches : batches of ``data`` used per scoring pass (default: all, i.e. one epoch).
    rounds : iterations of synflow/itersnip (default 100). schedule : ``"exponential"``
        (default) or ``"linear"``.
    temperature : GraSP logit temperature (200). loss_fn : ``F.cross_entropy`` by default.
    input_shape : per-sample input shape for synflow (default ``model.input_shape`` or ``data``).
    synflow_bias : ``"zero"`` (default): the paper's ``R = 1^T prod|W| 1``; biases, BatchNorm
        shifts and running means are set to 0 in the scoring copy, so only weight paths count
        (at the papers' initialisation, biases are 0 anyway). ``"abs"``: Tanaka et al.'s code,
        which takes ``|b|``; non-zero biases then feed later layers without any input path and
        SynFlow can collapse early layers at extreme sparsity.
    distribution : for ``random``: ``"uniform"``, ``"er"``, ``"erk"``. power_scale : ERK exponent.
    train_mode : score snip/grasp/itersnip in ``train()`` mode instead of ``eval()`` (default
        False); synflow always scores in ``eval()`` mode.
    device : where to score (default: the model's device).
    """
    if method not in METHODS:
        raise ValueError(f"unknown PaI method {method!r}; valid methods are {list(METHODS)}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {list(SCOPES)}, got {scope!r}")
    _check_density(density)
    density = float(density)
    opts = dict(options)
    exclude = tuple(opts.pop("exclude", ()))
    device = opts.pop("device", None) or model_device(model)
    train_mode = bool(opts.pop("train_mode", False))
    loss_fn: Callable = opts.pop("loss_fn", F.cross_entropy)
    num_batches = opts.pop("num_batches", None)
    rounds = int(opts.pop("rounds", 100))
    schedule = opts.pop("schedule", "exponential")
    distribution = opts.pop("distribution", "erk" if method == "erk" else "uniform")
    power_scale = float(opts.pop("power_scale", 1.0))
    temperature = float(opts.pop("temperature", 200.0))
    input_shape = opts.pop("input_shape", None)
    synflow_bias = opts.pop("synflow_bias", "zero")
    if synflow_bias not in ("zero", "abs"):
        raise ValueError(f"synflow_bias must be 'zero' or 'abs', got {synflow_bias!r}")
    if opts:
        raise TypeError(f"unexpected options for prune(method={method!r}): {sorted(opts)}")
    if method in ("snip", "grasp", "itersnip"):
        _need_data(method, data)
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")

    base = unwrap(model)
    all_shapes = {n: tuple(p.shape) for n, p in prunable_parameters(base).items()}
    unknown = [n for n in exclude if n not in all_shapes]
    if unknown:
        raise KeyError(f"exclude names are not prunable parameters: {unknown}; "
                       f"prunable parameters are {sorted(all_shapes)}")
    with _isolated_rng(data, seed):
        if method in ("random", "erk"):
            shapes = {n: s for n, s in all_shapes.items() if n not in set(exclude)}
            masks = _random_masks(shapes, density, scope=scope, seed=seed,
                                  distribution=distribution, power_scale=power_scale)
        else:
            work = _working_copy(base, train_mode).to(device)
            params = _weights(work, exclude)
            if method == "magnitude":
                masks = select_topk({n: p.detach().abs() for n, p in params.items()}, density,
                                    scope=scope)
            elif method == "snip":
                masks = select_topk(_snip_scores(work, params, data, num_batches=num_batches,
                                                 loss_fn=loss_fn, device=device),
                                    density, scope=scope)
            elif method == "grasp":
                masks = select_topk(_grasp_scores(work, params, data, num_batches=num_batches,
                                                  loss_fn=loss_fn, device=device,
                                                  temperature=temperature),
                                    density, scope=scope)
            elif method == "synflow":
                shape = _input_shape(base, data, input_shape)
                work = _linearize(work.double(), synflow_bias).eval()   # always eval (batch of 1)
                params = _weights(work, exclude)
                ones = torch.ones((1, *shape), dtype=torch.float64, device=device)
                masks = _iterative(work, params, density, scope=scope, rounds=rounds,
                                   schedule=schedule,
                                   scorer=lambda: _synflow_scores(work, params, ones))
            else:  # itersnip
                masks = _iterative(work, params, density, scope=scope, rounds=rounds,
                                   schedule=schedule,
                                   scorer=lambda: _snip_scores(work, params, data,
                                                               num_batches=num_batches,
                                                               loss_fn=loss_fn, device=device))
            del work
    out = {n: (masks[n].cpu().bool() if n in masks else torch.ones(s, dtype=torch.bool))
           for n, s in all_shapes.items()}
    rd = realised_density({n: out[n] for n in masks})
    log.info("prune(%s, scope=%s): target density %.6g, realised %.6g over %d layers "
             "(%d excluded)", method, scope, density, rd, len(masks), len(exclude))
    return out


def _random_masks(shapes: Mapping[str, Tuple[int, ...]], density: float, *, scope: str, seed: int,
                  distribution: str, power_scale: float) -> Dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(int(seed))
    if distribution == "uniform":
        scores = {n: torch.rand(s, generator=gen) for n, s in shapes.items()}
        return select_topk(scores, density, scope=scope)
    if distribution not in ("er", "erk"):
        raise ValueError(f"distribution must be 'uniform', 'er' or 'erk', got {distribution!r}")
    dens = erk_densities(shapes, density, kernel=distribution == "erk", power_scale=power_scale)
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    total = int(round(density * sum(sizes.values())))
    counts = _apportion({n: dens[n] * sizes[n] for n in shapes}, sizes, total)
    out = {}
    for n, s in shapes.items():
        keep = torch.zeros(sizes[n], dtype=torch.bool)
        keep[torch.randperm(sizes[n], generator=gen)[:counts[n]]] = True
        out[n] = keep.view(s)
    return out


# --------------------------------------------------------------------------------------------
# Lottery tickets: iterative magnitude pruning with rewinding
# --------------------------------------------------------------------------------------------

@dataclass
class IMPResult:
    """Outcome of :func:`imp`.

    ``masks``: the final ticket's masks; ``state_dict``: the rewound weights and buffers (plain
    parameter names, CPU) to train the ticket from; ``rewind_to``: the step they come from
    (0 = initialisation); ``history``: one dict per round (round, density, train_loss, test_acc,
    test_loss, steps); ``trained_state_dict``: the last trained weights (if any round trained).
    """

    masks: Dict[str, torch.Tensor]
    state_dict: Dict[str, torch.Tensor]
    rewind_to: int
    history: List[Dict[str, Any]] = field(default_factory=list)
    trained_state_dict: Optional[Dict[str, torch.Tensor]] = None

    def apply(self, model: nn.Module) -> nn.Module:
        """Load the rewound weights into a plain (unmasked) ``model`` and attach the masks."""
        base = unwrap(model)
        if extract_masks(base):
            remove_masks(base, make_permanent=True)
        base.load_state_dict(self.state_dict)
        apply_masks(base, self.masks)
        return model


def _cpu_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def imp(model: nn.Module, data: Any, density: float, *, rounds: int, rewind_to: int = 0,
        steps: Optional[int] = None, epochs: Optional[int] = None, scope: str = "global",
        seed: int = 0, train_final: bool = True, **train_options) -> IMPResult:
    """Iterative magnitude pruning with weight rewinding (Frankle & Carbin 2019; Frankle et al.
    2020), the lottery-ticket comparator of the NeurIPS 2023 paper.

    Round 0 trains the dense network for ``steps``/``epochs`` (``fspai.train.fit`` with
    ``train_options``, e.g. ``lr=``, ``optimizer=``) and stores the weights at step
    ``rewind_to`` (0 = the initialisation: classic LTH; k > 0: LTH-rewind). Each of the
    ``rounds`` pruning rounds removes the smallest-magnitude surviving weights of the trained
    network so that round r keeps ``density**(r/rounds)``, rewinds the survivors to the stored
    weights, and (except after the last round unless ``train_final``) trains again with the
    mask fixed. ``model`` is not modified. Every round trains with the same ``seed``.
    """
    from .train import fit  # local import: train imports pai for SET's ERK start

    _check_density(density)
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if rewind_to < 0:
        raise ValueError(f"rewind_to must be >= 0, got {rewind_to}")
    train_options.setdefault("progress", False)
    user_callbacks = list(train_options.pop("callbacks", None) or ())
    work = copy.deepcopy(unwrap(model))
    if extract_masks(work):
        remove_masks(work, make_permanent=True)
    rewind_state: Dict[str, torch.Tensor] = _cpu_state(work)
    captured: Dict[str, Dict[str, torch.Tensor]] = {}

    def capture(state) -> None:        # round 0 trains the dense copy: plain state-dict names
        if state.step == rewind_to and "w" not in captured:
            captured["w"] = _cpu_state(unwrap(state.model))

    history: List[Dict[str, Any]] = []
    masks = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in prunable_parameters(work).items()}
    trained: Optional[Dict[str, torch.Tensor]] = None
    for r in range(rounds + 1):
        last = r == rounds
        if not last or train_final:
            extra = [capture] if r == 0 and rewind_to > 0 else []
            h = fit(work, data, masks=None if r == 0 else masks, steps=steps, epochs=epochs,
                    seed=seed, callbacks=user_callbacks + extra, **train_options)
            if r == 0 and rewind_to > 0:
                if "w" not in captured:
                    raise ValueError(f"rewind_to={rewind_to} is beyond the {h.total_steps} "
                                     "training steps")
                rewind_state = captured["w"]
            ev = h.epochs[-1] if h.epochs else {}
            history.append({"round": r, "density": realised_density(masks),
                            "train_loss": ev.get("train_loss"), "test_acc": ev.get("test_acc"),
                            "test_loss": ev.get("test_loss"), "steps": h.total_steps})
            log.info("IMP round %d: density %.4g, test acc %s", r, realised_density(masks),
                     ev.get("test_acc"))
            if extract_masks(work):
                remove_masks(work, make_permanent=True)
            trained = _cpu_state(work)
        if last:
            break
        target = density ** ((r + 1) / rounds)
        mags = {n: p.detach().abs().cpu() for n, p in prunable_parameters(work).items()}
        masks = select_topk(mags, target, scope=scope, alive=masks)
        work.load_state_dict(rewind_state)
    return IMPResult(masks=masks, state_dict=rewind_state, rewind_to=rewind_to, history=history,
                     trained_state_dict=trained)
