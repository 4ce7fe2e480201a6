"""The Full-Spectrum sampler: :class:`FullSpectrumSampler`, its options and its results.

Candidates come from :mod:`fspai.sampler.candidates` (the library's own pruning, scoring and
selection), the acceptance rule from :mod:`fspai.sampler.rules`, the metrics from
:func:`fspai.coordinates`, θ* from :mod:`fspai.weights` and the collectives from
:mod:`fspai.distributed`.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from .._typed import as_dict, build, check_fields
from .._vocab import DATA_METHODS, check_density, check_method, check_scope
from ..distributed import (all_gather_float64, broadcast_bool, broadcast_masks,
                           broadcast_module, dist_info)
from ..masks import prunable_parameters, realised_density, save_masks
from ..metrics import Coordinate, coordinates
from ..weights import prepare_weights
from .candidates import CandidateMaker
from ..metrics import ramanujan_gap
from .protocols import get_protocol
from .rules import BUDGETS, RULES, LayerScore, layer_score, replay, scores_array

__all__ = ["FullSpectrumSampler", "SamplerConfig", "SamplerResult", "Snapshot"]

log = logging.getLogger("fspai.sampler")

_IDX_NORM = len(Coordinate.AXES)     # score rows: the Coordinate axes, then the norm
Masks = Dict[str, torch.Tensor]


@dataclass(frozen=True)
class SamplerConfig:
    """The sampler's options (see :class:`FullSpectrumSampler` for each)."""

    population: Optional[int] = None
    save_interval: Optional[int] = None
    seed: int = 0
    rule: str = "layer"
    budget: str = "free"
    weights: Any = "init"
    pretrain_steps: int = 500
    candidate_batches: int = 4
    baseline_batches: Optional[int] = None
    noise: float = 1.0
    scope: str = "global"
    convention: str = "neurips23"
    save_dir: Optional[Union[str, os.PathLike]] = None
    keep_snapshots: bool = False
    prune_options: Optional[Mapping[str, Any]] = None
    device: Any = None
    progress: bool = False
    protocol: str = "fspai"
    sync_every: int = 100

    def __post_init__(self):
        check_fields(self, "sampler")
        get_protocol(self.protocol)              # ValueError for an unknown name
        for key, low in (("population", 0), ("save_interval", 1), ("candidate_batches", 1),
                         ("pretrain_steps", 0), ("sync_every", 1)):
            if getattr(self, key) is not None and getattr(self, key) < low:
                raise ValueError(f"{key} must be >= {low}, got {getattr(self, key)}")
        if self.baseline_batches is not None and self.baseline_batches < 1:
            raise ValueError(f"baseline_batches must be >= 1, got {self.baseline_batches}")
        if self.rule not in RULES:
            raise ValueError(f"unknown acceptance rule {self.rule!r}; choose one of "
                             f"{', '.join(RULES)}")
        if self.budget not in BUDGETS:
            raise ValueError(f"unknown budget mode {self.budget!r}; choose one of "
                             f"{', '.join(BUDGETS)}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        check_scope(self.scope)



@dataclass
class Snapshot:
    """A saved composite: after candidate ``t`` (0 = the baseline)."""

    t: int
    mean_norm: float
    density: float
    path: Optional[str] = None
    masks: Optional[Dict[str, torch.Tensor]] = None

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

    masks: Dict[str, torch.Tensor]
    baseline: Dict[str, torch.Tensor]
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



class FullSpectrumSampler:
    """Full-Spectrum PaI sampler (NeurIPS 2023, see :mod:`fspai.sampler`).

    ``model``, ``method``, ``density``, ``data`` and the hooks (``baseline``, ``scorer``,
    ``generator``, ``group``) are arguments; every other option is a field of
    :class:`SamplerConfig`, given as ``config=`` and/or keywords (unknown names raise
    ``TypeError``), and is read back as ``sampler.cfg``.

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
    protocol : ``"fspai"`` | ``"released"``
        The settings that separate fspai's sampler from the authors' released pipeline
        (:mod:`fspai.sampler.protocols`): default population/K, SynFlow/iterSNIP rounds, fresh
        iterSNIP batches per round, which methods get weight noise, the budget rule, how the
        ``layer-alt`` rule sees an undefined Δr, float32 vs float64 comparisons, snapshots.
    population : int
        Number of candidates N (default: the protocol's, 100 | 2000; the released scripts use
        2000–3000 on CIFAR).
    save_interval : int
        K (default: the protocol's, 10): every K candidates the composite is saved (if it
        changed) and, under torchrun, the
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
    sync_every : int
        Under torchrun, the ranks exchange the candidates' scores (one float64 tensor) every
        ``sync_every`` candidates, rounded up to a multiple of K (default 100); the rule is then
        replayed K candidates at a time, so snapshots and results do not depend on it.  Each
        rank holds its candidates' masks until the exchange (memory: ``sync_every / world``
        masks per rank).
    keep_snapshots : bool
        Also keep every saved composite's masks in memory (``SamplerResult.snapshots``).
    scorer : callable, optional
        ``scorer(masks: list, weights: list) -> list[Coordinate]``; default
        ``fspai.coordinates(..., convention=convention)``.
    generator : callable, optional
        ``generator(t) -> dict[str, BoolTensor]``: replaces candidate generation (tests, custom
        proposals).  Must be deterministic in ``t``.
    prune_options : dict, optional
        Extra keyword arguments for :func:`fspai.pai.prune` (also the scorer options used to
        rank edges with ``budget="preserve"``).
    group : a ``torch.distributed`` process group (default: the default group).
    """

    def __init__(self, model: nn.Module, method: str = "snip", density: float = 0.01, *,
                 data: Any = None, baseline: Optional[Mapping[str, torch.Tensor]] = None,
                 scorer: Optional[Callable[[list, list], list]] = None,
                 generator: Optional[Callable[[int], Mapping[str, torch.Tensor]]] = None,
                 group: Any = None, config: Optional[SamplerConfig] = None, **options: Any):
        self.method = check_method(method)
        self.density = check_density(density)
        cfg = config or SamplerConfig()
        cfg = build(SamplerConfig, {**as_dict(cfg), **options}, "sampler") if options else cfg
        proto = get_protocol(cfg.protocol)       # population / K left unset: the protocol's
        self.cfg = replace(cfg, **{k: getattr(proto, k) for k in ("population", "save_interval")
                                   if getattr(cfg, k) is None})
        data = getattr(data, "train_loader", data)   # a fspai.data.DataBundle is fine too
        if generator is None and self.method in DATA_METHODS and data is None:
            raise ValueError(f"method {self.method!r} needs training data (data=...)")
        self.model, self.data, self.group = model, data, group
        self.baseline_masks = None if baseline is None else {k: v.detach().cpu().bool()
                                                             for k, v in baseline.items()}
        self.save_dir = None if self.cfg.save_dir is None else Path(self.cfg.save_dir)
        c = self.cfg
        self.maker = CandidateMaker(model, self.method, self.density, data=data, seed=c.seed,
                                    scope=c.scope, prune_options=c.prune_options,
                                    candidate_batches=c.candidate_batches,
                                    baseline_batches=c.baseline_batches, noise=c.noise,
                                    device=c.device, generator=generator,
                                    protocol=c.protocol)
        self.scorer = scorer or (lambda m, w: coordinates(m, w, convention=c.convention))
        self._weights_ready = False

    def config(self) -> Dict[str, Any]:
        """The options as JSON data (``weights`` as its name or path)."""
        out = {"method": self.method, "density": self.density, **as_dict(self.cfg)}
        w = out["weights"]
        out["weights"] = "state_dict" if isinstance(w, Mapping) else (None if w is None
                                                                     else str(w))
        out["save_dir"] = None if out["save_dir"] is None else str(out["save_dir"])
        out["prune_options"] = {k: v for k, v in dict(out["prune_options"] or {}).items()
                                if isinstance(v, (str, int, float, bool, list, tuple))}
        out["device"] = None if out["device"] is None else str(out["device"])
        return out

    def prepare(self) -> nn.Module:
        """Put θ* into the model (once). Every rank computes θ* the same way (no collectives
        inside); rank 0's copy is then broadcast so all ranks hold bit-identical weights."""
        if self._weights_ready:
            return self.model
        c = self.cfg
        prepare_weights(self.model, c.weights, data=self.data, steps=c.pretrain_steps,
                        seed=c.seed, device=c.device)
        if dist_info(self.group)[1] > 1:
            broadcast_module(self.model, src=0, group=self.group)
        self._weights_ready = True
        return self.model

    def _score(self, masks: Mapping[str, torch.Tensor]) -> np.ndarray:
        coords = list(self.scorer([masks[n] for n in self._names],
                                  [self._theta[n] for n in self._names]))
        if len(coords) != len(self._names):
            raise RuntimeError(f"the scorer returned {len(coords)} coordinates for "
                               f"{len(self._names)} layers")
        rows = scores_array(coords)
        if self.cfg.rule == "layer-alt" and get_protocol(self.cfg.protocol).invalid_delta_r != 0:
            self._mark_undefined_delta_r(masks, rows)
        return rows

    def _mark_undefined_delta_r(self, masks: Mapping[str, torch.Tensor],
                                rows: np.ndarray) -> None:
        """Set the raw full-graph Δr to NaN where it is undefined (the layer fails its degree
        test), as the ``layer-alt`` rule of a protocol that does not map it to 0 needs it.  The
        coordinate reports such a Δr as 0, so only layers whose coordinate Δr is exactly 0 are
        asked (:func:`fspai.ramanujan_gap`'s ``valid`` decides, under the run's convention)."""
        for j in np.flatnonzero(rows[:, 0] == 0.0):
            gap = ramanujan_gap(masks[self._names[j]], convention=self.cfg.convention)
            if not gap.valid:
                rows[j, 0] = np.nan

    # ---- run ----------------------------------------------------------------------------------
    def _start(self, timings: Dict[str, float]) -> Masks:
        """θ*, the baseline m0 (broadcast from rank 0) and the layer bookkeeping."""
        rank, world = dist_info(self.group)
        self.prepare()
        tb = time.perf_counter()
        base = self.baseline_masks
        if base is None:
            base = self.maker.baseline() if rank == 0 or world == 1 else None
            if world > 1:
                base = broadcast_masks(base, src=0, group=self.group)
        timings["baseline_s"] = time.perf_counter() - tb
        self.maker.bind(base)
        self._names = list(base)
        self._shapes = {n: tuple(base[n].shape) for n in self._names}
        self._counts = {n: int(base[n].count_nonzero()) for n in self._names}
        params = prunable_parameters(self.model)
        missing = [n for n in self._names if n not in params]
        if missing:
            raise KeyError(f"the model has no prunable parameter for masks {missing}")
        self._theta = {n: params[n].detach().to("cpu") for n in self._names}
        for n in self._names:
            if tuple(self._theta[n].shape) != self._shapes[n]:
                raise ValueError(f"mask {n!r} has shape {self._shapes[n]} but the weight has "
                                 f"{tuple(self._theta[n].shape)}")
        return base

    def _make(self, s: int, timings: Dict[str, float]) -> Tuple[Masks, np.ndarray]:
        tg = time.perf_counter()
        cand = self.maker.candidate(s)
        if set(cand) != set(self._names):
            raise RuntimeError(f"candidate {s} has layers {sorted(cand)} but the baseline has "
                               f"{sorted(self._names)}")
        if self.cfg.budget == "preserve":
            cand = self.maker.preserve_budget(cand, s, self._counts)
        timings["generate_s"] += time.perf_counter() - tg
        ts = time.perf_counter()
        sc = self._score(cand)
        timings["score_s"] += time.perf_counter() - ts
        return cand, sc

    def _round(self, st: "_RunState", t: int, end: int
               ) -> Tuple[List[Tuple[int, np.ndarray]], Dict[int, Masks]]:
        """Candidates ``t..end`` (this rank's share).  One process: each is accepted online.
        Under torchrun: the scores of all ranks, gathered as one float64 tensor (candidate
        ``s`` lives on rank ``(s - 1) % world``, so the indices need not travel), and this
        rank's candidate masks; the caller replays the rule in order."""
        rank, world = dist_info(self.group)
        local: List[Tuple[int, np.ndarray]] = []
        local_masks: Dict[int, Masks] = {}
        for s in range(t, end + 1):
            if (s - 1) % world != rank:
                continue
            cand, sc = self._make(s, st.timings)
            st.generated += 1
            if world == 1:      # online replay: identical to the batched one, one candidate alive
                self._accept(st, [(s, sc)], {s: cand})
            else:
                local.append((s, sc))
                local_masks[s] = cand
            if st.bar is not None:
                st.bar.update(world)
        if world == 1:
            return [], {}
        tc = time.perf_counter()
        per_rank = -(-(end - t + 1) // world)          # ceil: the most any rank made
        buf = torch.full((per_rank, len(self._names), 5), float("nan"), dtype=torch.float64)
        for i, (_, sc) in enumerate(local):
            buf[i] = torch.from_numpy(np.asarray(sc, dtype=np.float64))
        parts = all_gather_float64(buf, self.group)
        st.timings["comm_s"] += time.perf_counter() - tc
        scored = []
        for r, part in enumerate(parts):
            ts = [s for s in range(t, end + 1) if (s - 1) % world == r]
            scored += [(s, part[i].numpy()) for i, s in enumerate(ts)]
        return scored, local_masks

    def _accept(self, st: "_RunState", scored: List[Tuple[int, np.ndarray]],
                local_masks: Mapping[int, Masks]) -> None:
        rank, world = dist_info(self.group)
        tsel = time.perf_counter()
        best, sources, hist = replay(st.best, st.sources, scored, self.cfg.rule,
                                     self.cfg.protocol)
        for j in np.flatnonzero(sources != st.sources):
            name, owner_t = self._names[j], int(sources[j])
            owner = (owner_t - 1) % world
            if world == 1:   # clone: a candidate's layers may be views of one flat tensor
                st.masks[name] = local_masks[owner_t][name].clone()
            else:
                tensor = local_masks[owner_t][name] if owner == rank else None
                st.masks[name] = broadcast_bool(tensor, self._shapes[name], src=owner,
                                                group=self.group)
        st.best, st.sources = best, sources
        st.history.extend(hist)
        st.changed |= bool(hist)
        st.timings["select_s"] += time.perf_counter() - tsel

    def run(self) -> SamplerResult:
        """Run the sampler; see the class docstring.  Collective under torchrun (all ranks call)."""
        t_start = time.perf_counter()
        rank, world = dist_info(self.group)
        timings = {"generate_s": 0.0, "score_s": 0.0, "select_s": 0.0, "comm_s": 0.0}
        base = self._start(timings)
        timings["prepare_s"] = time.perf_counter() - t_start - timings["baseline_s"]
        ts = time.perf_counter()
        base_scores = self._score(base)
        timings["baseline_score_s"] = time.perf_counter() - ts
        st = _RunState(dict(base), base_scores.copy(), np.zeros(len(self._names), np.int64),
                       timings)
        if rank == 0 and self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
        st.snapshots.append(self._snapshot(0, st, rank))
        st.bar = self._progress_bar(rank)
        t_loop, t, k = time.perf_counter(), 1, self.cfg.save_interval
        # ranks synchronise every `span` candidates (a multiple of K); one process: every K
        span = k if world == 1 else k * max(1, -(-self.cfg.sync_every // k))
        at_end_snap = get_protocol(self.cfg.protocol).snapshot_at_end
        while t <= self.cfg.population:
            end = min(self.cfg.population, (t - 1) // span * span + span)
            scored, local_masks = self._round(st, t, end)
            for c0 in range(t, end + 1, k):             # the K grid inside the synced window
                c1 = min(end, c0 + k - 1)
                if world > 1:
                    self._accept(st, [it for it in scored if c0 <= it[0] <= c1], local_masks)
                at_end = c1 == self.cfg.population and at_end_snap
                if (c1 % k == 0 or at_end) and st.changed:
                    st.snapshots.append(self._snapshot(c1, st, rank))
                    st.changed = False
            t = end + 1
        if st.bar is not None:
            st.bar.close()
        return self._result(base, base_scores, st, time.perf_counter() - t_loop,
                            time.perf_counter() - t_start, world)

    def _progress_bar(self, rank: int):
        if not (self.cfg.progress and rank == 0 and self.cfg.population):
            return None
        from tqdm.auto import tqdm
        return tqdm(total=self.cfg.population, desc=f"sampling {self.method}", unit="cand",
                    leave=False)

    def _result(self, base: Masks, base_scores: np.ndarray, st: "_RunState", loop: float,
                total: float, world: int) -> SamplerResult:
        tm = st.timings
        gen_score = tm["generate_s"] + tm["score_s"]
        pop = self.cfg.population
        tm.update({"loop_s": loop, "total_s": total, "candidates": float(pop),
                   "candidates_local": float(st.generated),
                   "candidates_per_s": pop / loop if loop > 0 and pop else 0.0,
                   "metrics_fraction": tm["score_s"] / gen_score if gen_score > 0
                   else float("nan"),
                   "world_size": float(world)})
        names = self._names
        return SamplerResult(
            masks={n: st.masks[n] for n in names}, baseline={n: base[n] for n in names},
            scores={n: layer_score(st.best[j]) for j, n in enumerate(names)},
            baseline_scores={n: layer_score(base_scores[j]) for j, n in enumerate(names)},
            sources={n: int(st.sources[j]) for j, n in enumerate(names)},
            history=st.history, snapshots=st.snapshots, target_density=self.density,
            realised_density=realised_density(st.masks), baseline_density=realised_density(base),
            layer_density={n: float(st.masks[n].float().mean()) for n in names},
            timings=tm, config=self.config())

    def _snapshot(self, t: int, st: "_RunState", rank: int) -> Snapshot:
        masks, scores = st.masks, st.best
        dens = realised_density(masks)
        mean_norm = float(np.mean(scores[:, _IDX_NORM])) if len(scores) else float("nan")
        path = None
        if self.save_dir is not None and rank == 0:
            path = str(self.save_dir / f"mask_{t}.pt")
            meta = {"method": f"fullspectrum-{self.method}", "seed": self.cfg.seed,
                    "density": self.density, "sampler": self.config(), "t": t,
                    "realised_density": dens, "target_density": self.density,
                    "mean_norm": mean_norm,
                    "layers": {n: {**layer_score(scores[j]).to_dict(),
                                   "source": int(st.sources[j]),
                                   "density": float(masks[n].float().mean())}
                               for j, n in enumerate(self._names)}}
            save_masks(path, {n: masks[n] for n in self._names}, meta=meta)
        kept = {n: masks[n].clone() for n in self._names} if self.cfg.keep_snapshots else None
        return Snapshot(t=t, mean_norm=mean_norm, density=dens, path=path, masks=kept)


@dataclass
class _RunState:
    masks: Masks
    best: np.ndarray
    sources: np.ndarray
    timings: Dict[str, float]
    history: List[Tuple[int, int]] = field(default_factory=list)
    snapshots: List[Snapshot] = field(default_factory=list)
    changed: bool = False
    generated: int = 0
    bar: Any = None
