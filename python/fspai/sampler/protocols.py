"""The two sampler protocols as data: ``released`` (what the authors' released pipeline does)
and ``fspai`` (this library's defaults).  This module is the one owner of the settings that
separate them; everything else (acceptance rules, scorers, selection) is shared code that reads
a :class:`Protocol`.

=====================  ===================================  ====================================
setting                ``released``                          ``fspai``
=====================  ===================================  ====================================
θ*                     seed-0 dense pre-training (500 SGD    per-seed θ* (pre-trained or init)
                       steps) shared by every seed
population / K         2000 / 10                             100 / 10
SynFlow/iterSNIP       10 rounds                             library default
rounds
iterSNIP batches       fresh batches in every round          the candidate's batches, every round
weight noise           SynFlow, iterSNIP                     SynFlow, iterSNIP, magnitude
budget                 keep scores strictly above the        exactly ``round(D·N)``; ERK with
                       k-th largest (k = ⌊D·N⌋); ERK by      exact per-layer counts
                       independent Bernoulli draws
undefined Δr under     +inf (never taken, always replaced)   0 (the coordinate's value)
``layer-alt``
comparisons            float32                               float64
last candidate         closes a snapshot only on the K grid  always closes a snapshot
readout                every snapshot trained; chosen on a validation split held out from the
                       training data (both protocols; the released best-by-test is reported
                       alongside, labelled)
=====================  ===================================  ====================================

Randomness is per candidate in both (every stream of candidate ``t`` derives from
``(seed, t)``), which is what makes a sharded run identical to a single-process one; the
released code draws from one global stream instead.
"""
from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import FrozenSet, Mapping, Optional, Union

import numpy as np

__all__ = ["Protocol", "PROTOCOLS", "PROTOCOL_NAMES", "get_protocol"]


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Settings of one sampler protocol (the table in :mod:`fspai.sampler.protocols`).

    theta: ``"shared-seed0"`` (one pre-trained θ* from seed 0 for every seed) or ``"per-seed"``.
    pretrain_steps: dense SGD steps for a pre-trained θ*.
    population, save_interval: the sampler's defaults (explicit options override them).
    rounds: SynFlow / iterative-SNIP rounds (None = the library default of ``fspai.pai.prune``).
    fresh_batches_per_round: iterative SNIP draws new mini-batches in every round.
    noise_methods: base methods whose candidates are scored on noised weights.
    budget: ``"above-kth"`` or ``"exact"`` (see :mod:`fspai.selection`).
    invalid_delta_r: the value an undefined full-graph Δr takes in the ``layer-alt`` rule.
    dtype: precision of the per-layer values the rule compares.
    snapshot_at_end: the last candidate closes a snapshot even off the K grid.
    """

    name: str
    theta: str
    pretrain_steps: int
    population: int
    save_interval: int
    rounds: Optional[int]
    fresh_batches_per_round: bool
    noise_methods: FrozenSet[str]
    budget: str
    invalid_delta_r: float
    dtype: type
    snapshot_at_end: bool

    def rule_values(self, scores: np.ndarray) -> np.ndarray:
        """(L, 5) score rows ``(delta_r, weighted_gap, imdb, weighted_imdb, norm)`` as the rule
        compares them: an undefined (NaN) Δr becomes ``invalid_delta_r``, every other non-finite
        value -inf (it never wins a comparison), then the rows are rounded to ``dtype``."""
        a = np.array(scores, dtype=np.float64, copy=True)
        if a.ndim != 2 or a.shape[1] != 5:
            raise ValueError(f"score rows must be (layers, 5), got shape {a.shape}")
        dr = a[:, 0]
        dr[np.isnan(dr)] = self.invalid_delta_r
        rest = a[:, 1:]
        rest[~np.isfinite(rest)] = -np.inf
        return a.astype(self.dtype)


_RELEASED = Protocol(
    name="released", theta="shared-seed0", pretrain_steps=500, population=2000,
    save_interval=10, rounds=10, fresh_batches_per_round=True,
    noise_methods=frozenset({"synflow", "itersnip"}), budget="above-kth",
    invalid_delta_r=math.inf, dtype=np.float32, snapshot_at_end=False)

_FSPAI = Protocol(
    name="fspai", theta="per-seed", pretrain_steps=500, population=100, save_interval=10,
    rounds=None, fresh_batches_per_round=False,
    noise_methods=frozenset({"synflow", "itersnip", "magnitude"}), budget="exact",
    invalid_delta_r=0.0, dtype=np.float64, snapshot_at_end=True)

#: The protocols by name (read-only).
PROTOCOLS: Mapping[str, Protocol] = MappingProxyType({p.name: p for p in (_RELEASED, _FSPAI)})
#: Their names, in documentation order.
PROTOCOL_NAMES = tuple(PROTOCOLS)


def get_protocol(protocol: Union[str, Protocol]) -> Protocol:
    """A :class:`Protocol` from its name (or itself); ``ValueError`` for an unknown name."""
    if isinstance(protocol, Protocol):
        return protocol
    try:
        return PROTOCOLS[protocol]
    except (KeyError, TypeError):
        raise ValueError(f"unknown sampler protocol {protocol!r}; choose one of "
                         f"{', '.join(PROTOCOL_NAMES)}") from None
