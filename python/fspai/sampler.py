"""Full-Spectrum PaI: sampling pruning-at-initialization masks guided by the full-spectrum
coordinate (SPEC §7–§8; NeurIPS 2023 "Don't just prune by magnitude", research-notes §3).

Algorithm (as the authors' ``lth_tickets_generation.py`` implements it)::

    θ*  = random init | dense model after ``pretrain_steps`` SGD iterations | user checkpoint
    m0  = P(θ*, full data)                      # the vanilla PaI baseline ("mask_0")
    best_j = (m0_j, c(m0_j, θ*_j))              # per layer j, c = full-spectrum coordinate
    for t = 1..N:
        cand = P on a few mini-batches (SNIP/GraSP/iterSNIP), on noised weights
               (SynFlow/iterSNIP/magnitude) or a fresh random draw (random/ERK)
        score every layer of cand with the un-noised θ*  (one batched ``fspai.coordinates`` call)
        rule "layer":   take cand_j  iff  imdb(cand_j) >= imdb(best_j) and ‖c(cand_j)‖ >= ‖c(best_j)‖
        rule "network": take all of cand iff mean_j ‖c(cand_j)‖ > mean_j ‖c(best_j)‖
        every K samples, if anything changed: save the composite mask with its coordinates

Determinism and sharding.  Everything random about candidate ``t`` (its data batches, its weight
noise, the seed handed to the PaI method) is derived from ``(seed, t)`` alone, so candidate ``t``
is the same mask whichever process makes it.  Under ``torchrun`` (an initialised
``torch.distributed`` process group) candidate ``t`` is generated and scored by rank
``(t - 1) % world_size``; at every synchronisation point (each ``save_interval`` candidates) the
ranks all-gather the per-layer scores (a few floats per layer and candidate) and every rank replays
the acceptance rule in candidate order ``t = 1, 2, …``.  The replay is exactly what one process does,
so the result is identical to a single-process run for the same seed, and ties are broken
deterministically by candidate index (a later candidate that ties under the ``>=`` layer rule wins,
as in the released code; under the strict network rule the earliest maximiser wins).  Only the
masks of the final per-layer winners of each round travel (broadcast from the rank that made them).

Budget.  The released code lets the composite's global density drift from the target, because
every candidate has its own per-layer allocation (global thresholding).  ``budget="free"``
reproduces that and reports the realised density.  ``budget="preserve"`` keeps every layer at the
baseline's edge count: each candidate layer is trimmed or topped up to the baseline count by
top-k on a ranking that puts the candidate's own edges first and orders edges within and outside
them by the base method's saliency on the candidate's inputs (|θ·g| for SNIP/iterSNIP, -θ·Hg for
GraSP, |θ·∂R/∂θ| for SynFlow, |θ| for magnitude, a seeded uniform draw for random/ERK).  Of the
two options in the issue this one was chosen because (a) it is the minimal edit of the candidate
(a layer that already has the baseline count is left untouched, so ERK candidates are unchanged),
(b) it works for every base method, including the iterative ones whose per-layer allocation can
not be fixed in advance, and (c) it keeps the acceptance rule comparing like with like: every
layer the rule sees has exactly the baseline's number of edges, so the global density is exactly
the baseline's.

Caveat (measured, MNIST-1D MLP, see the project's experiment notes): the per-layer rule scores
every layer as its own bipartite graph, so a composite can pair layer ``l`` of one candidate with
layer ``l+1`` of another whose input units do not line up, and it can move edges away from a
bottleneck layer (``budget="free"``).  A higher coordinate norm then does not imply a better
network; compare the composite against its baseline before trusting it.
"""
from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

try:  # torch is an optional dependency of the package; the sampler needs it
    import torch
except ImportError as _exc:  # pragma: no cover - exercised only without torch
    raise ImportError("fspai.sampler needs PyTorch: pip install torch") from _exc

__all__ = [
    "METHODS", "RULES", "BUDGETS", "FullSpectrumSampler", "SamplerResult", "Snapshot",
    "LayerScore", "accept_layers", "accept_network", "replay", "candidate_seed",
    "prepare_weights", "pretrain", "init_distributed", "dist_info", "realised_density",
]

log = logging.getLogger(__name__)

#: Base PaI methods the sampler can sit on (names as in :func:`fspai.pai.prune`).
METHODS = ("random", "erk", "magnitude", "snip", "grasp", "synflow", "itersnip")
#: Acceptance rules: the paper's per-layer rule, its ``--alt`` variant, the whole-network rule.
RULES = ("layer", "layer-alt", "network")
#: ``free``: the released behaviour (density drifts); ``preserve``: baseline edge count per layer.
BUDGETS = ("free", "preserve")

_DATA_METHODS = frozenset({"snip", "grasp", "itersnip"})      # candidates from a few mini-batches
_NOISE_METHODS = frozenset({"synflow", "itersnip", "magnitude"})  # candidates from noised weights
_FRESH_METHODS = frozenset({"random", "erk"})                  # candidates are fresh random draws
_ALIASES = {"rand": "random", "iter_snip": "itersnip", "iter-snip": "itersnip", "mag": "magnitude"}

# RNG streams derived from (seed, t): one independent stream per use.
_STREAM_PRUNE, _STREAM_BATCHES, _STREAM_NOISE, _STREAM_RANK = 0, 1, 2, 3


# --------------------------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------------------------

def candidate_seed(seed: int, t: int, stream: int = _STREAM_PRUNE) -> int:
    """A 63-bit seed that depends only on ``(seed, t, stream)`` (numpy ``SeedSequence``)."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32, int(t), int(stream)])
    return int(ss.generate_state(1, np.uint64)[0] & np.uint64(0x7FFF_FFFF_FFFF_FFFF))


def normalize_method(method: str) -> str:
    m = str(method).strip().lower()
    m = _ALIASES.get(m, m)
    if m not in METHODS:
        raise ValueError(f"unknown base PaI method {method!r}; choose one of {', '.join(METHODS)}")
    return m


def dist_info(group=None) -> Tuple[int, int]:
    """``(rank, world_size)`` of the current ``torch.distributed`` group, ``(0, 1)`` if none."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(group), dist.get_world_size(group)
    return 0, 1


