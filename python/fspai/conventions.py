"""Conventions as data: every rule that differs between the two papers' code, in one object.

A :class:`Convention` is a frozen dataclass of rules; the metric code reads its fields and never
branches on a convention's name, so a custom convention gets exactly its own rules::

    import dataclasses, fspai
    strict = dataclasses.replace(fspai.conventions.NEURIPS23, name="strict",
                                 layer_rule=fspai.conventions.DegreeRule(3, False, 3, False))
    fspai.ramanujan_gap(mask, convention=strict)

Presets (``PRESETS``; the full definitions are in ``docs/metrics.md``):

* ``"neurips23"`` (default) — the NeurIPS 2023 authors' working code (the ``Ramanujan`` class
  family of ScottHoang/dst-ram-pruning): layer validity ``d_out >= 3 and d_in > 1``; degree groups
  of at least 2 input nodes, valid if ``d >= 3 and d_out > 1``; Cheeger-like factor
  ``c = max(n_in, n_out) / (n_in + n_out - 1)``; IMDB 0 when no group is valid; weighted metrics
  defined, with the released weighted-validity rule (degree tests on the nonzero pattern of
  ``|W ⊙ M|``; a degree group that fails there makes the layer's weighted IMDB undefined).
* ``"neurips23-pattern"`` — ``neurips23`` with ``weighted_validity="pattern"``: the weighted
  metrics are defined exactly where their 0/1-mask counterparts are, whatever the weights.
* ``"iclr23"`` — the ICLR 2023 released code (VITA-Group/ramanujan-on-pai): layer validity
  ``d_in >= 3 and d_out >= 3``; groups of at least 3 input nodes, valid if ``d >= 3 and
  d_out >= 3``; plain mean of Δr; IMDB NaN when no group is valid; no weighted IMDB.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Union

__all__ = ["DegreeRule", "Convention", "PRESETS", "NEURIPS23", "NEURIPS23_PATTERN", "ICLR23",
           "WEIGHTED_VALIDITY", "get_convention"]

WEIGHTED_VALIDITY = ("released", "pattern")


@dataclasses.dataclass(frozen=True)
class DegreeRule:
    """``d_in >= d_in_min`` (``>`` when ``d_in_strict``) and the same for ``d_out``.

    ``d_in`` is the average degree of the input nodes (columns; for a degree group, its exact
    degree ``d``) and ``d_out`` that of the output nodes (rows), isolated nodes excluded.
    """

    d_in_min: float
    d_in_strict: bool
    d_out_min: float
    d_out_strict: bool

    def __post_init__(self):
        for field in ("d_in_min", "d_out_min"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"DegreeRule.{field} must be a number, got {v!r}")
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"DegreeRule.{field} must be a finite number >= 0, got {v!r}")
        for field in ("d_in_strict", "d_out_strict"):
            v = getattr(self, field)
            if not isinstance(v, bool) and type(v).__name__ != "bool_":  # numpy.bool_ too
                raise TypeError(f"DegreeRule.{field} must be True or False, got {v!r}")

    def core_rule(self) -> tuple:
        """``(d_min, d_strict, d_out_min, d_out_strict)``: this rule as data for the compiled core
        (``_core.layer_spectra(subgraph_rule=...)``), which evaluates it exactly as :meth:`holds`.
        The rule's numbers live here only; the core never holds a convention's thresholds."""
        return (float(self.d_in_min), bool(self.d_in_strict), float(self.d_out_min), bool(self.d_out_strict))

    def holds(self, d_in: float, d_out: float) -> bool:
        """False also when a degree is NaN (an empty graph)."""
        ok_in = d_in > self.d_in_min if self.d_in_strict else d_in >= self.d_in_min
        ok_out = d_out > self.d_out_min if self.d_out_strict else d_out >= self.d_out_min
        return bool(ok_in and ok_out)

    def describe(self, d_in: str = "d_in", d_out: str = "d_out") -> str:
        def part(sym, lo, strict):
            return f"{sym} {'>' if strict else '>='} {lo:g}"

        return f"{part(d_in, self.d_in_min, self.d_in_strict)} and {part(d_out, self.d_out_min, self.d_out_strict)}"


@dataclasses.dataclass(frozen=True)
class Convention:
    """The rules of one convention (see the module docstring and ``docs/metrics.md``).

    * ``layer_rule``: validity of the whole layer's gaps (Δr, Δs; and of the weighted gap).
    * ``subgraph_rule``: validity of a degree group (``d_in`` = the group's degree ``d``).
    * ``min_nodes``: smallest degree group (input nodes) that forms a subgraph.
    * ``cheeger``: weight each subgraph's value by ``max(n_in, n_out) / (n_in + n_out - 1)``.
    * ``imdb_if_none``: the IMDB when no subgraph is valid (0 or NaN).
    * ``weighted_imdb``: whether the convention defines the weighted IMDB.
    * ``weighted_validity``: ``"released"`` (degree tests of the weighted metrics on the nonzero
      pattern of ``|W ⊙ M|``, a failing degree group makes the layer's weighted IMDB undefined)
      or ``"pattern"`` (the weighted metrics are valid where the 0/1-mask metrics are).
    """

    name: str
    layer_rule: DegreeRule
    subgraph_rule: DegreeRule
    min_nodes: int
    cheeger: bool
    imdb_if_none: float
    weighted_imdb: bool
    weighted_validity: str = "released"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Convention.name must be a non-empty string, got {self.name!r}")
        for field in ("layer_rule", "subgraph_rule"):
            if not isinstance(getattr(self, field), DegreeRule):
                raise TypeError(f"Convention.{field} must be a DegreeRule, got {getattr(self, field)!r}")
        if isinstance(self.min_nodes, bool) or not isinstance(self.min_nodes, int) or not 1 <= self.min_nodes < 2**31:
            raise ValueError(f"Convention.min_nodes must be an int in 1..2^31-1, got {self.min_nodes!r}")
        if not (self.imdb_if_none == 0.0 or math.isnan(self.imdb_if_none)):
            raise ValueError(f"Convention.imdb_if_none must be 0.0 or NaN, got {self.imdb_if_none!r}")
        if self.weighted_validity not in WEIGHTED_VALIDITY:
            raise ValueError(f"Convention.weighted_validity must be one of {WEIGHTED_VALIDITY}, "
                             f"got {self.weighted_validity!r}")

    def full_valid(self, d_in: float, d_out: float) -> bool:
        return self.layer_rule.holds(d_in, d_out)

    def full_rule(self) -> str:
        return self.layer_rule.describe()

    def sub_valid(self, d: float, d_out: float) -> bool:
        return self.subgraph_rule.holds(d, d_out)

    def sub_rule(self) -> str:
        return self.subgraph_rule.describe("d", "d_out")

    def sub_factor(self, n_in: int, n_out: int) -> float:
        return max(n_in, n_out) / (n_in + n_out - 1) if self.cheeger else 1.0


NEURIPS23 = Convention("neurips23", layer_rule=DegreeRule(1, True, 3, False),
                       subgraph_rule=DegreeRule(3, False, 1, True), min_nodes=2, cheeger=True,
                       imdb_if_none=0.0, weighted_imdb=True, weighted_validity="released")
NEURIPS23_PATTERN = dataclasses.replace(NEURIPS23, name="neurips23-pattern", weighted_validity="pattern")
ICLR23 = Convention("iclr23", layer_rule=DegreeRule(3, False, 3, False),
                    subgraph_rule=DegreeRule(3, False, 3, False), min_nodes=3, cheeger=False,
                    imdb_if_none=math.nan, weighted_imdb=False, weighted_validity="pattern")

PRESETS = {c.name: c for c in (NEURIPS23, NEURIPS23_PATTERN, ICLR23)}


def get_convention(convention: Union[str, Convention]) -> Convention:
    """A preset by name, or ``convention`` itself when it is a :class:`Convention`."""
    if isinstance(convention, Convention):
        return convention
    if not isinstance(convention, str):
        raise TypeError(f"convention must be a preset name {sorted(PRESETS)} or a Convention, "
                        f"got {type(convention).__name__}")
    try:
        return PRESETS[convention]
    except KeyError:
        raise ValueError(f"unknown convention {convention!r}; choose one of {sorted(PRESETS)} "
                         "or pass a fspai.conventions.Convention") from None
