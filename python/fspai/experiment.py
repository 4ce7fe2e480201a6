"""End-to-end experiment: PaI baselines, the Full-Spectrum sampler on top of them, and IMP/LTH with
rewinding, trained with one schedule and one set of seeds; results table, coordinate-vs-accuracy
correlations and plots.

Entry points: :func:`run_experiment` (Python) and ``fspai experiment`` (CLI).

Configuration
-------------
A nested dict (or TOML file) with the sections of :data:`DEFAULTS`; presets live in
``fspai/configs/*.toml`` (``quick``, ``grid``, ``full``).  :func:`load_config` merges
defaults < preset/file < overrides (``"section.key=value"`` strings or a nested dict) and
validates every key and type; problems raise :class:`ConfigError`.

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

import copy
import csv
import hashlib
import inspect
import io
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "DEFAULTS", "ConfigError", "ExperimentResult", "load_config", "resolve_config",
    "config_hash", "preset_path", "list_presets", "run_experiment", "summarize", "correlations",
    "markdown_table", "parse_override", "Unit", "plan_units",
]

log = logging.getLogger(__name__)

_BASE_METHODS = ("random", "erk", "magnitude", "snip", "grasp", "synflow", "itersnip")
_AXES = ("delta_r", "weighted_gap", "imdb", "weighted_imdb")
#: metrics correlated with accuracy (network level = mean over layers)
CORR_METRICS = ("coordinate_norm",) + _AXES


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
    return Path(__file__).resolve().parent / "configs"


def list_presets() -> List[str]:
    """Names of the bundled presets (``fspai/configs/*.toml``)."""
    return sorted(p.stem for p in _pkg_configs().glob("*.toml"))


def preset_path(name: str) -> Path:
    p = _pkg_configs() / f"{name}.toml"
    if not p.is_file():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")
    return p


def _read_toml(path: Union[str, Path]) -> Dict[str, Any]:
    import tomllib
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
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
    import tomllib
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    parts = [p.strip() for p in key.strip().split(".") if p.strip()]
    if len(parts) < 2:
        raise ConfigError(f"override {text!r}: the key needs a section, e.g. sampler.population=50")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
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
        cfg = _deep_merge(cfg, _read_toml(preset_path(preset)))
    if source is not None:
        if isinstance(source, Mapping):
            cfg = _deep_merge(cfg, source)
        else:
            cfg = _deep_merge(cfg, _read_toml(source))
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
    return out


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
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not (0 < float(d) <= 1):
            raise ConfigError(f"experiment.densities must hold numbers in (0, 1], got {d!r}")
        dens.append(float(d))
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
    if sd is not None and not (0 < sd <= 1):
        raise ConfigError("set.density must be in (0, 1]")
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


# --------------------------------------------------------------------------------------------
# adapters to the PyTorch layer (fspai.data / models / pai / masks / train)
# --------------------------------------------------------------------------------------------

def _call(fn: Callable, *args, **kwargs):
    """Call ``fn`` with the keyword arguments its signature accepts (drops ``None`` values)."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return fn(*args, **kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


class _Context:
    """Per-run shared state: data bundle, device, θ* cache, run directory."""

    def __init__(self, cfg: Dict[str, Any], run_dir: Path, progress: bool):
        import torch
        self.torch = torch
        self.cfg = cfg
        self.run_dir = run_dir
        self.progress = progress
        self.device = torch.device(cfg["experiment"]["device"])
        self._bundle = None
        self._theta: Dict[int, Dict[str, Any]] = {}
        self._init: Dict[int, Dict[str, Any]] = {}

    # data / model ---------------------------------------------------------------------------
    @property
    def bundle(self):
        if self._bundle is None:
            from . import data as _data
            e = self.cfg["experiment"]
            opts = dict(self.cfg["data"])
            self._bundle = _call(_data.load, e["dataset"], **opts)
        return self._bundle

    def build(self, seed: int):
        from . import models as _models
        e = self.cfg["experiment"]
        b = self.bundle
        model = _models.build(e["model"], b.num_classes, input_shape=b.input_shape,
                              init=e["init"], seed=seed, **self.cfg["model"])
        return model.to(self.device)

    # θ* ------------------------------------------------------------------------------------
    def theta(self, seed: int):
        """A fresh model holding θ* of ``seed`` (cached on disk)."""
        torch = self.torch
        model = self.build(seed)
        if seed not in self._theta:
            path = self.run_dir / "theta" / f"seed{seed}.pt"
            if path.is_file():
                state = torch.load(path, map_location="cpu", weights_only=True)
            else:
                e = self.cfg["experiment"]
                if e["weights"] == "pretrained" and e["pretrain_steps"] > 0:
                    from .sampler import prepare_weights
                    prepare_weights(model, "pretrained", data=self.bundle.train_loader,
                                    steps=e["pretrain_steps"], seed=seed, device=self.device,
                                    train_options=self._train_opts(exclude=("steps", "epochs")))
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                _atomic_torch_save(state, path)
            self._theta[seed] = state
        model.load_state_dict(self._theta[seed])
        return model

    def _train_opts(self, exclude: Sequence[str] = ()) -> Dict[str, Any]:
        return {k: v for k, v in self.cfg["train"].items() if k not in exclude}

    # training ------------------------------------------------------------------------------
    def train(self, model, masks, seed: int, *, steps: Optional[int] = None):
        from . import train as _train
        torch = self.torch
        opts = self._train_opts()
        if steps is not None:
            opts["steps"] = steps
            opts.pop("epochs", None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            history = _call(_train.fit, model, self.bundle.train_loader, masks=masks,
                            seed=seed, device=self.device, progress=False, **opts)
        return history

    def evaluate(self, model) -> Dict[str, float]:
        from . import train as _train
        ev = getattr(_train, "evaluate", None)
        if ev is not None:
            res = _call(ev, model, self.bundle.test_loader, device=self.device)
            return _as_eval_dict(res)
        return _evaluate(model, self.bundle.test_loader, self.device)


def _as_eval_dict(res) -> Dict[str, float]:
    if isinstance(res, Mapping):
        out = {k: float(v) for k, v in res.items() if isinstance(v, (int, float))}
        if "accuracy" not in out:
            for k in ("acc", "test_acc", "test_accuracy"):
                if k in out:
                    out["accuracy"] = out[k]
        return out
    if isinstance(res, tuple) and len(res) == 2:
        a, b = res
        return {"loss": float(a), "accuracy": float(b)} if float(b) <= 1.0 else \
            {"loss": float(a), "accuracy": float(b) / 100.0}
    return {"accuracy": float(res)}


def _evaluate(model, loader, device) -> Dict[str, float]:
    import torch
    model.eval()
    correct = total = 0
    loss = 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss += float(torch.nn.functional.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
            total += int(y.numel())
    return {"accuracy": correct / max(total, 1), "loss": loss / max(total, 1)}


def _atomic_torch_save(obj, path: Path) -> None:
    from .train import _atomic_save  # one implementation of the write-then-rename checkpoint save

    _atomic_save(obj, path)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


# --------------------------------------------------------------------------------------------
# metrics of a mask
# --------------------------------------------------------------------------------------------

def _mask_metrics(masks: Mapping[str, Any], weights: Mapping[str, Any],
                  convention: str) -> Dict[str, Any]:
    """Network-level coordinate summary (means over layers) + per-layer records."""
    import fspai
    names = list(masks)
    table = fspai.model_metrics({n: masks[n] for n in names},
                                weights={n: weights[n] for n in names}, convention=convention)
    layers = []
    for rec in table.records:
        d = rec.to_dict() if hasattr(rec, "to_dict") else dict(vars(rec))
        layers.append({k: _jsonable(v) for k, v in d.items()})
    summary = {}
    for key in CORR_METRICS:
        vals = np.array([_axis_value(l, key) for l in layers], dtype=float)
        vals = vals[np.isfinite(vals)]
        summary[key] = float(vals.mean()) if len(vals) else float("nan")
    summary["ramanujan_fraction"] = float(np.mean([_num(l.get("delta_r")) > 0 for l in layers]))
    return {"summary": summary, "layers": layers}


def _axis_value(layer: Mapping[str, Any], key: str) -> float:
    """A coordinate axis of a per-layer record (the coordinate's value: undefined -> 0)."""
    if key == "coordinate_norm":
        return _num(layer.get("coordinate_norm"))
    return _num(layer.get(f"coord_{key}", layer.get(key)))


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, (int, float, str, bool, list, dict)) or v is None:
        return v
    return str(v)


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f


# --------------------------------------------------------------------------------------------
# running units
# --------------------------------------------------------------------------------------------

def _weights_of(model) -> Dict[str, Any]:
    from .masks import prunable_parameters
    return {n: p.detach().cpu().clone() for n, p in prunable_parameters(model).items()}


def _baseline_masks(ctx: _Context, method: str, density: float, seed: int):
    """PaI baseline mask of (method, density, seed), cached in ``masks/``."""
    from . import masks as _masks
    from . import pai
    path = ctx.run_dir / "masks" / f"{method}__d{density:g}__s{seed}.pt"
    if path.is_file():
        try:
            return _masks.load_masks(path), 0.0
        except (ValueError, OSError):
            log.warning("recomputing unreadable cached mask %s", path)
    torch = ctx.torch
    model = ctx.theta(seed)
    data = None
    if method in ("snip", "grasp", "itersnip", "synflow"):
        nb = ctx.cfg["experiment"]["baseline_batches"]
        data = ctx.bundle.train_loader
        if nb is not None:
            data = _take_batches(data, nb)
    from .sampler import candidate_seed
    pseed = candidate_seed(seed, 0)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(pseed)
        masks = pai.prune(model, method, density, data=data, seed=pseed, **ctx.cfg["pai"])
    elapsed = time.perf_counter() - t0
    masks = {k: v.detach().cpu().bool() for k, v in masks.items()}
    _masks.save_masks(path, masks, meta={"method": method, "seed": seed, "density": density})
    return masks, elapsed


def _take_batches(loader, n: int):
    out = []
    for i, b in enumerate(loader):
        if i >= n:
            break
        out.append(b)
    return out


def _run_unit(ctx: _Context, unit: Unit) -> Dict[str, Any]:
    from . import masks as _masks
    torch = ctx.torch
    cfg = ctx.cfg
    e = cfg["experiment"]
    t0 = time.perf_counter()
    extra: Dict[str, Any] = {}
    if unit.kind == "pai":
        masks, prune_s = _baseline_masks(ctx, unit.method, unit.density, unit.seed)
        start = ctx.theta(unit.seed)
        theta_w = _weights_of(start)
    elif unit.kind == "sampler":
        from .sampler import FullSpectrumSampler
        base_masks, _ = _baseline_masks(ctx, unit.base, unit.density, unit.seed)
        s = cfg["sampler"]
        model = ctx.theta(unit.seed)
        save_dir = ctx.run_dir / "masks" / f"{unit.id}"
        sampler = FullSpectrumSampler(
            model, unit.base, unit.density, data=ctx.bundle.train_loader,
            population=s["population"], save_interval=s["save_interval"], seed=unit.seed,
            rule=s["rule"], budget=s["budget"], weights="init",
            candidate_batches=s["candidate_batches"], noise=s["noise"],
            convention=e["convention"], baseline=base_masks, save_dir=save_dir,
            prune_options=cfg["pai"],
            device=ctx.device, progress=ctx.progress)
        t1 = time.perf_counter()
        res = sampler.run()
        prune_s = time.perf_counter() - t1
        masks = res.masks
        _masks.save_masks(ctx.run_dir / "masks" / f"{unit.id}.pt", masks,
                          meta={"method": unit.method, "seed": unit.seed,
                                "density": unit.density, "sampler": res.to_dict()})
        extra["sampler"] = {k: v for k, v in res.to_dict().items() if k != "layers"}
        start = ctx.theta(unit.seed)
        theta_w = _weights_of(start)
    else:  # lth
        masks, start, prune_s, info = _lth(ctx, unit)
        theta_w = _weights_of(start)
        extra["lth"] = info
    metrics_init = _mask_metrics(masks, theta_w, e["convention"])
    tt = time.perf_counter()
    history = ctx.train(start, masks, unit.seed)
    train_s = time.perf_counter() - tt
    ev = ctx.evaluate(start)
    trained_w = _weights_of(start)
    metrics_trained = _mask_metrics(masks, trained_w, e["convention"])
    row = {
        "unit": unit.id, "method": unit.method, "kind": unit.kind, "base": unit.base,
        "density": unit.density, "seed": unit.seed,
        "realised_density": float(_masks.realised_density(masks)),
        "accuracy": float(ev["accuracy"]), "test_loss": float(ev.get("loss", float("nan"))),
        **{k: v for k, v in metrics_init["summary"].items()},
        **{f"{k}_trained": v for k, v in metrics_trained["summary"].items()},
        "prune_s": float(prune_s), "train_s": float(train_s),
        "total_s": float(time.perf_counter() - t0),
    }
    if unit.kind == "sampler":
        tm = extra["sampler"]["timings"]
        row.update({"sampler_accepted": extra["sampler"]["accepted"],
                    "candidates_per_s": tm.get("candidates_per_s"),
                    "metrics_fraction": tm.get("metrics_fraction")})
    return {"row": row, "layers": metrics_init["layers"],
            "layers_trained": metrics_trained["layers"],
            "history": _history_summary(history), **extra}


def _history_summary(history) -> Any:
    """A JSON-friendly (and short) form of whatever ``fspai.train.fit`` returned."""
    if history is None:
        return None
    if hasattr(history, "to_dict"):
        history = history.to_dict()
    elif hasattr(history, "__dataclass_fields__"):
        import dataclasses
        history = dataclasses.asdict(history)
    if isinstance(history, Mapping):
        out = {}
        for k, v in history.items():
            if isinstance(v, (list, tuple)) and len(v) > 50:
                step = max(1, len(v) // 50)
                v = list(v)[::step]
            out[str(k)] = _to_json(v)
        return out
    if isinstance(history, (list, tuple)):
        return _to_json(list(history)[-50:])
    return str(history)


def _to_json(v):
    try:
        json.dumps(v, default=_json_default)
        return json.loads(json.dumps(v, default=_json_default))
    except (TypeError, ValueError):
        return str(v)


def _lth(ctx: _Context, unit: Unit):
    """IMP with rewinding from the seed's random init; returns (masks, rewound model, s, info)."""
    from . import pai
    torch = ctx.torch
    lth = ctx.cfg["lth"]
    steps = lth["steps"] if lth["steps"] is not None else ctx.cfg["train"].get("steps")
    epochs = None if steps is not None else ctx.cfg["train"].get("epochs")
    model = ctx.build(unit.seed)
    t0 = time.perf_counter()
    train_opts = ctx._train_opts(exclude=("steps", "epochs"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(unit.seed)
        res = pai.imp(model, ctx.bundle.train_loader, unit.density, rounds=lth["rounds"],
                      rewind_to=lth["rewind_steps"], steps=steps, epochs=epochs, seed=unit.seed,
                      train_final=False, device=ctx.device, progress=False, **train_opts)
    elapsed = time.perf_counter() - t0
    masks, rewound, info = _unpack_imp(res, model)
    start = ctx.build(unit.seed)
    start.load_state_dict(_plain_state(rewound, start))
    return {k: v.detach().cpu().bool() for k, v in masks.items()}, start, elapsed, info


def _unpack_imp(res, model):
    """Normalise what ``pai.imp`` returns to (masks, rewound state_dict or model, info)."""
    info: Dict[str, Any] = {}
    masks = rewound = None
    if isinstance(res, tuple):
        masks = res[0]
        rewound = res[1] if len(res) > 1 else None
    elif isinstance(res, Mapping) and "masks" in res:
        masks = res["masks"]
        rewound = res.get("rewind_state") or res.get("rewound") or res.get("state_dict")
        info = {k: _to_json(v) for k, v in res.items() if k not in ("masks", "rewind_state",
                                                                     "rewound", "state_dict")}
    elif hasattr(res, "masks"):
        masks = res.masks
        for k in ("rewind_state", "rewound_state", "rewind_state_dict", "state_dict", "rewound"):
            if getattr(res, k, None) is not None:
                rewound = getattr(res, k)
                break
        for k in ("densities", "history", "rounds"):
            if hasattr(res, k):
                info[k] = _to_json(getattr(res, k))
    elif isinstance(res, Mapping):
        masks = res
    if masks is None:
        raise RuntimeError("fspai.pai.imp returned no masks")
    if rewound is None:
        rewound = model
    return masks, rewound, info


def _plain_state(rewound, target) -> Dict[str, Any]:
    """A state_dict for ``target`` (unmasked) from a module or state_dict (masks stripped)."""
    import torch
    if isinstance(rewound, torch.nn.Module):
        from .masks import remove_masks
        m = copy.deepcopy(rewound)
        remove_masks(m, make_permanent=False)
        state = m.state_dict()
    else:
        state = dict(rewound)
    fixed = {}
    for k, v in state.items():
        k2 = k.replace(".parametrizations.weight.original", ".weight")
        k2 = k2[:-len("_orig")] if k2.endswith("weight_orig") else k2
        if ".parametrizations.weight.0." in k2 or k2.endswith("weight_mask"):
            continue
        fixed[k2] = v
    own = target.state_dict()
    return {k: fixed.get(k, own[k]) for k in own}


# --------------------------------------------------------------------------------------------
# SET evolution
# --------------------------------------------------------------------------------------------

def _run_set(ctx: _Context) -> Dict[str, Any]:
    """Train one mask with SET (``fspai.train.fit_set``) and record the network-level coordinate
    (layer means, current weights) at the start and after every topology update."""
    from . import train as _train
    torch = ctx.torch
    cfg = ctx.cfg
    sc = cfg["set"]
    e = cfg["experiment"]
    seed = e["seeds"][0]
    density = sc["density"] if sc["density"] is not None else e["densities"][0]
    steps = sc["steps"] if sc["steps"] is not None else cfg["train"].get("steps")
    epochs = None if steps is not None else cfg["train"].get("epochs")
    masks, _ = _baseline_masks(ctx, sc["method"], density, seed)
    model = ctx.theta(seed)
    opts = ctx._train_opts(exclude=("steps", "epochs"))
    if epochs is not None:
        opts["epochs"] = epochs
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hist = _call(_train.fit_set, model, (ctx.bundle.train_loader, ctx.bundle.test_loader),
                     masks=masks,
                     update_every=sc["update_every"], prune_rate=sc["prune_rate"], steps=steps,
                     seed=seed, device=ctx.device, progress=False, record_metrics=True,
                     metrics_convention=e["convention"], **opts)
    ev = ctx.evaluate(model)
    by_step: Dict[int, List[Mapping[str, Any]]] = {}
    for row in getattr(hist, "metrics", []) or []:
        by_step.setdefault(int(row["step"]), []).append(row)
    records = []
    for step in sorted(by_step):
        layers = by_step[step]
        rec: Dict[str, Any] = {"step": step}
        for key in CORR_METRICS:
            vals = np.array([_axis_value(l, key) for l in layers], dtype=float)
            vals = vals[np.isfinite(vals)]
            rec[key] = float(vals.mean()) if len(vals) else float("nan")
        rec["ramanujan_fraction"] = float(np.mean([_num(l.get("delta_r")) > 0 for l in layers]))
        records.append(rec)
    accuracy = [{"step": int(r["step"]), "accuracy": float(r["test_acc"])}
                for r in getattr(hist, "epochs", []) or [] if r.get("test_acc") is not None]
    return {"method": sc["method"], "density": density, "seed": seed, "steps": steps,
            "update_every": sc["update_every"], "prune_rate": sc["prune_rate"],
            "records": records, "accuracy": accuracy, "final_accuracy": ev["accuracy"],
            "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------------------------

def _mean_std(vals: Sequence[float]) -> Tuple[float, float]:
    v = np.array([x for x in vals if x is not None and math.isfinite(float(x))], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def summarize(rows: Sequence[Mapping[str, Any]], method_order: Optional[Sequence[str]] = None
              ) -> List[Dict[str, Any]]:
    """Per (density, method): accuracy mean ± std over seeds, realised density, coordinates."""
    keys = sorted({(r["density"], r["method"]) for r in rows},
                  key=lambda k: (k[0], _order_index(method_order, k[1]), k[1]))
    out = []
    for d, m in keys:
        grp = [r for r in rows if r["density"] == d and r["method"] == m]
        acc, acc_sd = _mean_std([r["accuracy"] for r in grp])
        rec = {"density": d, "method": m, "kind": grp[0].get("kind"), "n_seeds": len(grp),
               "accuracy_mean": acc, "accuracy_std": acc_sd,
               "realised_density": _mean_std([r["realised_density"] for r in grp])[0]}
        for key in CORR_METRICS:
            rec[key] = _mean_std([r.get(key) for r in grp])[0]
        base = grp[0].get("base")
        if grp[0].get("kind") == "sampler" and base:
            ref = {r["seed"]: r["accuracy"] for r in rows
                   if r["density"] == d and r["method"] == base}
            diffs = [r["accuracy"] - ref[r["seed"]] for r in grp if r["seed"] in ref]
            dm, dsd = _mean_std(diffs)
            rec.update({"vs_base_mean": dm, "vs_base_std": dsd,
                        "vs_base_wins": int(sum(x > 0 for x in diffs)), "vs_base_n": len(diffs)})
        out.append(rec)
    return out


def _order_index(order, m) -> int:
    if order and m in order:
        return list(order).index(m)
    return 10_000


def correlations(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = CORR_METRICS,
                 accuracy: str = "accuracy", suffix: str = "") -> List[Dict[str, Any]]:
    """Pearson and Spearman (with p-values) between accuracy and each metric, pooled over all
    units and within each density.  Constant inputs or n < 3 give NaN (no scipy warning)."""
    from scipy import stats
    scopes: List[Tuple[str, List[Mapping[str, Any]]]] = [("all", list(rows))]
    for d in sorted({r["density"] for r in rows}):
        scopes.append((f"density={d:g}", [r for r in rows if r["density"] == d]))
    out = []
    for scope, grp in scopes:
        for m in metrics:
            key = m + suffix
            pairs = [(float(r[key]), float(r[accuracy])) for r in grp
                     if math.isfinite(_num(r.get(key))) and math.isfinite(_num(r.get(accuracy)))]
            rec = {"scope": scope, "metric": key, "n": len(pairs), "pearson_r": float("nan"),
                   "pearson_p": float("nan"), "spearman_rho": float("nan"),
                   "spearman_p": float("nan")}
            if len(pairs) >= 3:
                x = np.array([p[0] for p in pairs])
                y = np.array([p[1] for p in pairs])
                if np.ptp(x) > 0 and np.ptp(y) > 0:
                    pr = stats.pearsonr(x, y)
                    sr = stats.spearmanr(x, y)
                    rec.update({"pearson_r": float(pr[0]), "pearson_p": float(pr[1]),
                                "spearman_rho": float(sr[0]), "spearman_p": float(sr[1])})
            out.append(rec)
    return out


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.{digits}g}"
    return str(v)


def markdown_table(summary: Sequence[Mapping[str, Any]]) -> str:
    """The results table in Markdown (accuracy in %, mean ± std over seeds)."""
    head = ("| density | method | accuracy % (mean ± std) | seeds | Δ vs base (pp) | "
            "realised density | coord. norm | Δr | w-gap | IMDB | w-IMDB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in summary:
        acc = f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f}"
        vs = ""
        if "vs_base_mean" in r and math.isfinite(r["vs_base_mean"]):
            vs = (f"{100 * r['vs_base_mean']:+.2f} ± {100 * r['vs_base_std']:.2f} "
                  f"({r['vs_base_wins']}/{r['vs_base_n']} wins)")
        lines.append(
            f"| {r['density']:g} | {r['method']} | {acc} | {r['n_seeds']} | {vs} | "
            f"{r['realised_density']:.4f} | {_fmt(r['coordinate_norm'])} | {_fmt(r['delta_r'])} | "
            f"{_fmt(r['weighted_gap'])} | {_fmt(r['imdb'])} | {_fmt(r['weighted_imdb'])} |")
    return "\n".join(lines)


def correlation_markdown(corr: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| scope | metric | n | Pearson r | p | Spearman ρ | p |",
             "|---|---|---|---|---|---|---|"]
    for c in corr:
        lines.append(f"| {c['scope']} | {c['metric']} | {c['n']} | {_fmt(c['pearson_r'], 3)} | "
                     f"{_fmt(c['pearson_p'], 2)} | {_fmt(c['spearman_rho'], 3)} | "
                     f"{_fmt(c['spearman_p'], 2)} |")
    return "\n".join(lines)


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Optional[List[str]] = None
               ) -> Path:
    if columns is None:
        columns = []
        for r in rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k) for k in columns})
    _atomic_write_text(path, buf.getvalue())
    return path


# --------------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------------

@dataclass
class ExperimentResult:
    """What :func:`run_experiment` produced (all files live under ``run_dir``)."""

    run_dir: Path
    config: Dict[str, Any]
    rows: List[Dict[str, Any]]
    summary: List[Dict[str, Any]]
    correlations: List[Dict[str, Any]]
    table_markdown: str
    files: Dict[str, Path]
    ran: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    wall_s: float = 0.0


def run_dir_for(cfg: Mapping[str, Any], out: Union[str, Path] = "runs") -> Path:
    return Path(out) / f"{cfg['experiment']['name']}-{config_hash(cfg)}"


def run_experiment(config: Union[None, str, Path, Mapping[str, Any]] = None, *,
                   out: Union[str, Path] = "runs", preset: Optional[str] = None,
                   overrides: Union[None, Mapping[str, Any], Sequence[str]] = None,
                   progress: bool = False, plots: bool = True,
                   on_unit: Optional[Callable[[Unit, Dict[str, Any], bool], None]] = None
                   ) -> ExperimentResult:
    """Run (or resume) an experiment; see the module docstring.

    ``config``: a TOML path, a (partial) nested dict, or None (defaults / ``preset``).
    ``on_unit(unit, row, skipped)`` is called after every unit (the CLI prints progress with it).
    """
    t0 = time.perf_counter()
    cfg = load_config(config, preset=preset, overrides=overrides)
    run_dir = run_dir_for(cfg, out)
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(run_dir / "config.toml", to_toml(cfg))
    _atomic_write_text(run_dir / "config.json", json.dumps(cfg, indent=2))
    ctx = _Context(cfg, run_dir, progress)
    units = plan_units(cfg)
    import torch
    threads_before = torch.get_num_threads()
    if cfg["experiment"]["threads"]:
        torch.set_num_threads(cfg["experiment"]["threads"])
    try:
        return _run(cfg, ctx, run_dir, units, plots, on_unit, t0)
    finally:
        torch.set_num_threads(threads_before)


def _run(cfg, ctx, run_dir, units, plots, on_unit, t0) -> ExperimentResult:
    ran: List[str] = []
    skipped: List[str] = []
    results: Dict[str, Dict[str, Any]] = {}
    for unit in units:
        path = run_dir / "units" / f"{unit.id}.json"
        res = _read_unit(path)
        if res is not None:
            skipped.append(unit.id)
            results[unit.id] = res
            if on_unit:
                on_unit(unit, res["row"], True)
            continue
        log.info("running unit %s", unit.id)
        res = _run_unit(ctx, unit)
        _atomic_write_text(path, json.dumps(res, indent=1, default=_json_default))
        results[unit.id] = res
        ran.append(unit.id)
        if on_unit:
            on_unit(unit, res["row"], False)

    set_res = None
    if cfg["set"]["enabled"]:
        path = run_dir / "units" / "set_evolution.json"
        set_res = _read_unit(path, key="records")
        if set_res is None:
            try:
                set_res = _run_set(ctx)
            except RuntimeError as exc:
                log.warning("SET evolution skipped: %s", exc)
                set_res = None
            if set_res is not None:
                _atomic_write_text(path, json.dumps(set_res, indent=1, default=_json_default))
                ran.append("set_evolution")
        else:
            skipped.append("set_evolution")

    rows = [results[u.id]["row"] for u in units]
    order = _method_order(cfg)
    summary = summarize(rows, order)
    corr = correlations(rows) + correlations(rows, suffix="_trained")
    table = markdown_table(summary)
    files: Dict[str, Path] = {}
    files["results_csv"] = _write_csv(run_dir / "results.csv", rows)
    files["summary_csv"] = _write_csv(run_dir / "summary.csv", summary)
    files["correlations_csv"] = _write_csv(run_dir / "correlations.csv", corr)
    corr_md = correlation_markdown([c for c in corr if not c["metric"].endswith("_trained")])
    md = [f"# fspai experiment `{cfg['experiment']['name']}`", "",
          f"dataset **{cfg['experiment']['dataset']}**, model **{cfg['experiment']['model']}**, "
          f"seeds {cfg['experiment']['seeds']}, θ* = {cfg['experiment']['weights']}"
          + (f" ({cfg['experiment']['pretrain_steps']} SGD steps)"
             if cfg['experiment']['weights'] == 'pretrained' else "")
          + f", sampler N={cfg['sampler']['population']} rule={cfg['sampler']['rule']} "
            f"budget={cfg['sampler']['budget']}", "",
          "## Test accuracy", "", table, "",
          "Coordinates: mean over layers with θ* weights (before training); Δ vs base: paired "
          "by seed.", "",
          "## Correlation with accuracy (coordinates at θ*)", "", corr_md, ""]
    if set_res is not None:
        md += ["## Metric evolution under SET", "",
               f"{set_res['method']} mask, density {set_res['density']:g}, "
               f"{len(set_res['records'])} snapshots, final accuracy "
               f"{100 * set_res['final_accuracy']:.2f} %", ""]
    files["results_md"] = run_dir / "results.md"
    _atomic_write_text(files["results_md"], "\n".join(md))
    if plots:
        files.update(_make_plots(run_dir, cfg, rows, results, units, corr, set_res))
    wall = time.perf_counter() - t0
    _atomic_write_text(run_dir / "timing.json", json.dumps(
        {"wall_s": wall, "ran": ran, "skipped": skipped}, indent=1))
    return ExperimentResult(run_dir=run_dir, config=cfg, rows=rows, summary=summary,
                            correlations=corr, table_markdown=table, files=files, ran=ran,
                            skipped=skipped, wall_s=wall)


def _read_unit(path: Path, key: str = "row") -> Optional[Dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        log.warning("ignoring unreadable unit file %s", path)
        return None
    return data if isinstance(data, dict) and key in data else None


def _make_plots(run_dir: Path, cfg, rows, results, units, corr, set_res) -> Dict[str, Path]:
    from . import plots
    files: Dict[str, Path] = {}
    c = next((c for c in corr if c["scope"] == "all" and c["metric"] == "coordinate_norm"), None)
    note = None
    if c is not None and c["n"] >= 3:
        note = (f"all units: Pearson r={_fmt(c['pearson_r'], 3)} (p={_fmt(c['pearson_p'], 2)}), "
                f"Spearman ρ={_fmt(c['spearman_rho'], 3)}")
    files["plot_acc_vs_norm"] = plots.accuracy_vs_metric(
        rows, run_dir / "acc_vs_norm.png", metric="coordinate_norm", annotation=note)
    d0, s0 = cfg["experiment"]["densities"][0], cfg["experiment"]["seeds"][0]
    profiles = {}
    names = None
    for u in units:
        if u.density == d0 and u.seed == s0:
            layers = results[u.id]["layers"]
            names = [l.get("name", str(i)) for i, l in enumerate(layers)]
            profiles[u.method] = {k: [_axis_value(l, k) for l in layers]
                                  for k in CORR_METRICS}
    if profiles:
        files["plot_layer_gaps"] = plots.layer_profiles(
            profiles, run_dir / "layer_gaps.png", layer_names=names,
            title=f"per-layer coordinates at θ*, density {d0:g}, seed {s0}")
    if set_res is not None and set_res.get("records"):
        recs = set_res["records"]
        series: Dict[str, Any] = {k: [r[k] for r in recs] for k in CORR_METRICS}
        acc = set_res.get("accuracy") or []
        if acc:
            series["accuracy"] = ([a["step"] for a in acc], [a["accuracy"] for a in acc])
        files["plot_set_evolution"] = plots.metric_evolution(
            [r["step"] for r in recs], series,
            run_dir / "set_evolution.png",
            title=f"SET from {set_res['method']} at density {set_res['density']:g}")
    return files