def init_distributed(backend: Optional[str] = None) -> bool:
    """Initialise the default process group from the ``torchrun`` environment variables.

    Returns True when a group with more than one process is (now) initialised, False when the
    process was not started by ``torchrun`` (``WORLD_SIZE`` unset or 1).  ``backend`` defaults to
    ``gloo`` (the sampler's collectives are tiny; candidate masks travel as CPU tensors).
    """
    import torch.distributed as dist
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    dist.init_process_group(backend=backend or "gloo")
    return dist.get_world_size() > 1


def realised_density(masks: Mapping[str, "torch.Tensor"]) -> float:
    """Global density (kept / total entries) over all layers of a mask dict."""
    kept = sum(int(m.count_nonzero()) for m in masks.values())
    total = sum(int(m.numel()) for m in masks.values())
    return kept / total if total else float("nan")


def _coord_vector(c: Any) -> np.ndarray:
    """(delta_r, weighted_gap, imdb, weighted_imdb) of a Coordinate (or a 4-sequence)."""
    if hasattr(c, "as_array"):
        a = np.asarray(c.as_array(), dtype=np.float64).reshape(-1)
    elif all(hasattr(c, k) for k in ("delta_r", "weighted_gap", "imdb", "weighted_imdb")):
        a = np.array([c.delta_r, c.weighted_gap, c.imdb, c.weighted_imdb], dtype=np.float64)
    else:
        a = np.asarray(c, dtype=np.float64).reshape(-1)
    if a.shape != (4,):
        raise ValueError(f"a coordinate has 4 components, got shape {a.shape}")
    return a


def _coord_norm(c: Any, vec: np.ndarray) -> float:
    if hasattr(c, "norm"):
        try:
            return float(c.norm())
        except TypeError:  # e.g. a numpy array's .norm does not exist; be lenient
            pass
    return float(np.linalg.norm(vec))


@dataclass(frozen=True)
class LayerScore:
    """What the acceptance rule sees of one layer: its 4-vector, its L2 norm."""

    vector: Tuple[float, float, float, float]
    norm: float

    @property
    def delta_r(self) -> float:
        return self.vector[0]

    @property
    def weighted_gap(self) -> float:
        return self.vector[1]

    @property
    def imdb(self) -> float:
        return self.vector[2]

    @property
    def weighted_imdb(self) -> float:
        return self.vector[3]

    def to_dict(self) -> Dict[str, float]:
        return {"delta_r": self.vector[0], "weighted_gap": self.vector[1], "imdb": self.vector[2],
                "weighted_imdb": self.vector[3], "norm": self.norm}


def _scores_array(coords: Sequence[Any]) -> np.ndarray:
    """Coordinates of a candidate's layers -> float64 array (L, 5): 4 axes + norm.

    Non-finite values (never produced by the neurips23 coordinate, but a custom scorer might)
    become -inf so they can never win a comparison.
    """
    out = np.empty((len(coords), 5), dtype=np.float64)
    for j, c in enumerate(coords):
        v = _coord_vector(c)
        out[j, :4] = v
        out[j, 4] = _coord_norm(c, v)
    out[~np.isfinite(out)] = -np.inf
    return out


# --------------------------------------------------------------------------------------------
# the acceptance rules (pure functions on per-layer scores)
# --------------------------------------------------------------------------------------------
_IDX_DELTA_R, _IDX_IMDB, _IDX_NORM = 0, 2, 4


def accept_layers(best: np.ndarray, cand: np.ndarray, rule: str = "layer") -> np.ndarray:
    """Per-layer acceptance mask of one candidate against the current best.

    ``best`` and ``cand`` are (L, 5) arrays (delta_r, weighted_gap, imdb, weighted_imdb, norm).
    ``rule="layer"`` (the paper): accept layer j iff imdb and norm are both not lower.
    ``rule="layer-alt"`` (the released ``--alt`` switch): delta_r strictly lower and norm not
    lower.  ``rule="network"``: all layers or none, by :func:`accept_network`.
    """
    best = np.asarray(best, dtype=np.float64)
    cand = np.asarray(cand, dtype=np.float64)
    if best.shape != cand.shape or best.ndim != 2 or best.shape[1] != 5:
        raise ValueError(f"score arrays must both be (layers, 5), got {best.shape} / {cand.shape}")
    if rule == "layer":
        return (cand[:, _IDX_IMDB] >= best[:, _IDX_IMDB]) & (cand[:, _IDX_NORM] >= best[:, _IDX_NORM])
    if rule == "layer-alt":
        return (cand[:, _IDX_DELTA_R] < best[:, _IDX_DELTA_R]) & (
            cand[:, _IDX_NORM] >= best[:, _IDX_NORM])
    if rule == "network":
        return np.full(best.shape[0], accept_network(best, cand), dtype=bool)
    raise ValueError(f"unknown acceptance rule {rule!r}; choose one of {', '.join(RULES)}")


def accept_network(best: np.ndarray, cand: np.ndarray) -> bool:
    """Whole-network rule: accept iff the candidate's mean layer norm is strictly higher."""
    b = np.asarray(best, dtype=np.float64)[:, _IDX_NORM]
    c = np.asarray(cand, dtype=np.float64)[:, _IDX_NORM]
    return bool(np.mean(c) > np.mean(b))


def replay(best: np.ndarray, sources: np.ndarray, candidates: Iterable[Tuple[int, np.ndarray]],
           rule: str = "layer") -> Tuple[np.ndarray, np.ndarray, List[Tuple[int, int]]]:
    """Apply the acceptance rule to candidates in increasing index order.

    ``best`` (L, 5) scores of the current composite, ``sources`` (L,) the candidate index each
    layer currently comes from (0 = baseline).  ``candidates`` yields ``(t, scores)``; they are
    sorted by ``t`` first, so the outcome does not depend on the order they arrive in (e.g. from
    which rank).  Returns the new ``(best, sources, history)`` where ``history`` lists
    ``(t, number of layers taken)`` for every candidate that changed something.
    """
    best = np.array(best, dtype=np.float64, copy=True)
    sources = np.array(sources, dtype=np.int64, copy=True)
    history: List[Tuple[int, int]] = []
    for t, sc in sorted(candidates, key=lambda item: item[0]):
        acc = accept_layers(best, sc, rule)
        n = int(acc.sum())
        if n:
            best[acc] = sc[acc]
            sources[acc] = t
            history.append((int(t), n))
    return best, sources, history


