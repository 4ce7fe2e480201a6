"""Candidate masks of the Full-Spectrum sampler, all made by the library's own pruning code.

A candidate is :func:`fspai.pai.prune` of the base method on a few mini-batches
(SNIP/GraSP/iterSNIP), on noised weights (SynFlow/iterSNIP/magnitude), or a fresh random draw
(:func:`fspai.selection.random_masks` for random/ERK). Budget-preserving trimming ranks edges by
the base method's saliency from :func:`fspai.scoring.score`. Everything random about candidate
``t`` comes from :func:`~fspai.sampler.rules.candidate_seed` streams of ``(seed, t)``.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np
import torch
import torch.nn as nn

from .._vocab import DATA_METHODS
from ..masks import prunable_parameters
from ..pai import PruneOptions, prune
from ..scoring import make_scorer, score
from ..selection import random_masks, topk_mask
from .protocols import PROTOCOLS, Protocol, get_protocol
from .rules import STREAM_BATCHES, STREAM_NOISE, STREAM_PRUNE, STREAM_RANK, candidate_seed

__all__ = ["CandidateMaker", "rescale_layer", "NOISE_METHODS", "FRESH_METHODS"]

#: candidates from noised weights (the ``fspai`` protocol's set; each protocol owns its own)
NOISE_METHODS = PROTOCOLS["fspai"].noise_methods
#: candidates that are fresh random draws
FRESH_METHODS = frozenset({"random", "erk"})

Masks = Dict[str, torch.Tensor]


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

    def batches(self, t: int, count: int, round_: int = 0) -> List[Any]:
        """``count`` batches of candidate ``t`` (``round_`` > 0: an independent draw for that
        scoring round)."""
        key = candidate_seed(self.seed, t, STREAM_BATCHES)
        rng = np.random.default_rng([key, round_] if round_ else key)
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


class _FreshBatches:
    """An iterable whose every pass yields new batches of candidate ``t`` (pass ``r`` is draw
    ``r`` of the candidate's batch stream): iterative SNIP iterates its data once per round, so
    each round sees fresh batches, as in the released code."""

    def __init__(self, source: _BatchSource, t: int, count: int):
        self.source, self.t, self.count, self.passes = source, t, count, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.source.batches(self.t, self.count, self.passes))


def _init_std(weight: torch.Tensor) -> float:
    """The released code's noise/init scale: conv N(0, sqrt(2 / (k·k·c_out))), linear 0.01."""
    if weight.dim() > 2:
        k = int(np.prod(weight.shape[2:]))
        return math.sqrt(2.0 / (k * weight.shape[0]))
    return 0.01


def _take(data, n: int):
    out = []
    for i, b in enumerate(data):
        if i >= n:
            break
        out.append(b)
    return out



def rescale_layer(mask: torch.Tensor, saliency: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` edges of a layer ranked first by (in ``mask``, saliency, lower position):
    trims the mask to its ``k`` most salient edges, or keeps it whole and adds the ``k - nnz``
    most salient other edges (NaN saliency ranks lowest). Selection by
    :func:`fspai.selection.topk_mask` on the relevant subset."""
    flat_m = mask.reshape(-1).bool().cpu()
    flat_s = torch.nan_to_num(saliency.reshape(-1).to(torch.float64).cpu(), nan=-math.inf)
    nnz = int(flat_m.sum())
    out = flat_m.clone() if k >= nnz else torch.zeros_like(flat_m)
    pool = (~flat_m if k > nnz else flat_m).nonzero().flatten()
    want = k - nnz if k > nnz else k
    out[pool[topk_mask(flat_s[pool], want)]] = True
    return out.reshape(mask.shape)


class CandidateMaker:
    """Makes the baseline m0 and candidate ``t`` for one sampler run (see the module docstring).

    ``names``/``shapes`` (the layers) are set by :meth:`bind` once the baseline is known.
    """

    def __init__(self, model: nn.Module, method: str, density: float, *, data: Any, seed: int,
                 scope: str, prune_options: Mapping[str, Any], candidate_batches: int,
                 baseline_batches: Optional[int], noise: float, device: Any,
                 generator: Optional[Callable[[int], Mapping[str, Any]]] = None,
                 protocol: "str | Protocol" = "fspai"):
        self.model, self.method, self.density, self.data = model, method, density, data
        self.seed, self.scope, self.noise, self.device = seed, scope, noise, device
        self.protocol = get_protocol(protocol)
        self.prune_options = dict(prune_options or {})
        if self.protocol.budget == "above-kth":
            self.prune_options.setdefault("keep_rule", "above-kth")
        if self.protocol.rounds is not None:
            self.prune_options.setdefault("rounds", self.protocol.rounds)
        self.options = PruneOptions.from_options(**self.prune_options)     # validated once
        self.candidate_batches, self.baseline_batches = candidate_batches, baseline_batches
        self.custom = generator
        self._scratch: Optional[nn.Module] = None  # reused noised copy of the model (_noised)
        self._batches: Optional[_BatchSource] = None
        self.names: List[str] = []
        self.shapes: Dict[str, tuple] = {}

    def bind(self, baseline: Masks) -> None:
        self.names = list(baseline)
        self.shapes = {n: tuple(baseline[n].shape) for n in self.names}

    def _prune(self, model: nn.Module, *, data: Any, seed: int) -> Masks:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            masks = prune(model, self.method, self.density, data=data, scope=self.scope,
                          seed=seed, **self.prune_options)
        return {k: v.detach().to("cpu").bool() for k, v in masks.items()}

    def baseline(self) -> Masks:
        """m0 = P(θ*, full data) (or ``baseline_batches`` mini-batches)."""
        data = None
        if self.method in DATA_METHODS:
            data = self.data if self.baseline_batches is None else \
                _take(self.data, self.baseline_batches)
        return self._prune(self.model, data=data, seed=candidate_seed(self.seed, 0))

    def candidate(self, t: int) -> Masks:
        """Candidate ``t`` (1-based); a deterministic function of (seed, t)."""
        if self.custom is not None:
            return {k: torch.as_tensor(v).detach().cpu().bool()
                    for k, v in self.custom(t).items()}
        pseed = candidate_seed(self.seed, t, STREAM_PRUNE)
        if self.method == "random" and not self.prune_options:
            return random_masks(self.shapes, self.density, seed=pseed, scope=self.scope)
        if self.method in FRESH_METHODS:
            return self._prune(self.model, data=None, seed=pseed)
        work = self._noised(t)
        data = self._candidate_batches(t) if self.method in DATA_METHODS else None
        return self._prune(work, data=data, seed=pseed)

    def _noised(self, t: int) -> nn.Module:
        """The model with candidate ``t``'s weight noise (a copy), or the model itself
        (``prune`` scores on its own copy and never modifies it)."""
        if self.method not in self.protocol.noise_methods or self.noise <= 0:
            return self.model
        # One scratch copy per run, reset to θ* before each candidate's noise (``prune`` never
        # modifies the model it is given, so only the noised parameters need resetting).
        if self._scratch is None:
            self._scratch = copy.deepcopy(self.model)
        work = self._scratch
        gen = torch.Generator(device="cpu")
        gen.manual_seed(candidate_seed(self.seed, t, STREAM_NOISE))
        params, theta = prunable_parameters(work), prunable_parameters(self.model)
        with torch.no_grad():
            for name in self.names:
                p = params[name]
                eps = torch.randn(p.shape, generator=gen, dtype=torch.float32) * (
                    self.noise * _init_std(p))
                p.copy_(theta[name])
                p.add_(eps.to(device=p.device, dtype=p.dtype))
        return work

    def _candidate_batches(self, t: int) -> Any:
        """Candidate ``t``'s mini-batches; under a protocol with fresh batches per round, an
        iterative method gets an iterable that draws new ones on every pass."""
        if self._batches is None:
            self._batches = _BatchSource(self.data, seed=self.seed)
        if self.protocol.fresh_batches_per_round and self.method == "itersnip":
            return _FreshBatches(self._batches, t, self.candidate_batches)
        return self._batches.batches(t, self.candidate_batches)

    def saliency(self, t: int) -> Masks:
        """Per-element saliency of the base method on candidate ``t``'s inputs (CPU float):
        :func:`fspai.scoring.score` with the base method's scorer and prune options, or a
        seeded uniform draw for random/ERK and custom generators."""
        if self.method in FRESH_METHODS or self.custom is not None:
            gen = torch.Generator(device="cpu")
            gen.manual_seed(candidate_seed(self.seed, t, STREAM_RANK))
            return {n: torch.rand(self.shapes[n], generator=gen) for n in self.names}
        o = self.options
        scorer = make_scorer(self.method, temperature=o.temperature, synflow_bias=o.synflow_bias,
                             input_shape=o.input_shape, loss_fn=o.loss_fn)
        data = self._candidate_batches(t) if self.method in DATA_METHODS else None
        scores = score(self._noised(t), scorer, data, device=self.device or o.device,
                       seed=candidate_seed(self.seed, t, STREAM_RANK))
        return {n: scores[n].float() for n in self.names}

    def preserve_budget(self, cand: Masks, t: int, counts: Mapping[str, int]) -> Masks:
        """Trim or top up every layer of ``cand`` to ``counts`` (the baseline's edge counts)."""
        need = [n for n in self.names if int(cand[n].count_nonzero()) != counts[n]]
        if not need:
            return cand
        sal = self.saliency(t)
        out = dict(cand)
        for n in need:
            out[n] = rescale_layer(cand[n], sal[n], counts[n])
        return out
