"""The sampler's readout: every saved snapshot is trained, the one reported is chosen on a
validation split, and the released code's best-by-test number is kept apart, labelled.

Pure bookkeeping (no torch): the caller supplies ``train_eval(snapshot) -> {"val_acc": ...,
"test_acc": ...}``.  :func:`choose_by_validation` sees validation accuracies only -- it is given
nothing else -- so the choice cannot depend on the test set.

Which snapshots compete.  The sampler saves the baseline m0 as snapshot ``t = 0`` and then the
composite after every K candidates in which something changed.  m0 is the base method's own
unit, so it is not a candidate of the readout: the sampler is read out from its sampled
composites (``t > 0``); when nothing was ever accepted, the composite *is* m0 and its result is
the base unit's.  The released readout (``best_test_acc_released``) is the largest test
accuracy over all snapshots, m0 included, as ``lth_acc_readout.py`` reports it -- a number
selected on the test set, reported only for comparison with the paper.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

__all__ = ["choose_by_validation", "readout"]


def choose_by_validation(val_accs: Sequence[float]) -> int:
    """Index of the highest validation accuracy; ties go to the later snapshot (the one that
    has seen more candidates).  NaN never wins unless every value is NaN (then the last)."""
    if not len(val_accs):
        raise ValueError("no snapshots to choose from")
    best, best_v = len(val_accs) - 1, -math.inf
    for i, v in enumerate(val_accs):
        f = float(v)
        if f == f and f >= best_v:
            best, best_v = i, f
    return best


def readout(ts: Sequence[int], train_eval: Callable[[int], Mapping[str, float]], *,
            baseline: Optional[Mapping[str, float]] = None) -> Dict[str, Any]:
    """Train/evaluate the snapshots ``ts`` (candidate indices, 0 = m0) and choose one.

    ``train_eval(t)`` returns ``{"val_acc", "test_acc"}`` of snapshot ``t`` trained from θ*.
    ``baseline``: m0's result (the base unit's), used for ``t = 0`` without training it again.
    Returns ``{"snapshot", "val_acc", "test_acc", "best_test_acc_released",
    "best_test_snapshot_released", "snapshots": [{"t", "val_acc", "test_acc"}, ...]}``.
    """
    ts = [int(t) for t in ts]
    cands = [t for t in ts if t > 0] or [0]
    recs: List[Dict[str, Any]] = []
    for t in sorted(set(cands) | ({0} if baseline is not None or 0 in ts else set())):
        r = baseline if (t == 0 and baseline is not None) else train_eval(t)
        recs.append({"t": t, "val_acc": float(r["val_acc"]), "test_acc": float(r["test_acc"])})
    pool = [r for r in recs if r["t"] in cands]
    chosen = pool[choose_by_validation([r["val_acc"] for r in pool])]
    best = max(recs, key=lambda r: (r["test_acc"], r["t"]))
    return {"snapshot": chosen["t"], "val_acc": chosen["val_acc"],
            "test_acc": chosen["test_acc"], "best_test_acc_released": best["test_acc"],
            "best_test_snapshot_released": best["t"], "snapshots": recs}