# --------------------------------------------------------------------------------------------
# weights θ*
# --------------------------------------------------------------------------------------------

def _load_state_dict(path: "os.PathLike[str] | str") -> Dict[str, "torch.Tensor"]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights checkpoint not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - rephrase any unpickling failure
        raise ValueError(f"cannot read weights checkpoint {p}: {exc}") from exc
    for key in ("state_dict", "model_state_dict", "model", "weights"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{p} holds no state_dict of tensors")
    return obj


def prepare_weights(model: "torch.nn.Module", weights: Any = "init", *, data=None,
                    steps: int = 500, seed: int = 0, device=None,
                    train_options: Optional[Mapping[str, Any]] = None) -> "torch.nn.Module":
    """Put θ* into ``model`` (in place) and return it.

    ``weights``: ``"init"`` (leave the random init), ``"pretrained"`` (dense SGD for ``steps``
    iterations on ``data``, see :func:`pretrain`), a path to a checkpoint (state_dict, or a dict
    with a ``state_dict``/``model`` entry), or a state_dict mapping.
    """
    if isinstance(weights, Mapping):
        model.load_state_dict(weights)
        return model
    if isinstance(weights, (str, os.PathLike)) and str(weights) not in ("init", "pretrained"):
        model.load_state_dict(_load_state_dict(weights))
        return model
    if weights == "init" or weights is None:
        return model
    if weights != "pretrained":
        raise ValueError(f"weights must be 'init', 'pretrained' or a checkpoint path, got {weights!r}")
    if data is None:
        raise ValueError("weights='pretrained' needs training data")
    return pretrain(model, data, steps=int(steps), seed=seed, device=device,
                    **dict(train_options or {}))


def pretrain(model: "torch.nn.Module", data, *, steps: int = 500, seed: int = 0, lr: float = 0.1,
             momentum: float = 0.9, nesterov: bool = True, weight_decay: float = 5e-4,
             device=None, **ignored) -> "torch.nn.Module":
    """Dense SGD pre-training for θ* (the released ``lth_tickets_pretraining.py`` defaults: lr 0.1,
    momentum 0.9, Nesterov, weight decay 5e-4, constant lr), in place.

    A self-contained loop on purpose: it is a deterministic function of ``(seed, data)`` alone and
    never wraps the model in DDP, so every process of a ``torchrun`` job (and a single process)
    computes the same θ*.  The batch order is a seeded permutation of ``data.dataset`` per epoch
    (plain iterables are consumed in their own order).  Other training options are ignored.
    """
    if ignored:
        log.debug("pretrain ignores options %s", sorted(ignored))
    steps = int(steps)
    if steps <= 0:
        return model
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0,
                          weight_decay=weight_decay)
    loss_fn = torch.nn.functional.cross_entropy
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(candidate_seed(seed, 0, _STREAM_RANK))
        step = 0
        epoch = 0
        while step < steps:
            n_before = step
            for x, y in _epoch_batches(data, seed, epoch):
                x, y = x.to(dev), y.to(dev)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                step += 1
                if step >= steps:
                    break
            if step == n_before:
                raise ValueError("the training data yielded no batches")
            epoch += 1
    opt.zero_grad(set_to_none=True)
    return model


def _epoch_batches(data, seed: int, epoch: int):
    ds = getattr(data, "dataset", None)
    bs = getattr(data, "batch_size", None)
    if ds is not None and bs and hasattr(ds, "__len__") and hasattr(ds, "__getitem__"):
        from torch.utils.data import default_collate
        collate = getattr(data, "collate_fn", None) or default_collate
        gen = torch.Generator().manual_seed(candidate_seed(seed, epoch, 4))
        perm = torch.randperm(len(ds), generator=gen).tolist()
        drop_last = bool(getattr(data, "drop_last", False))
        for k in range(0, len(perm), int(bs)):
            idx = perm[k:k + int(bs)]
            if drop_last and len(idx) < int(bs):
                break
            yield collate([ds[i] for i in idx])
        return
    for b in data:
        yield b[0], b[1]


# --------------------------------------------------------------------------------------------
# data and noise for candidates
# --------------------------------------------------------------------------------------------

class _BatchSource:
    """Deterministic mini-batches for candidate ``t`` from a loader (depends on (seed, t) only).

    With a map-style ``loader.dataset`` the batches are drawn by index (without replacement) and
    collated with ``torch.utils.data.default_collate``; otherwise the first ``pool`` batches of
    the iterable are cached once and candidate ``t`` picks among them.
    """

    def __init__(self, data, *, seed: int, pool: int = 64):
        self.data = data
        self.seed = int(seed)
        self._dataset = None
        self._batch_size = None
        self._pool: Optional[List[Any]] = None
        self._pool_size = pool
        ds = getattr(data, "dataset", None)
        bs = getattr(data, "batch_size", None)
        if ds is not None and bs and hasattr(ds, "__len__") and hasattr(ds, "__getitem__"):
            try:
                n = len(ds)
            except TypeError:
                n = 0
            if n > 0:
                self._dataset, self._batch_size = ds, int(bs)
        self._collate = getattr(data, "collate_fn", None)

    def batches(self, t: int, count: int) -> List[Any]:
        rng = np.random.default_rng(candidate_seed(self.seed, t, _STREAM_BATCHES))
        if self._dataset is not None:
            n = len(self._dataset)
            bs = min(self._batch_size, n)
            total = min(bs * count, n)
            idx = rng.choice(n, size=total, replace=False)
            from torch.utils.data import default_collate
            collate = self._collate or default_collate
            return [collate([self._dataset[int(i)] for i in idx[k:k + bs]])
                    for k in range(0, total, bs)]
        if self._pool is None:
            self._pool = []
            for b in self.data:
                self._pool.append(b)
                if len(self._pool) >= self._pool_size:
                    break
            if not self._pool:
                raise ValueError("the training data yielded no batches")
        k = min(count, len(self._pool))
        return [self._pool[int(i)] for i in rng.choice(len(self._pool), size=k, replace=False)]


