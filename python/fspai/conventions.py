"""Named conventions (SPEC §3, §5): ``"neurips23"`` (default) and ``"iclr23"``.

* ``iclr23`` — Hoang et al., ICLR 2023 released code (VITA-Group/ramanujan-on-pai):
  full-graph validity ``d_in >= 3 and d_out >= 3``; subgraphs: groups of >= 3 input nodes, valid
  if ``d >= 3 and d_out >= 3``, plain mean of Δr, NaN when no subgraph is valid.
* ``neurips23`` — Hoang et al., NeurIPS 2023 working code (the ``Ramanujan`` class family):
  full-graph validity ``d_out >= 3 and d_in > 1``; subgraphs: groups of >= 2 input nodes, valid if
  ``d >= 3 and d_out > 1``, Cheeger-like factor ``c = max(n_in, n_out) / (n_in + n_out - 1)``,
  0 when no subgraph is valid.
"""
from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Convention:
    name: str
    min_nodes: int
    cheeger: bool
    imdb_if_none: float

    def full_valid(self, d_in: float, d_out: float) -> bool:
        if self.name == "iclr23":
            return d_in >= 3 and d_out >= 3
        return d_out >= 3 and d_in > 1

    def full_rule(self) -> str:
        return "d_in >= 3 and d_out >= 3" if self.name == "iclr23" else "d_out >= 3 and d_in > 1"

    def sub_valid(self, d: float, d_out: float) -> bool:
        if self.name == "iclr23":
            return d >= 3 and d_out >= 3
        return d >= 3 and d_out > 1

    def sub_factor(self, n_in: int, n_out: int) -> float:
        if not self.cheeger:
            return 1.0
        return max(n_in, n_out) / (n_in + n_out - 1)


PRESETS = {
    "neurips23": Convention("neurips23", min_nodes=2, cheeger=True, imdb_if_none=0.0),
    "iclr23": Convention("iclr23", min_nodes=3, cheeger=False, imdb_if_none=math.nan),
}


def get_convention(convention) -> Convention:
    if isinstance(convention, Convention):
        return convention
    try:
        return PRESETS[convention]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown convention {convention!r}; choose one of {sorted(PRESETS)}"
        ) from None
