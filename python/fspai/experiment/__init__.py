"""End-to-end experiment: PaI baselines, the Full-Spectrum sampler on top of them, and IMP/LTH with
rewinding, trained with one schedule and one set of seeds; results table, coordinate-vs-accuracy
correlations and plots.

Entry points: :func:`run_experiment` (Python) and ``fspai experiment`` (CLI).

Configuration
-------------
A nested dict (or TOML file) with the sections of :data:`DEFAULTS`; presets live in
``fspai/configs/*.toml`` (``quick``, ``grid``, the cases of the ``full`` suite).  A suite
(:func:`run_suite`) runs several experiments -- one per dataset and model -- and writes one
combined report; ``full`` is the powered grid (8 seeds, see ``docs/protocols.md``).

Readout and statistics
----------------------
``experiment.val_fraction`` of the training data is held out.  A sampler unit trains every
snapshot its sampler saved and reports the one with the best validation accuracy
(:mod:`fspai.experiment.readout`); rows carry ``val_acc`` and ``test_acc`` (= ``accuracy``),
sampler rows also ``snapshot`` and the released code's best-by-test number
``best_test_acc_released`` (selected on the test set, for comparison only).  ``paired.csv``
holds the seed-paired differences sampler − base per (base, density) and ``results.md`` the
verdict in words, both from :mod:`fspai.stats`.  :func:`load_config` merges
defaults < preset/file < overrides (``"section.key=value"`` strings or a nested dict) and
validates every key and type (the option tables against the functions they go to) before
anything runs; problems raise :class:`ConfigError`.

Units and resumability
----------------------
The experiment is a grid of units ``(method, density, seed)``; ``method`` is a PaI baseline
(``snip``), the sampler on a base method (``fs-snip``) or ``lth``.  Each finished unit writes
``units/<id>.json`` atomically; a rerun of the same configuration finds the same run directory
(``<out>/<name>-<hash of the resolved configuration>``) and skips finished units.  θ* per seed
(``theta/seed<k>.pt``) and the masks (``masks/``) are cached there too.

Every mask is trained from the same θ* of its seed (``experiment.weights``: the random init, or the
dense model after ``pretrain_steps`` SGD iterations as in the paper), except the LTH ticket,
which is trained from its own rewound weights (that is what "rewinding" means), with the same
training schedule and seed.
"""
from __future__ import annotations

from .config import (DEFAULTS, ConfigError, Unit, config_hash, list_presets, load_config,
                     parse_override, plan_units, preset_path, resolve_config, to_toml)
from .report import CORR_METRICS, correlation_markdown, correlations, markdown_table, summarize
from .runner import ExperimentResult, run_dir_for, run_experiment
from .suite import SuiteResult, list_suites, run_suite, suite_cases

__all__ = [
    "DEFAULTS", "ConfigError", "ExperimentResult", "load_config", "resolve_config",
    "config_hash", "preset_path", "list_presets", "run_experiment", "summarize", "correlations",
    "markdown_table", "correlation_markdown", "parse_override", "Unit", "plan_units", "to_toml",
    "run_dir_for", "CORR_METRICS", "run_suite", "list_suites", "suite_cases", "SuiteResult",
]