def _init_std(module: "torch.nn.Module", weight: "torch.Tensor") -> float:
    """The released code's noise/init scale: conv N(0, sqrt(2 / (k·k·c_out))), linear 0.01."""
    if weight.dim() > 2:
        k = int(np.prod(weight.shape[2:]))
        return math.sqrt(2.0 / (k * weight.shape[0]))
    return 0.01


def _parameter_by_name(model: "torch.nn.Module", name: str) -> "torch.Tensor":
    try:
        from .masks import prunable_parameters
        p = prunable_parameters(model).get(name)
        if p is not None:
            return p
    except ImportError:  # pragma: no cover - fspai.masks is part of the package
        pass
    params = dict(model.named_parameters())
    for key in (name, f"{name}.weight", name.replace(".parametrizations.weight.original", ".weight")):
        if key in params:
            return params[key]
    # masks applied via torch.nn.utils.parametrize
    base = name[:-len(".weight")] if name.endswith(".weight") else name
    key = f"{base}.parametrizations.weight.original"
    if key in params:
        return params[key]
    raise KeyError(f"the model has no parameter for mask {name!r}")


def _module_of(model: "torch.nn.Module", name: str) -> Optional["torch.nn.Module"]:
    base = name[:-len(".weight")] if name.endswith(".weight") else name
    try:
        return model.get_submodule(base)
    except AttributeError:
        return None


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------

@dataclass
class Snapshot:
    """A saved composite: after candidate ``t`` (0 = the baseline)."""

    t: int
    mean_norm: float
    density: float
    path: Optional[str] = None
    masks: Optional[Dict[str, "torch.Tensor"]] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"t": self.t, "mean_norm": self.mean_norm, "density": self.density, "path": self.path}


