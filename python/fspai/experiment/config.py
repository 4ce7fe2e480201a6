"""The experiment configuration: defaults, presets, TOML, overrides and validation.

:func:`load_config` merges defaults < preset < file/dict < overrides and validates every key
and type -- the option tables ``[data]``, ``[model]``, ``[pai]`` and ``[train]`` against the
functions they are passed to (:func:`fspai.data.check_options`,
:func:`fspai.models.check_options`, :class:`fspai.pai.PruneOptions`,
:class:`fspai.train.TrainConfig`) -- before anything runs or any directory is created. Problems
raise :class:`ConfigError`.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .._vocab import METHODS as _BASE_METHODS
from .._vocab import check_density

try:  # Python >= 3.11
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.9/3.10 (the tomli dependency)
    import tomli as _toml

__all__ = ["DEFAULTS", "ConfigError", "load_config", "resolve_config", "config_hash",
           "preset_path", "list_presets", "parse_override", "to_toml", "Unit", "plan_units",
           "read_toml"]


class ConfigError(ValueError):
    """An invalid experiment configuration (unknown key, wrong type, bad value)."""


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------

#: Every configuration key with its default.  ``None`` = "not set" (TOML cannot spell it: leave
#: the key out).  Types are checked against these defaults (``_TYPES`` for the ``None`` ones).
DEFAULTS: Dict[str, Dict[str, Any]] = {
    "experiment": {
        "name": "experiment",        # run directory prefix
        "dataset": "mnist1d",        # fspai.data.load name: mnist1d, digits, cifar10, cifar100
        "model": "mlp",              # fspai.models.build name: mlp, cnn1d, resnet18, resnet34, vgg16
        "densities": [0.05],         # target global densities
        "seeds": [0],                # one θ*, data order and training run per seed
        "methods": ["random", "erk", "snip", "synflow"],  # PaI baselines
        "device": "cpu",             # torch device for pruning and training ("cuda", "cuda:0", …)
        "weights": "pretrained",     # θ*: "init" or "pretrained" (dense SGD, pretrain_steps)
        "pretrain_steps": 500,       # dense SGD iterations for θ* (paper: 500)
        "baseline_batches": None,    # mini-batches for SNIP/GraSP/iterSNIP baselines (None = all)
        "convention": "neurips23",   # metrics convention
        "init": "pytorch",           # fspai.models.build init scheme: pytorch | paper | kaiming
        "threads": None,             # torch intra-op threads (None = torch's default)
        "val_fraction": 0.1,         # training data held out to choose the sampler's snapshot
    },
    "data": {"batch_size": 128},     # passed to fspai.data.load
    "model": {},                     # passed to fspai.models.build (e.g. hidden = [256, 256])
    "pai": {},                       # options for fspai.pai.prune (e.g. rounds = 20 for SynFlow)
    "sampler": {
        "methods": ["snip"],         # base methods the sampler runs on (each gives "fs-<base>")
        "population": 100,           # candidates N
        "save_interval": 10,         # K
        "rule": "layer",             # layer | layer-alt | network
        "budget": "free",            # free (released behaviour) | preserve (baseline edge counts)
        "candidate_batches": 4,      # mini-batches per SNIP/GraSP/iterSNIP candidate
        "noise": 1.0,                # weight-noise scale for SynFlow/iterSNIP/magnitude candidates
        "protocol": "fspai",         # fspai | released (fspai.sampler.PROTOCOLS)
    },
    "train": {                       # passed to fspai.train.fit (same for every mask)
        "steps": 1000,
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
    },
    "lth": {
        "enabled": True,
        "rounds": 3,                 # IMP rounds to reach the density
        "rewind_steps": 100,         # rewind point (iterations) — LTH with rewinding
        "steps": None,               # dense/sparse training steps per IMP round (None = train.steps)
    },
    "set": {
        "enabled": True,             # record metric evolution under SET for one mask
        "method": "erk",             # initial mask of the SET run
        "density": None,             # None = the first density
        "steps": None,               # None = train.steps
        "update_every": 100,         # topology update interval (steps)
        "prune_rate": 0.5,           # SET prune/regrow fraction (cosine-decayed by fspai.train)
    },
}

_TYPES: Dict[Tuple[str, str], Tuple[type, ...]] = {
    ("experiment", "baseline_batches"): (int,),
    ("experiment", "threads"): (int,),
    ("lth", "steps"): (int,),
    ("set", "density"): (float, int),
    ("set", "steps"): (int,),
}
_FREE_SECTIONS = ("data", "model", "pai", "train")   # open-ended option tables (passed through)
_CHOICES = {
    ("experiment", "weights"): ("init", "pretrained"),
    ("sampler", "rule"): ("layer", "layer-alt", "network"),
    ("sampler", "budget"): ("free", "preserve"),
    ("set", "method"): _BASE_METHODS,
}


def _pkg_configs() -> Path:
    return Path(__file__).resolve().parent.parent / "configs"


def list_presets() -> List[str]:
    """Names of the bundled experiment presets (``fspai/configs/*.toml``; suites, the files
    with a ``[suite]`` table, are listed by :func:`fspai.experiment.list_suites`)."""
    return sorted(p.stem for p in _pkg_configs().glob("*.toml") if "suite" not in read_toml(p))


def preset_path(name: str) -> Path:
    p = _pkg_configs() / f"{name}.toml"
    if not p.is_file():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")
    return p


def read_toml(path: Union[str, Path]) -> Dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    try:
        with p.open("rb") as f:
            return _toml.load(f)
    except _toml.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from exc


def _deep_merge(base: Dict[str, Any], extra: Mapping[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> Dict[str, Any]:
    """``"section.key=value"`` -> ``{"section": {"key": value}}``; value parsed as TOML, else a
    string (``sampler.population=50``, ``experiment.densities=[0.01,0.05]``, ``data.name=x``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    parts = [p.strip() for p in key.strip().split(".") if p.strip()]
    if len(parts) < 2:
        raise ConfigError(f"override {text!r}: the key needs a section, e.g. sampler.population=50")
    raw = raw.strip()
    try:
        value = _toml.loads(f"v = {raw}")["v"]
    except _toml.TOMLDecodeError:
        value = raw
    out: Dict[str, Any] = {}
    cur = out
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def load_config(source: Union[None, str, Path, Mapping[str, Any]] = None, *,
                preset: Optional[str] = None,
                overrides: Union[None, Mapping[str, Any], Sequence[str]] = None) -> Dict[str, Any]:
    """Resolve a configuration: defaults < ``preset`` < ``source`` (TOML path or dict) <
    ``overrides`` (dict or ``"section.key=value"`` strings).  Returns a validated nested dict."""
    cfg: Dict[str, Any] = {}
    if preset is not None:
        table = read_toml(preset_path(preset))
        if "suite" in table:
            raise ConfigError(f"preset {preset!r} is a suite of experiments "
                              f"({', '.join(table['suite'].get('presets', []))}); run it with "
                              "fspai.experiment.run_suite or `fspai experiment --preset`")
        cfg = _deep_merge(cfg, table)
    if source is not None:
        if isinstance(source, Mapping):
            cfg = _deep_merge(cfg, source)
        else:
            cfg = _deep_merge(cfg, read_toml(source))
    if overrides:
        if isinstance(overrides, Mapping):
            cfg = _deep_merge(cfg, overrides)
        else:
            for o in overrides:
                cfg = _deep_merge(cfg, parse_override(o))
    return resolve_config(cfg)


def resolve_config(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """Fill defaults into ``cfg`` and validate it (raises :class:`ConfigError`)."""
    if not isinstance(cfg, Mapping):
        raise ConfigError("the configuration must be a table/dict")
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; known: {sorted(DEFAULTS)}")
    out: Dict[str, Any] = {}
    for section, defaults in DEFAULTS.items():
        given = cfg.get(section, {})
        if not isinstance(given, Mapping):
            raise ConfigError(f"[{section}] must be a table")
        if section in _FREE_SECTIONS:
            merged = dict(defaults)
            merged.update(given)
            if section == "train" and "epochs" in given and "steps" not in given:
                merged.pop("steps", None)   # epochs replace the default step count
            out[section] = merged
            continue
        bad = sorted(set(given) - set(defaults))
        if bad:
            raise ConfigError(f"unknown key(s) {bad} in [{section}]; known: {sorted(defaults)}")
        merged = {}
        for key, default in defaults.items():
            value = given.get(key, default)
            merged[key] = _check_type(section, key, value, default)
        out[section] = merged
    _check_values(out)
    _check_option_tables(out)
    return out


def _check_option_tables(cfg: Dict[str, Any]) -> None:
    """The free tables, checked by the functions that take them (unknown keys, types)."""
    from ..data import check_options as check_data
    from ..models import check_options as check_model
    from ..pai import PruneOptions
    from ..train import TrainConfig

    e = cfg["experiment"]
    checks = (("data", lambda t: check_data(e["dataset"], t)),
              ("model", lambda t: check_model(e["model"], t)),
              ("pai", lambda t: PruneOptions.from_options(**t)),
              ("train", lambda t: TrainConfig.from_options(**t)))
    for section, check in checks:
        try:
            check(dict(cfg[section]))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[{section}]: {exc}") from None


def _check_type(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"{section}.{key}"
    if value is None:
        return None
    if (section, key) in _TYPES:
        types = _TYPES[(section, key)]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ConfigError(f"{where} must be {' or '.join(t.__name__ for t in types)}, "
                              f"got {value!r}")
        return float(value) if float in types else value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(default, list):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return list(value)
    return value


def _check_values(cfg: Dict[str, Any]) -> None:
    e, s = cfg["experiment"], cfg["sampler"]
    for (section, key), choices in _CHOICES.items():
        v = cfg[section][key]
        if v not in choices:
            raise ConfigError(f"{section}.{key} must be one of {', '.join(choices)}, got {v!r}")
    dens = []
    for d in e["densities"]:
        try:
            dens.append(check_density(d, "experiment.densities"))
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
    if not dens:
        raise ConfigError("experiment.densities is empty")
    e["densities"] = dens
    seeds = []
    for v in e["seeds"]:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"experiment.seeds must hold non-negative integers, got {v!r}")
        seeds.append(int(v))
    if not seeds:
        raise ConfigError("experiment.seeds is empty")
    e["seeds"] = seeds
    for key, lst in (("experiment.methods", e["methods"]), ("sampler.methods", s["methods"])):
        norm = []
        for m in lst:
            mm = str(m).lower()
            if mm not in _BASE_METHODS:
                raise ConfigError(f"{key}: unknown PaI method {m!r}; choose from "
                                  f"{', '.join(_BASE_METHODS)}")
            if mm not in norm:
                norm.append(mm)
        lst[:] = norm
    for key in ("population", "save_interval", "candidate_batches"):
        if s[key] < (0 if key == "population" else 1):
            raise ConfigError(f"sampler.{key} must be positive, got {s[key]}")
    if s["noise"] < 0:
        raise ConfigError("sampler.noise must be >= 0")
    if not 0.0 <= e["val_fraction"] < 1.0:
        raise ConfigError(f"experiment.val_fraction must be in [0, 1), got {e['val_fraction']}")
    from ..sampler.protocols import PROTOCOL_NAMES
    if s["protocol"] not in PROTOCOL_NAMES:
        raise ConfigError(f"sampler.protocol must be one of {', '.join(PROTOCOL_NAMES)}, "
                          f"got {s['protocol']!r}")
    if e["pretrain_steps"] < 0:
        raise ConfigError("experiment.pretrain_steps must be >= 0")
    if e["threads"] is not None and e["threads"] < 1:
        raise ConfigError("experiment.threads must be >= 1 (leave it out for torch's default)")
    if e["baseline_batches"] is not None and e["baseline_batches"] < 1:
        raise ConfigError("experiment.baseline_batches must be >= 1 (leave it out for all)")
    if cfg["lth"]["rounds"] < 1:
        raise ConfigError("lth.rounds must be >= 1")
    if cfg["set"]["update_every"] < 1:
        raise ConfigError("set.update_every must be >= 1")
    if not (0 < cfg["set"]["prune_rate"] < 1):
        raise ConfigError("set.prune_rate must be in (0, 1)")
    sd = cfg["set"]["density"]
    if sd is not None:
        try:
            cfg["set"]["density"] = check_density(sd, "set.density")
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
    tr = cfg["train"]
    if tr.get("steps") is None and tr.get("epochs") is None:
        raise ConfigError("train needs steps or epochs")
    if not e["name"] or any(c in e["name"] for c in "/\\"):
        raise ConfigError(f"experiment.name must be a plain name, got {e['name']!r}")


def config_hash(cfg: Mapping[str, Any]) -> str:
    """Short hash of a resolved configuration (names the run directory).

    Every key counts, ``experiment.threads`` included: torch's float reductions depend on the
    thread count, so units computed with different counts are not bit-identical and are kept
    in different run directories."""
    blob = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:10]


def to_toml(cfg: Mapping[str, Any]) -> str:
    """A TOML rendering of a resolved configuration (``None`` values are left out)."""
    def fmt(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, Mapping):
            return "{" + ", ".join(f"{k} = {fmt(x)}" for k, x in v.items() if x is not None) + "}"
        return json.dumps(str(v))
    lines = []
    for section, table in cfg.items():
        lines.append(f"[{section}]")
        for k, v in table.items():
            if v is not None:
                lines.append(f"{k} = {fmt(v)}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# units
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Unit:
    method: str      # "snip", "fs-snip", "lth"
    density: float
    seed: int

    @property
    def kind(self) -> str:
        if self.method == "lth":
            return "lth"
        return "sampler" if self.method.startswith("fs-") else "pai"

    @property
    def base(self) -> Optional[str]:
        if self.kind == "sampler":
            return self.method[3:]
        return self.method if self.kind == "pai" else None

    @property
    def id(self) -> str:
        return f"{self.method}__d{self.density:g}__s{self.seed}"


def plan_units(cfg: Mapping[str, Any]) -> List[Unit]:
    """All units of a configuration, grouped by seed (θ* is shared within a seed)."""
    e = cfg["experiment"]
    units: List[Unit] = []
    for seed in e["seeds"]:
        for d in e["densities"]:
            for m in e["methods"]:
                units.append(Unit(m, d, seed))
            for m in cfg["sampler"]["methods"]:
                units.append(Unit(f"fs-{m}", d, seed))
            if cfg["lth"]["enabled"]:
                units.append(Unit("lth", d, seed))
    return units


def _method_order(cfg: Mapping[str, Any]) -> List[str]:
    order = list(cfg["experiment"]["methods"])
    for m in cfg["sampler"]["methods"]:
        if m not in order:
            order.append(m)
    out = []
    for m in order:
        if m in cfg["experiment"]["methods"]:
            out.append(m)
        if m in cfg["sampler"]["methods"]:
            out.append(f"fs-{m}")
    if cfg["lth"]["enabled"]:
        out.append("lth")
    return out
