"""What :func:`fspai.train.fit` measured: the :class:`History` (JSON/CSV, atomically written)."""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from ._jsonio import atomic_write_text, jsonable, read_json, write_json

__all__ = ["History"]


@dataclass
class History:
    """What :func:`fit` measured.

    * ``epochs``: one row per evaluation (end of each epoch, every ``eval_every`` steps, and the
      end of training): ``epoch, step, train_loss, train_acc, test_loss, test_acc, lr, density,
      time``.
    * ``steps``: ``step, epoch, loss, lr`` every ``log_every`` steps.
    * ``set_updates``: per SET update ``step, prune_rate, removed, regrown`` and per-layer nnz.
    * ``metrics``: per-layer fspai metrics (:class:`fspai.LayerMetrics` fields plus ``step``) at
      the start of SET and after every update (and every ``metrics_every`` steps if set).
    """

    epochs: List[Dict[str, Any]] = field(default_factory=list)
    steps: List[Dict[str, Any]] = field(default_factory=list)
    set_updates: List[Dict[str, Any]] = field(default_factory=list)
    metrics: List[Dict[str, Any]] = field(default_factory=list)
    config: Dict[str, Any] = field(default_factory=dict)
    total_steps: int = 0

    @property
    def final_test_acc(self) -> Optional[float]:
        for row in reversed(self.epochs):
            if row.get("test_acc") is not None:
                return row["test_acc"]
        return None

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON data (NaN/inf become None; see :func:`fspai._jsonio.jsonable`)."""
        return jsonable(asdict(self), where="History")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        return cls(**{k: d[k] for k in ("epochs", "steps", "set_updates", "metrics", "config",
                                        "total_steps") if k in d})

    def to_json(self, path: Union[str, os.PathLike]) -> Path:
        return write_json(path, self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, path: Union[str, os.PathLike]) -> "History":
        return cls.from_dict(read_json(path))

    def to_csv(self, path: Union[str, os.PathLike], table: str = "epochs") -> Path:
        """Write one table (``"epochs"``, ``"steps"``, ``"set_updates"``, ``"metrics"``) as CSV."""
        rows = getattr(self, table)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys: List[str] = []
        for r in rows:
            for k in r:
                if k not in keys:
                    keys.append(k)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(jsonable(v)) if isinstance(v, (list, dict)) else v)
                        for k, v in r.items()})
        return atomic_write_text(path, buf.getvalue())

    def save(self, directory: Union[str, os.PathLike]) -> Path:
        """``history.json`` plus one CSV per non-empty table in ``directory``."""
        d = Path(directory)
        self.to_json(d / "history.json")
        for table in ("epochs", "steps", "set_updates", "metrics"):
            if getattr(self, table):
                self.to_csv(d / f"{table}.csv", table)
        return d