@dataclass
class SamplerResult:
    """Outcome of :meth:`FullSpectrumSampler.run`.

    ``masks``: the final composite (bool tensors, CPU), ``baseline``: m0.  ``scores`` and
    ``baseline_scores`` map layer -> :class:`LayerScore`; ``sources`` maps layer -> candidate index
    it came from (0 = baseline).  ``timings`` holds seconds spent generating candidates, scoring
    them (metrics), selecting/communicating, the total, candidates per second and the fraction of
    generate+score time spent in metrics.
    """

    masks: Dict[str, "torch.Tensor"]
    baseline: Dict[str, "torch.Tensor"]
    scores: Dict[str, LayerScore]
    baseline_scores: Dict[str, LayerScore]
    sources: Dict[str, int]
    history: List[Tuple[int, int]]
    snapshots: List[Snapshot]
    target_density: float
    realised_density: float
    baseline_density: float
    layer_density: Dict[str, float]
    timings: Dict[str, float]
    config: Dict[str, Any] = field(default_factory=dict)

    @property
    def mean_norm(self) -> float:
        return float(np.mean([s.norm for s in self.scores.values()])) if self.scores else float("nan")

    @property
    def baseline_mean_norm(self) -> float:
        vals = [s.norm for s in self.baseline_scores.values()]
        return float(np.mean(vals)) if vals else float("nan")

    @property
    def accepted(self) -> int:
        """Number of candidates that contributed at least one layer at the time they were seen."""
        return len(self.history)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly summary (no mask tensors)."""
        return {
            "config": dict(self.config),
            "target_density": self.target_density,
            "realised_density": self.realised_density,
            "baseline_density": self.baseline_density,
            "mean_norm": self.mean_norm,
            "baseline_mean_norm": self.baseline_mean_norm,
            "accepted": self.accepted,
            "history": [list(h) for h in self.history],
            "sources": dict(self.sources),
            "layers": {k: {**self.scores[k].to_dict(), "source": self.sources[k],
                           "density": self.layer_density[k],
                           "baseline": self.baseline_scores[k].to_dict()} for k in self.scores},
            "snapshots": [s.to_dict() for s in self.snapshots],
            "timings": dict(self.timings),
        }


# --------------------------------------------------------------------------------------------
# the sampler
# --------------------------------------------------------------------------------------------

class FullSpectrumSampler:
    """Full-Spectrum PaI sampler (SPEC §8).

    Parameters
    ----------
    model : torch.nn.Module
        The network.  With ``weights="init"`` its current weights are θ*; otherwise θ* is put into
        it in place (``"pretrained"``: ``pretrain_steps`` dense SGD steps; a path: a checkpoint).
    method : str
        Base PaI method P: ``random``, ``erk``, ``magnitude``, ``snip``, ``grasp``, ``synflow``,
        ``itersnip``.
    density : float
        Target global density D in (0, 1].
    data : iterable of (x, y) batches, optional
        Training data (a ``DataLoader``); needed by SNIP/GraSP/iterSNIP and for pre-training.
    population : int
        Number of candidates N (the released scripts use 2000–3000 on CIFAR).
    save_interval : int
        K: every K candidates the composite is saved (if it changed) and, under torchrun, the
        ranks synchronise.
    seed : int
        Everything random derives from ``(seed, t)``.
    rule : ``"layer"`` | ``"layer-alt"`` | ``"network"``
        Acceptance rule (see :func:`accept_layers`).
    budget : ``"free"`` | ``"preserve"``
        ``free`` = released behaviour (density drifts, reported); ``preserve`` = every layer keeps
        the baseline's edge count (module docstring says how).
    candidate_batches : int
        Mini-batches per SNIP/GraSP/iterSNIP candidate (the released code used 4, from
        ``n_it = 2`` and an off-by-one).
    baseline_batches : int or None
        Mini-batches for the baseline m0 (None = the whole loader, as in the paper).
    noise : float
        Scale of the Gaussian weight noise for SynFlow/iterSNIP/magnitude candidates, relative to
        the released code's init scale (conv sqrt(2/(k²·c_out)), linear 0.01).
    baseline : dict, optional
        A precomputed m0 (skips running P on the full data).
    save_dir : path, optional
        Where ``mask_0.pt`` and ``mask_<t>.pt`` are written (with ``fspai.masks.save_masks``;
        meta holds the per-layer coordinates).  Only rank 0 writes.
    keep_snapshots : bool
        Also keep every saved composite's masks in memory (``SamplerResult.snapshots``).
    scorer : callable, optional
        ``scorer(masks: list, weights: list) -> list[Coordinate]``; default
        ``fspai.coordinates(..., convention=convention)``.
    generator : callable, optional
        ``generator(t) -> dict[str, BoolTensor]``: replaces candidate generation (tests, custom
        proposals).  Must be deterministic in ``t``.
    prune_options : dict, optional
        Extra keyword arguments for :func:`fspai.pai.prune`.
    """

    def __init__(self, model: "torch.nn.Module", method: str = "snip", density: float = 0.01, *,
                 data=None, population: int = 100, save_interval: int = 10, seed: int = 0,
                 rule: str = "layer", budget: str = "free", weights: Any = "init",
                 pretrain_steps: int = 500, pretrain_options: Optional[Mapping[str, Any]] = None,
                 candidate_batches: int = 4, baseline_batches: Optional[int] = None,
                 noise: float = 1.0, scope: str = "global", convention: str = "neurips23",
                 baseline: Optional[Mapping[str, "torch.Tensor"]] = None,
                 save_dir: Optional["os.PathLike[str] | str"] = None, keep_snapshots: bool = False,
                 scorer: Optional[Callable[[list, list], list]] = None,
                 generator: Optional[Callable[[int], Mapping[str, "torch.Tensor"]]] = None,
                 prune_options: Optional[Mapping[str, Any]] = None, device=None,
                 progress: bool = False, group=None):
        self.method = normalize_method(method)
        density = float(density)
        if not (0.0 < density <= 1.0):
            raise ValueError(f"density must be in (0, 1], got {density}")
        if int(population) < 0:
            raise ValueError(f"population must be >= 0, got {population}")
        if int(save_interval) < 1:
            raise ValueError(f"save_interval must be >= 1, got {save_interval}")
        if rule not in RULES:
            raise ValueError(f"unknown acceptance rule {rule!r}; choose one of {', '.join(RULES)}")
        if budget not in BUDGETS:
            raise ValueError(f"unknown budget mode {budget!r}; choose one of {', '.join(BUDGETS)}")
        if int(candidate_batches) < 1:
            raise ValueError(f"candidate_batches must be >= 1, got {candidate_batches}")
        if float(noise) < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        if scope not in ("global", "layer"):
            raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
        data = getattr(data, "train_loader", data)   # a fspai.data.DataBundle is fine too
        if generator is None and self.method in _DATA_METHODS and data is None:
            raise ValueError(f"method {self.method!r} needs training data (data=...)")
        self.model = model
        self.density = density
        self.data = data
        self.population = int(population)
        self.save_interval = int(save_interval)
        self.seed = int(seed)
        self.rule = rule
        self.budget = budget
        self.weights = weights
        self.pretrain_steps = int(pretrain_steps)
        self.pretrain_options = dict(pretrain_options or {})
        self.candidate_batches = int(candidate_batches)
        self.baseline_batches = None if baseline_batches is None else int(baseline_batches)
        self.noise = float(noise)
        self.scope = scope
        self.convention = convention
        self.baseline_masks = None if baseline is None else {k: v.detach().cpu().bool()
                                                             for k, v in baseline.items()}
        self.save_dir = None if save_dir is None else Path(save_dir)
        self.keep_snapshots = bool(keep_snapshots)
        self.prune_options = dict(prune_options or {})
        self.device = device
        self.progress = progress
        self.group = group
        self._custom_generator = generator
        if scorer is None:
            import fspai
            conv = convention

            def scorer(masks, weights):  # noqa: F811 - the default scorer
                return fspai.coordinates(masks, weights, convention=conv)
        self.scorer = scorer
        self._batches: Optional[_BatchSource] = None
        self._weights_ready = False

    # ---- configuration summary -------------------------------------------------------------
    def config(self) -> Dict[str, Any]:
        w = self.weights
        if not isinstance(w, (str, type(None))):
            w = "state_dict" if isinstance(w, Mapping) else str(w)
        return {"method": self.method, "density": self.density, "population": self.population,
                "save_interval": self.save_interval, "seed": self.seed, "rule": self.rule,
                "budget": self.budget, "weights": w, "pretrain_steps": self.pretrain_steps,
                "candidate_batches": self.candidate_batches,
                "baseline_batches": self.baseline_batches, "noise": self.noise,
                "scope": self.scope, "convention": self.convention}

    # ---- θ* ---------------------------------------------------------------------------------
    def prepare(self) -> "torch.nn.Module":
        """Put θ* into the model (once).  Under torchrun every rank prepares it the same way
        and rank 0's copy is broadcast, so all ranks hold bit-identical weights."""
        if self._weights_ready:
            return self.model
        rank, world = dist_info(self.group)
        # every rank computes θ* (deterministic, no collectives inside); rank 0's copy is then
        # broadcast so that all ranks score with bit-identical weights
        prepare_weights(self.model, self.weights, data=self.data, steps=self.pretrain_steps,
                        seed=self.seed, device=self.device, train_options=self.pretrain_options)
        if world > 1:
            _broadcast_module(self.model, src=0, group=self.group)
        self._weights_ready = True
        return self.model

    # ---- P -------------------------------------------------------------------------------------
    def _prune(self, model, *, data, seed: int) -> Dict[str, "torch.Tensor"]:
        from . import pai
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            masks = pai.prune(model, self.method, self.density, data=data, scope=self.scope,
                              seed=seed, **self.prune_options)
        return {k: v.detach().to("cpu").bool() for k, v in masks.items()}

    def _baseline(self) -> Dict[str, "torch.Tensor"]:
        if self.baseline_masks is not None:
            return self.baseline_masks
        data = None
        if self.method in _DATA_METHODS:
            data = self.data
            if self.baseline_batches is not None:
                data = _take(self.data, self.baseline_batches)
        return self._prune(self.model, data=data, seed=candidate_seed(self.seed, 0))

    def _candidate(self, t: int) -> Dict[str, "torch.Tensor"]:
        """Candidate ``t`` (1-based); a deterministic function of (seed, t)."""
        if self._custom_generator is not None:
            masks = self._custom_generator(t)
            return {k: torch.as_tensor(v).detach().cpu().bool() for k, v in masks.items()}
        pseed = candidate_seed(self.seed, t, _STREAM_PRUNE)
        if self.method == "random" and not self.prune_options:
            return self._uniform_draw(pseed)
        if self.method in _FRESH_METHODS:
            return self._prune(self.model, data=None, seed=pseed)
        work = self.model  # fspai.pai.prune scores on its own copy and never modifies the model
        if self.method in _NOISE_METHODS and self.noise > 0:
            work = copy.deepcopy(self.model)
            self._add_noise(work, t)
        data = self._candidate_batches(t) if self.method in _DATA_METHODS else None
        return self._prune(work, data=data, seed=pseed)

    def _uniform_draw(self, seed: int) -> Dict[str, "torch.Tensor"]:
        """A fresh ``random`` candidate: a uniformly random set of round(D·N) weights (global
        scope) or round(D·n_l) per layer (layer scope) -- the distribution of
        ``fspai.pai.prune(model, "random", D)``, drawn with float64 scores and ``torch.topk``
        instead of a full sort (about 10x faster on ResNet-18)."""
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed)
        scores = [torch.rand(self._shapes[n], generator=gen, dtype=torch.float64).reshape(-1)
                  for n in self._names]

        def top(flat: "torch.Tensor", k: int) -> "torch.Tensor":
            keep = torch.zeros(flat.numel(), dtype=torch.bool)
            if k > 0:
                keep[torch.topk(flat, k, sorted=False).indices] = True
            return keep

        if self.scope == "layer":
            return {n: top(sc, int(round(self.density * sc.numel()))).reshape(self._shapes[n])
                    for n, sc in zip(self._names, scores)}
        flat = torch.cat(scores)
        keep = top(flat, int(round(self.density * flat.numel())))
        out, i = {}, 0
        for n, sc in zip(self._names, scores):
            out[n] = keep[i:i + sc.numel()].reshape(self._shapes[n])
            i += sc.numel()
        return out

    def _candidate_batches(self, t: int) -> List[Any]:
        if self._batches is None:
            self._batches = _BatchSource(self.data, seed=self.seed)
        return self._batches.batches(t, self.candidate_batches)

    def _add_noise(self, model: "torch.nn.Module", t: int) -> None:
        gen = torch.Generator(device="cpu")
        gen.manual_seed(candidate_seed(self.seed, t, _STREAM_NOISE))
        with torch.no_grad():
            for name in self._names:
                p = _parameter_by_name(model, name)
                std = self.noise * _init_std(_module_of(model, name), p)
                eps = torch.randn(p.shape, generator=gen, dtype=torch.float32) * std
                p.add_(eps.to(device=p.device, dtype=p.dtype))

    # ---- budget-preserving adjustment ---------------------------------------------------------
    def _saliency(self, t: int) -> Dict[str, "torch.Tensor"]:
        """Per-element saliency of the base method on candidate ``t``'s inputs (CPU float)."""
        gen = torch.Generator(device="cpu")
        gen.manual_seed(candidate_seed(self.seed, t, _STREAM_RANK))
        if self.method in _FRESH_METHODS or self._custom_generator is not None:
            return {n: torch.rand(self._shapes[n], generator=gen) for n in self._names}
        work = copy.deepcopy(self.model)
        if self.method in _NOISE_METHODS and self.noise > 0:
            self._add_noise(work, t)
        data = self._candidate_batches(t) if self.method in _DATA_METHODS else None
        scores = _saliency_scores(work, self._names, self.method, data, device=self.device)
        return {n: s.detach().float().cpu() for n, s in scores.items()}

    def _preserve_budget(self, cand: Dict[str, "torch.Tensor"], t: int) -> Dict[str, "torch.Tensor"]:
        need = [n for n in self._names if int(cand[n].count_nonzero()) != self._counts[n]]
        if not need:
            return cand
        sal = self._saliency(t)
        out = dict(cand)
        for n in need:
            out[n] = _rescale_layer(cand[n], sal[n], self._counts[n])
        return out

    # ---- scoring -------------------------------------------------------------------------------
    def _score(self, masks: Mapping[str, "torch.Tensor"]) -> np.ndarray:
        coords = self.scorer([masks[n] for n in self._names], [self._theta[n] for n in self._names])
        coords = list(coords)
        if len(coords) != len(self._names):
            raise RuntimeError(f"the scorer returned {len(coords)} coordinates for "
                               f"{len(self._names)} layers")
        return _scores_array(coords)

    # ---- main loop -------------------------------------------------------------------------------
    def run(self) -> SamplerResult:
        """Run the sampler; see the class docstring.  Collective under torchrun (all ranks call)."""
        t_start = time.perf_counter()
        rank, world = dist_info(self.group)
        self.prepare()
        timings = {"prepare_s": time.perf_counter() - t_start, "generate_s": 0.0, "score_s": 0.0,
                   "select_s": 0.0, "comm_s": 0.0, "baseline_s": 0.0}

        tb = time.perf_counter()
        if rank == 0 or world == 1 or self.baseline_masks is not None:
            base = self._baseline()
        else:
            base = None
        if world > 1 and self.baseline_masks is None:
            base = _broadcast_masks(base, src=0, group=self.group)
        timings["baseline_s"] = time.perf_counter() - tb
        self._names = list(base.keys())
        self._shapes = {n: tuple(base[n].shape) for n in self._names}
        self._counts = {n: int(base[n].count_nonzero()) for n in self._names}
        self._theta = {n: _parameter_by_name(self.model, n).detach().to("cpu")
                       for n in self._names}
        for n in self._names:
            if tuple(self._theta[n].shape) != self._shapes[n]:
                raise ValueError(f"mask {n!r} has shape {self._shapes[n]} but the weight has "
                                 f"{tuple(self._theta[n].shape)}")

        ts = time.perf_counter()
        base_scores = self._score(base)
        timings["baseline_score_s"] = time.perf_counter() - ts
        t_loop = time.perf_counter()

        best_masks = dict(base)
        best = base_scores.copy()
        sources = np.zeros(len(self._names), dtype=np.int64)
        history: List[Tuple[int, int]] = []
        snapshots: List[Snapshot] = []
        if rank == 0 and self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
        snapshots.append(self._snapshot(0, best_masks, best, sources, rank))
        changed_since_save = False

        bar = None
        if self.progress and rank == 0 and self.population:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.population, desc=f"sampling {self.method}", unit="cand",
                       leave=False)
        n_generated = 0
        t = 1
        while t <= self.population:
            end = min(self.population, (t - 1) // self.save_interval * self.save_interval
                      + self.save_interval)
            mine = [s for s in range(t, end + 1) if (s - 1) % world == rank]
            local_scores: List[Tuple[int, np.ndarray]] = []
            local_masks: Dict[int, Dict[str, "torch.Tensor"]] = {}
            for s in mine:
                tg = time.perf_counter()
                cand = self._candidate(s)
                if set(cand.keys()) != set(self._names):
                    raise RuntimeError(f"candidate {s} has layers {sorted(cand)} but the baseline "
                                       f"has {sorted(self._names)}")
                if self.budget == "preserve":
                    cand = self._preserve_budget(cand, s)
                timings["generate_s"] += time.perf_counter() - tg
                ts = time.perf_counter()
                sc = self._score(cand)
                timings["score_s"] += time.perf_counter() - ts
                n_generated += 1
                if world == 1:
                    # online replay: identical to the batched replay, keeps one candidate alive
                    tsel = time.perf_counter()
                    best, new_sources, hist = replay(best, sources, [(s, sc)], self.rule)
                    for j in np.flatnonzero(new_sources != sources):
                        # clone: a candidate's layers may be views of one flat tensor
                        best_masks[self._names[j]] = cand[self._names[j]].clone()
                    sources = new_sources
                    history.extend(hist)
                    changed_since_save |= bool(hist)
                    timings["select_s"] += time.perf_counter() - tsel
                else:
                    local_scores.append((s, sc))
                    local_masks[s] = cand
                if bar is not None:
                    bar.update(world)
            if world > 1:
                tc = time.perf_counter()
                gathered = _all_gather(local_scores, self.group)
                timings["comm_s"] += time.perf_counter() - tc
                tsel = time.perf_counter()
                all_scores = [item for part in gathered for item in part]
                best, new_sources, hist = replay(best, sources, all_scores, self.rule)
                timings["select_s"] += time.perf_counter() - tsel
                tc = time.perf_counter()
                for j in np.flatnonzero(new_sources != sources):
                    name, owner_t = self._names[j], int(new_sources[j])
                    owner = (owner_t - 1) % world
                    tensor = local_masks[owner_t][name] if owner == rank else None
                    best_masks[name] = _broadcast_tensor(tensor, self._shapes[name], src=owner,
                                                         group=self.group)
                timings["comm_s"] += time.perf_counter() - tc
                sources = new_sources
                history.extend(hist)
                changed_since_save |= bool(hist)
            if (end % self.save_interval == 0 or end == self.population) and changed_since_save:
                snapshots.append(self._snapshot(end, best_masks, best, sources, rank))
                changed_since_save = False
            t = end + 1
        if bar is not None:
            bar.close()

        loop = time.perf_counter() - t_loop
        total = time.perf_counter() - t_start
        gen_score = timings["generate_s"] + timings["score_s"]
        timings.update({
            "loop_s": loop,
            "total_s": total,
            "candidates": float(self.population),
            "candidates_local": float(n_generated),
            "candidates_per_s": self.population / loop if loop > 0 and self.population else 0.0,
            "metrics_fraction": timings["score_s"] / gen_score if gen_score > 0 else float("nan"),
            "world_size": float(world),
        })
        names = self._names
        return SamplerResult(
            masks={n: best_masks[n] for n in names},
            baseline={n: base[n] for n in names},
            scores={n: _layer_score(best[j]) for j, n in enumerate(names)},
            baseline_scores={n: _layer_score(base_scores[j]) for j, n in enumerate(names)},
            sources={n: int(sources[j]) for j, n in enumerate(names)},
            history=history,
            snapshots=snapshots,
            target_density=self.density,
            realised_density=realised_density(best_masks),
            baseline_density=realised_density(base),
            layer_density={n: float(best_masks[n].float().mean()) for n in names},
            timings=timings,
            config=self.config(),
        )

    def _snapshot(self, t: int, masks: Mapping[str, "torch.Tensor"], scores: np.ndarray,
                  sources: np.ndarray, rank: int) -> Snapshot:
        dens = realised_density(masks)
        mean_norm = float(np.mean(scores[:, _IDX_NORM])) if len(scores) else float("nan")
        path = None
        if self.save_dir is not None and rank == 0:
            path = str(self.save_dir / f"mask_{t}.pt")
            meta = {"method": f"fullspectrum-{self.method}", "seed": self.seed,
                    "density": self.density, "sampler": self.config(), "t": t,
                    "realised_density": dens,
                    "target_density": self.density, "mean_norm": mean_norm,
                    "layers": {n: {**_layer_score(scores[j]).to_dict(),
                                   "source": int(sources[j]),
                                   "density": float(masks[n].float().mean())}
                               for j, n in enumerate(self._names)}}
            _save_masks(path, {n: masks[n] for n in self._names}, meta)
        kept = {n: masks[n].clone() for n in self._names} if self.keep_snapshots else None
        return Snapshot(t=t, mean_norm=mean_norm, density=dens, path=path, masks=kept)


