"""Running an experiment: θ* per seed, masks per unit, training, the SET evolution, the files.

See :mod:`fspai.experiment` for what an experiment is. The configuration is validated
completely (:func:`fspai.experiment.config.load_config`) before the run directory is created.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from .._jsonio import atomic_write, atomic_write_text, jsonable, read_json, write_json
from .._torch_utils import resolve_device
from .._vocab import DATA_METHODS
from .. import data as _data
from .. import masks as _masks
from .. import models as _models
from ..lottery import imp
from ..tables import model_metrics
from ..sampler import FullSpectrumSampler, candidate_seed
from ..train import OptimConfig, TrainConfig, evaluate, fit
from ..weights import prepare_weights
from .config import Unit, config_hash, load_config, plan_units, to_toml, _method_order
from .report import (CORR_METRICS, axis_value, correlation_markdown, correlations, make_plots,
                     markdown_table, num, summarize, write_csv)

__all__ = ["ExperimentResult", "run_experiment", "run_dir_for"]

log = logging.getLogger("fspai.experiment")


class _Context:
    """Per-run shared state: data bundle, device, θ* cache, run directory."""

    def __init__(self, cfg: Dict[str, Any], run_dir: Path, progress: bool):
        self.cfg = cfg
        self.run_dir = run_dir
        self.progress = progress
        self.device = resolve_device(cfg["experiment"]["device"])
        self.train_cfg = TrainConfig.from_options(**cfg["train"])
        self._bundle = None
        self._theta: Dict[int, Dict[str, Any]] = {}

    @property
    def bundle(self):
        if self._bundle is None:
            self._bundle = _data.load(self.cfg["experiment"]["dataset"], **self.cfg["data"])
        return self._bundle

    def build(self, seed: int):
        e = self.cfg["experiment"]
        b = self.bundle
        model = _models.build(e["model"], b.num_classes, input_shape=b.input_shape,
                              init=e["init"], seed=seed, **self.cfg["model"])
        return model.to(self.device)

    def theta(self, seed: int):
        """A fresh model holding θ* of ``seed`` (cached on disk)."""
        model = self.build(seed)
        if seed not in self._theta:
            path = self.run_dir / "theta" / f"seed{seed}.pt"
            if path.is_file():
                state = torch.load(path, map_location="cpu", weights_only=True)
            else:
                e = self.cfg["experiment"]
                if e["weights"] == "pretrained" and e["pretrain_steps"] > 0:
                    o = self.train_cfg.optim
                    optim = OptimConfig(optimizer=o.optimizer, lr=o.lr, momentum=o.momentum,
                                        nesterov=o.nesterov, weight_decay=o.weight_decay,
                                        betas=o.betas)   # constant lr, as the released recipe
                    prepare_weights(model, "pretrained", data=self.bundle.train_loader,
                                    steps=e["pretrain_steps"], seed=seed, device=self.device,
                                    optim=optim)
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                atomic_write(path, lambda f: torch.save(state, f))
            self._theta[seed] = state
        model.load_state_dict(self._theta[seed])
        return model

    def train(self, model, masks, seed: int, *, evaluate_each_epoch: bool = False, **options):
        """``fit`` with the run's training config; test-set evaluation during training only
        when asked (units are evaluated once at the end)."""
        data = self.bundle if evaluate_each_epoch else self.bundle.train_loader
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return fit(model, data, masks=masks, config=self.train_cfg, seed=seed,
                       device=self.device, progress=False, **options)

    def evaluate(self, model) -> Dict[str, float]:
        ev = evaluate(model, self.bundle.test_loader, device=self.device)
        return {"accuracy": ev["acc"], "loss": ev["loss"]}


def _mask_metrics(masks: Mapping[str, Any], weights: Mapping[str, Any],
                  convention: str) -> Dict[str, Any]:
    """Network-level coordinate summary (means over layers) + per-layer records."""
    names = list(masks)
    table = model_metrics({n: masks[n] for n in names},
                          weights={n: weights[n] for n in names}, convention=convention)
    layers = [jsonable(rec.to_dict()) for rec in table.records]
    summary = {}
    for key in CORR_METRICS:
        vals = np.array([axis_value(l, key) for l in layers], dtype=float)
        vals = vals[np.isfinite(vals)]
        summary[key] = float(vals.mean()) if len(vals) else float("nan")
    summary["ramanujan_fraction"] = float(np.mean([num(l.get("delta_r")) > 0 for l in layers]))
    return {"summary": summary, "layers": layers}


def _weights_of(model) -> Dict[str, Any]:
    return {n: p.detach().cpu().clone() for n, p in _masks.prunable_parameters(model).items()}


def _baseline_masks(ctx: _Context, method: str, density: float, seed: int):
    """PaI baseline mask of (method, density, seed), cached in ``masks/``."""
    from ..pai import prune
    path = ctx.run_dir / "masks" / f"{method}__d{density:g}__s{seed}.pt"
    if path.is_file():
        try:
            return _masks.load_masks(path), 0.0
        except (ValueError, OSError):
            log.warning("recomputing unreadable cached mask %s", path)
    model = ctx.theta(seed)
    data = None
    if method in DATA_METHODS or method == "synflow":
        nb = ctx.cfg["experiment"]["baseline_batches"]
        data = ctx.bundle.train_loader
        if nb is not None:
            data = [b for _, b in zip(range(nb), data)]
    pseed = candidate_seed(seed, 0)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(pseed)
        masks = prune(model, method, density, data=data, seed=pseed, **ctx.cfg["pai"])
    elapsed = time.perf_counter() - t0
    masks = {k: v.detach().cpu().bool() for k, v in masks.items()}
    _masks.save_masks(path, masks, meta={"method": method, "seed": seed, "density": density})
    return masks, elapsed


def _run_unit(ctx: _Context, unit: Unit) -> Dict[str, Any]:
    cfg = ctx.cfg
    e = cfg["experiment"]
    t0 = time.perf_counter()
    extra: Dict[str, Any] = {}
    if unit.kind == "pai":
        masks, prune_s = _baseline_masks(ctx, unit.method, unit.density, unit.seed)
        start = ctx.theta(unit.seed)
        theta_w = _weights_of(start)
    elif unit.kind == "sampler":
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



def _history_summary(history) -> Dict[str, Any]:
    """A short JSON form of a :class:`fspai.history.History` (long tables thinned to ~50 rows)."""
    out = {}
    for k, v in history.to_dict().items():
        if isinstance(v, list) and len(v) > 50:
            v = v[::max(1, len(v) // 50)]
        out[k] = v
    return out


def _lth(ctx: _Context, unit: Unit):
    """IMP with rewinding from the seed's random init; returns (masks, rewound model, s, info)."""
    lth = ctx.cfg["lth"]
    steps = lth["steps"] if lth["steps"] is not None else ctx.train_cfg.steps
    epochs = None if steps is not None else ctx.train_cfg.epochs
    model = ctx.build(unit.seed)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(unit.seed)
        res = imp(model, ctx.bundle.train_loader, unit.density, rounds=lth["rounds"],
                  rewind_to=lth["rewind_steps"], seed=unit.seed, train_final=False,
                  config=ctx.train_cfg, steps=steps, epochs=epochs, device=ctx.device)
    elapsed = time.perf_counter() - t0
    start = ctx.build(unit.seed)
    start.load_state_dict(res.state_dict)
    return res.masks, start, elapsed, {"history": jsonable(res.history)}


