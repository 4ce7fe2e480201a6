"""The package's shape: modules import only downward, no module imports ``fspai`` whole, and no
module is over 600 lines. Read from the source text (nothing is imported)."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import fspai

ROOT = Path(fspai.__file__).resolve().parent

#: Layer of every torch-side module (lower imports nothing higher). Modules not listed belong to
#: the core layer (metrics, tables, conventions, conversion, ...), which is below all of these.
RANK = {
    "fspai._torch_utils": 2.0, "fspai.distributed": 2.0, "fspai._mask_io": 2.0,
    "fspai.models": 2.0, "fspai.data": 2.1, "fspai.history": 2.0,
    "fspai.masks": 3.0,
    "fspai.selection": 4.0, "fspai.scoring": 4.0, "fspai.checkpoint": 4.0, "fspai.plots": 4.0,
    "fspai.dst": 4.5,
    "fspai._fit": 5.0, "fspai.train": 6.0,
    "fspai.lottery": 7.0, "fspai.weights": 7.0, "fspai.pai": 8.0,
    "fspai.sampler.protocols": 9.0, "fspai.sampler.rules": 9.1, "fspai.sampler.candidates": 9.2, "fspai.sampler.core": 9.3,
    "fspai.sampler": 9.4,
    "fspai.experiment.readout": 10.0, "fspai.experiment.config": 10.1, "fspai.experiment.report": 10.2,
    "fspai.experiment.runner": 10.3, "fspai.experiment.suite": 10.35, "fspai.experiment": 10.4,
    "fspai.cli.parser": 11.1, "fspai.cli.commands": 11.2, "fspai.cli": 11.3,
    "fspai.__main__": 12.0,
}
CORE = 1.0


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(name: str, path: Path):
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module
            for a in node.names:    # `from . import x` names a module; `from .m import x` m
                yield (f"{base}.{a.name}" if node.module is None else base), node.lineno


def _rank(module: str) -> float:
    while module and module not in RANK:
        if module == "fspai":
            return CORE
        module = module.rpartition(".")[0]
    return RANK.get(module, CORE)


def test_modules_import_only_downward():
    bad = []
    for name, path in _modules():
        if name not in RANK:
            continue                     # the core layer (and the package, which exposes all)
        mine = _rank(name)
        for target, line in _imports(name, path):
            if target == "fspai":
                bad.append(f"{name}:{line} imports fspai whole")
            elif target.startswith("fspai.") and mine < 12 and _rank(target) >= mine and \
                    not target.startswith(name + "."):
                bad.append(f"{name} ({mine}):{line} imports {target} ({_rank(target)})")
    assert not bad, "\n".join(bad)


def test_no_module_is_over_600_lines():
    long = {name: n for name, path in _modules()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600}
    assert not long, long