def _layer_score(row: np.ndarray) -> LayerScore:
    vec = tuple(float(x) for x in row[:4])
    return LayerScore(vector=vec, norm=float(row[4]))  # type: ignore[arg-type]


def _take(data, n: int):
    out = []
    for i, b in enumerate(data):
        if i >= n:
            break
        out.append(b)
    return out


def _save_masks(path: str, masks: Mapping[str, "torch.Tensor"], meta: Mapping[str, Any]) -> None:
    try:
        from .masks import save_masks
    except ImportError:  # pragma: no cover - fspai.masks missing: plain torch.save fallback
        torch.save({"masks": dict(masks), "meta": dict(meta)}, path)
        return
    save_masks(path, masks, meta=dict(meta))


def _rescale_layer(mask: "torch.Tensor", saliency: "torch.Tensor", k: int) -> "torch.Tensor":
    """Top-k of a layer, the candidate's own edges first, then by saliency (ties by position)."""
    flat_m = mask.reshape(-1)
    flat_s = saliency.reshape(-1).to(torch.float64)
    flat_s = torch.nan_to_num(flat_s, nan=-math.inf)
    # the candidate's edges rank above every other edge: sort by (in mask, saliency, -position)
    order = np.lexsort((-np.arange(flat_m.numel()), flat_s.numpy(), flat_m.numpy().astype(np.int8)))
    keep = order[::-1][:k]
    out = torch.zeros(flat_m.numel(), dtype=torch.bool)
    out[torch.from_numpy(keep.copy())] = True
    return out.reshape(mask.shape)