def _run_set(ctx: _Context) -> Dict[str, Any]:
    """Train one mask with SET (``fspai.train.fit_set``) and record the network-level coordinate
    (layer means, current weights) at the start and after every topology update."""
    cfg = ctx.cfg
    sc = cfg["set"]
    e = cfg["experiment"]
    seed = e["seeds"][0]
    density = sc["density"] if sc["density"] is not None else e["densities"][0]
    steps = sc["steps"] if sc["steps"] is not None else ctx.train_cfg.steps
    epochs = None if steps is not None else ctx.train_cfg.epochs
    masks, _ = _baseline_masks(ctx, sc["method"], density, seed)
    model = ctx.theta(seed)
    t0 = time.perf_counter()
    hist = ctx.train(model, masks, seed, evaluate_each_epoch=True, steps=steps, epochs=epochs,
                     sparse="set",
                     set_update_every=sc["update_every"], set_prune_rate=sc["prune_rate"],
                     record_metrics=True, metrics_convention=e["convention"])
    ev = ctx.evaluate(model)
    by_step: Dict[int, List[Mapping[str, Any]]] = {}
    for row in hist.metrics:
        by_step.setdefault(int(row["step"]), []).append(row)
    records = []
    for step in sorted(by_step):
        layers = by_step[step]
        rec: Dict[str, Any] = {"step": step}
        for key in CORR_METRICS:
            vals = np.array([axis_value(l, key) for l in layers], dtype=float)
            vals = vals[np.isfinite(vals)]
            rec[key] = float(vals.mean()) if len(vals) else float("nan")
        rec["ramanujan_fraction"] = float(np.mean([num(l.get("delta_r")) > 0 for l in layers]))
        records.append(rec)
    accuracy = [{"step": int(r["step"]), "accuracy": float(r["test_acc"])}
                for r in hist.epochs if r.get("test_acc") is not None]
    return {"method": sc["method"], "density": density, "seed": seed, "steps": steps,
            "update_every": sc["update_every"], "prune_rate": sc["prune_rate"],
            "records": records, "accuracy": accuracy, "final_accuracy": ev["accuracy"],
            "seconds": time.perf_counter() - t0}



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
    ctx = _Context(cfg, run_dir, progress)        # checks the device before any file is written
    run_dir.mkdir(parents=True, exist_ok=True)
    units = plan_units(cfg)
    atomic_write_text(run_dir / "config.toml", to_toml(cfg))
    write_json(run_dir / "config.json", cfg)
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
        write_json(path, res, indent=1)
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
                write_json(path, set_res, indent=1)
                ran.append("set_evolution")
        else:
            skipped.append("set_evolution")

    rows = [results[u.id]["row"] for u in units]
    order = _method_order(cfg)
    summary = summarize(rows, order)
    corr = correlations(rows) + correlations(rows, suffix="_trained")
    table = markdown_table(summary)
    files: Dict[str, Path] = {}
    files["results_csv"] = write_csv(run_dir / "results.csv", rows)
    files["summary_csv"] = write_csv(run_dir / "summary.csv", summary)
    files["correlations_csv"] = write_csv(run_dir / "correlations.csv", corr)
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
    atomic_write_text(files["results_md"], "\n".join(md))
    if plots:
        files.update(make_plots(run_dir, cfg, rows, results, units, corr, set_res))
    wall = time.perf_counter() - t0
    write_json(run_dir / "timing.json", {"wall_s": wall, "ran": ran, "skipped": skipped},
               indent=1)
    return ExperimentResult(run_dir=run_dir, config=cfg, rows=rows, summary=summary,
                            correlations=corr, table_markdown=table, files=files, ran=ran,
                            skipped=skipped, wall_s=wall)


def _read_unit(path: Path, key: str = "row") -> Optional[Dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (OSError, ValueError):
        log.warning("ignoring unreadable unit file %s", path)
        return None
    return data if isinstance(data, dict) and key in data else None

