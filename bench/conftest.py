"""pytest configuration for the benchmark suites in bench/.

* Collects ``bench_*.py`` files (the project's ``python_files`` only matches ``test_*.py``), so
  ``pytest bench`` runs every suite; ``tests/`` (``testpaths``) never picks them up.
* ``FSPAI_BENCH_SMOKE=1`` swaps every workload for a tiny one (CI: run with ``--benchmark-disable``
  and every benchmark body executes once, results checked).
* ``FSPAI_BENCH_HEAVY=1`` enables the ``heavy`` benchmarks (the authors' method on the
  8192x28672 layer: ~100 s per call); they are skipped otherwise.
* ``FSPAI_BENCH_REQUIRE_CORE=1`` turns "fspai is not importable" from a skip into a failure.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bench import fspai_api  # noqa: E402

SMOKE = os.environ.get("FSPAI_BENCH_SMOKE", "") not in ("", "0")
HEAVY = os.environ.get("FSPAI_BENCH_HEAVY", "") not in ("", "0")


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: minutes-long baseline runs (FSPAI_BENCH_HEAVY=1)")
    config.addinivalue_line("markers", "needs_fspai: benchmarks the fspai core")


def pytest_collect_file(file_path, parent):
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and file_path.parent == Path(__file__).parent
            and not parent.session.isinitpath(file_path)):  # named on the command line: pytest
        return pytest.Module.from_parent(parent, path=file_path)  # collects it already
    return None


def pytest_collection_modifyitems(config, items):
    if HEAVY:
        return
    skip = pytest.mark.skip(reason="heavy baseline; set FSPAI_BENCH_HEAVY=1 to run")
    for item in items:
        if "heavy" in item.keywords and not SMOKE:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fspai():
    mod, why = fspai_api.load_fspai()
    if mod is None:
        if fspai_api.require_core():
            pytest.fail(f"fspai not importable: {why}")
        pytest.skip(f"fspai not importable: {why}")
    return mod


@pytest.fixture(scope="session")
def smoke() -> bool:
    return SMOKE