def _saliency_scores(model: "torch.nn.Module", names: Sequence[str], method: str, data,
                     device=None) -> Dict[str, "torch.Tensor"]:
    """Single-shot saliency of the base method (used only to rank edges in budget mode)."""
    params = {n: _parameter_by_name(model, n) for n in names}
    if method == "magnitude":
        return {n: p.detach().abs() for n, p in params.items()}
    dev = device if device is not None else next(model.parameters()).device
    model = model.to(dev)
    model.eval()  # as fspai.pai scores
    plist = list(params.values())
    if method in ("snip", "itersnip", "grasp"):
        loss_fn = torch.nn.functional.cross_entropy
        if method == "grasp":
            # fspai.pai's GraSP: logits / 200; g = ∇L (no graph), Hg = ∇(g·∇L); keep-score θ ⊙ Hg
            temp = 200.0
            grads = [torch.zeros_like(p) for p in plist]
            for x, y in data:
                x, y = x.to(dev), y.to(dev)
                g = torch.autograd.grad(loss_fn(model(x) / temp, y), plist, allow_unused=True)
                for acc_i, gi in zip(grads, g):
                    if gi is not None:
                        acc_i += gi.detach()
            hg = [torch.zeros_like(p) for p in plist]
            for x, y in data:
                x, y = x.to(dev), y.to(dev)
                g = torch.autograd.grad(loss_fn(model(x) / temp, y), plist, create_graph=True,
                                        allow_unused=True)
                z = sum((gi * gs).sum() for gi, gs in zip(g, grads) if gi is not None)
                if isinstance(z, torch.Tensor) and z.requires_grad:
                    h = torch.autograd.grad(z, plist, allow_unused=True)
                    for acc_i, hi in zip(hg, h):
                        if hi is not None:
                            acc_i += hi.detach()
            return {n: p.detach() * h for (n, p), h in zip(params.items(), hg)}
        acc = [torch.zeros_like(p) for p in plist]
        for x, y in data:
            x, y = x.to(dev), y.to(dev)
            g = torch.autograd.grad(loss_fn(model(x), y), plist, allow_unused=True)
            for acc_i, gi in zip(acc, g):
                if gi is not None:
                    acc_i += gi.detach()
        return {n: (p.detach() * a).abs() for (n, p), a in zip(params.items(), acc)}
    if method == "synflow":
        # single-shot SynFlow on the (already copied) model: |θ ⊙ ∂R/∂θ|, R = 1ᵀ f(1; |θ|)
        shape = getattr(model, "input_shape", None)
        if shape is None and data:
            shape = tuple(data[0][0].shape[1:])
        if shape is None:
            raise ValueError("SynFlow saliency needs the input shape (model.input_shape or data)")
        model.double()
        with torch.no_grad():
            for p in model.state_dict().values():
                if p.is_floating_point():
                    p.abs_()
        params = {n: _parameter_by_name(model, n) for n in names}
        ones = torch.ones((1,) + tuple(shape), device=dev, dtype=torch.float64)
        g = torch.autograd.grad(model(ones).sum(), list(params.values()), allow_unused=True)
        return {n: (p.detach() * gi).abs() if gi is not None else torch.zeros_like(p)
                for (n, p), gi in zip(params.items(), g)}
    raise ValueError(f"no saliency for method {method!r}")


