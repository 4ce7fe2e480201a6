"""The sampler's readout chooses on validation accuracy only (issue 11): a fake evaluator whose
test accuracies would pick a different snapshot must not change the choice."""
from __future__ import annotations

import math

import pytest

from fspai.experiment.readout import choose_by_validation, readout


def _fake(table):
    calls = []

    def train_eval(t):
        calls.append(t)
        val, test = table[t]
        return {"val_acc": val, "test_acc": test}
    return train_eval, calls


def test_choice_ignores_test_accuracy():
    # snapshot 50 is best on validation, 75 best on test: the readout reports 50's test acc
    table = {0: (0.60, 0.61), 25: (0.62, 0.60), 50: (0.70, 0.58), 75: (0.55, 0.90)}
    fn, calls = _fake(table)
    ro = readout([0, 25, 50, 75], fn, baseline={"val_acc": 0.60, "test_acc": 0.61})
    assert ro["snapshot"] == 50
    assert ro["val_acc"] == 0.70 and ro["test_acc"] == 0.58
    assert ro["best_test_acc_released"] == 0.90 and ro["best_test_snapshot_released"] == 75
    assert sorted(calls) == [25, 50, 75]            # m0 comes from the base unit, not retrained
    # flipping every test accuracy changes nothing about the choice
    flipped = {t: (v, 1.0 - te) for t, (v, te) in table.items()}
    fn2, _ = _fake(flipped)
    assert readout([0, 25, 50, 75], fn2, baseline={"val_acc": 0.6, "test_acc": 0.39}
                   )["snapshot"] == 50


def test_m0_is_not_a_readout_candidate_but_counts_for_the_released_number():
    table = {0: (0.99, 0.99), 10: (0.5, 0.5)}
    fn, calls = _fake(table)
    ro = readout([0, 10], fn)
    assert ro["snapshot"] == 10 and ro["test_acc"] == 0.5
    assert ro["best_test_acc_released"] == 0.99 and ro["best_test_snapshot_released"] == 0
    assert sorted(calls) == [0, 10]


def test_nothing_accepted_reports_the_baseline():
    fn, calls = _fake({})
    ro = readout([0], fn, baseline={"val_acc": 0.4, "test_acc": 0.45})
    assert ro["snapshot"] == 0 and ro["test_acc"] == 0.45 and calls == []


def test_choose_by_validation_ties_and_nan():
    assert choose_by_validation([0.5, 0.7, 0.7]) == 2          # later snapshot wins a tie
    assert choose_by_validation([math.nan, 0.1]) == 1
    assert choose_by_validation([math.nan, math.nan]) == 1
    with pytest.raises(ValueError):
        choose_by_validation([])
