"""The Full-Spectrum sampler's acceptance rules: pure functions on per-layer scores (numpy).

A layer's score row is ``(delta_r, weighted_gap, imdb, weighted_imdb, norm)`` -- the four axes
of :class:`fspai.Coordinate` (``Coordinate.AXES``) and its L2 norm. The rules:

* ``"layer"`` (the paper): accept layer j iff imdb and norm are both not lower;
* ``"layer-alt"`` (the released ``--alt`` switch): delta_r strictly lower and norm not lower;
* ``"network"``: all layers or none, iff the mean layer norm is strictly higher.

:func:`replay` applies a rule to candidates in increasing index order, which is what makes a
sharded run identical to a single-process one. :func:`candidate_seed` derives every random
stream of candidate ``t`` from ``(seed, t)`` alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import numpy as np

from ..metrics import Coordinate
from .protocols import Protocol, get_protocol

__all__ = ["RULES", "BUDGETS", "LayerScore", "accept_layers", "accept_network", "replay",
           "candidate_seed", "scores_array", "layer_score", "STREAM_PRUNE", "STREAM_BATCHES",
           "STREAM_NOISE", "STREAM_RANK", "STREAM_EPOCH"]

#: Acceptance rules: the paper's per-layer rule, its ``--alt`` variant, the whole-network rule.
RULES = ("layer", "layer-alt", "network")
#: ``free``: the released behaviour (density drifts); ``preserve``: baseline edge count per layer.
BUDGETS = ("free", "preserve")

# RNG streams derived from (seed, t): one independent stream per use.
STREAM_PRUNE, STREAM_BATCHES, STREAM_NOISE, STREAM_RANK, STREAM_EPOCH = 0, 1, 2, 3, 4


def candidate_seed(seed: int, t: int, stream: int = STREAM_PRUNE) -> int:
    """A 63-bit seed that depends only on ``(seed, t, stream)`` (numpy ``SeedSequence``)."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32, int(t), int(stream)])
    return int(ss.generate_state(1, np.uint64)[0] & np.uint64(0x7FFF_FFFF_FFFF_FFFF))



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


def scores_array(coords: Sequence[Any]) -> np.ndarray:
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
# columns of a score row: the Coordinate axes in their order, then the norm
_IDX_DELTA_R = Coordinate.AXES.index("delta_r")
_IDX_IMDB = Coordinate.AXES.index("imdb")
_IDX_NORM = len(Coordinate.AXES)


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
           rule: str = "layer", protocol: "str | Protocol" = "fspai"
           ) -> Tuple[np.ndarray, np.ndarray, List[Tuple[int, int]]]:
    """Apply the acceptance rule to candidates in increasing index order.

    ``best`` (L, 5) scores of the current composite, ``sources`` (L,) the candidate index each
    layer currently comes from (0 = baseline).  ``candidates`` yields ``(t, scores)``; they are
    sorted by ``t`` first, so the outcome does not depend on the order they arrive in (e.g. from
    which rank).  Score rows hold ``(delta_r, weighted_gap, imdb, weighted_imdb, norm)``; an
    undefined full-graph Δr is NaN.  ``protocol`` (:data:`fspai.sampler.PROTOCOLS`) decides how
    the rule sees them (:meth:`Protocol.rule_values`): ``fspai`` compares float64 values with an
    undefined Δr as 0, ``released`` float32 values with an undefined Δr as +inf.  Returns the new
    ``(best, sources, history)`` (``best`` as the rule saw it) where ``history`` lists
    ``(t, number of layers taken)`` for every candidate that changed something.
    """
    proto = get_protocol(protocol)
    best = np.asarray(proto.rule_values(best), dtype=np.float64)
    sources = np.array(sources, dtype=np.int64, copy=True)
    history: List[Tuple[int, int]] = []
    for t, sc in sorted(candidates, key=lambda item: item[0]):
        sc = np.asarray(proto.rule_values(sc), dtype=np.float64)
        acc = accept_layers(best, sc, rule)
        n = int(acc.sum())
        if n:
            best[acc] = sc[acc]
            sources[acc] = t
            history.append((int(t), n))
    return best, sources, history


def layer_score(row: np.ndarray) -> LayerScore:
    vec = tuple(float(x) for x in row[:4])
    return LayerScore(vector=vec, norm=float(row[4]))  # type: ignore[arg-type]