# --------------------------------------------------------------------------------------------
# collectives (gloo-friendly; only called when world_size > 1)
# --------------------------------------------------------------------------------------------

def _all_gather(obj: Any, group=None) -> List[Any]:
    import torch.distributed as dist
    out: List[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(out, obj, group=group)
    return out


def _broadcast_tensor(tensor: Optional["torch.Tensor"], shape, *, src: int, group=None):
    import torch.distributed as dist
    buf = (tensor.to(torch.uint8).contiguous() if tensor is not None
           else torch.empty(shape, dtype=torch.uint8))
    if group is not None:
        src = dist.get_global_rank(group, src)
    dist.broadcast(buf, src=src, group=group)
    return buf.bool()


def _broadcast_masks(masks: Optional[Mapping[str, "torch.Tensor"]], *, src: int, group=None):
    import torch.distributed as dist
    meta = [[(k, tuple(v.shape)) for k, v in masks.items()] if masks is not None else None]
    dist.broadcast_object_list(meta, src=src if group is None else dist.get_global_rank(group, src),
                               group=group)
    out = {}
    for name, shape in meta[0]:
        out[name] = _broadcast_tensor(masks[name] if masks is not None else None, shape, src=src,
                                      group=group)
    return out


def _broadcast_module(model: "torch.nn.Module", *, src: int, group=None) -> None:
    import torch.distributed as dist
    if group is not None:
        src = dist.get_global_rank(group, src)
    with torch.no_grad():
        for tensor in list(model.state_dict().values()):
            if tensor.device.type == "cpu" or dist.get_backend(group) != "gloo":
                dist.broadcast(tensor, src=src, group=group)
            else:  # gloo cannot broadcast CUDA tensors
                buf = tensor.cpu()
                dist.broadcast(buf, src=src, group=group)
                tensor.copy_(buf)
