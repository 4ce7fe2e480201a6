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
from ..sampler.protocols import get_protocol
from ..train import OptimConfig, TrainConfig, evaluate, fit
from ..weights import prepare_weights
from .config import Unit, config_hash, load_config, plan_units, to_toml, _method_order
from .readout import readout
from .. import stats
from .report import (CORR_METRICS, axis_value, correlation_markdown, make_plots, markdown_table,
                     num, paired_markdown, summarize, throughput, throughput_markdown, write_csv)

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
        self._val_loader = None
        self._theta: Dict[int, Dict[str, Any]] = {}
        self.protocol = get_protocol(cfg["sampler"]["protocol"])

    @property
    def bundle(self):
        """The data with ``experiment.val_fraction`` of the training set held out as
        ``val_loader`` (a fixed split, the same for every seed and unit)."""
        if self._bundle is None:
            b = _data.load(self.cfg["experiment"]["dataset"], **self.cfg["data"])
            self._val_loader = _split_validation(b, self.cfg["experiment"]["val_fraction"],
                                                 int(self.cfg["data"].get("seed", 0)))
            self._bundle = b
        return self._bundle

    @property
    def val_loader(self):
        return self.bundle and self._val_loader

    def theta_seed(self, seed: int) -> int:
        """The seed whose θ* a unit of ``seed`` uses: itself, or 0 under a protocol that
        shares the seed-0 θ* (``released``)."""
        return 0 if self.protocol.theta == "shared-seed0" else seed

    def build(self, seed: int):
        e = self.cfg["experiment"]
        b = self.bundle
        model = _models.build(e["model"], b.num_classes, input_shape=b.input_shape,
                              init=e["init"], seed=seed, **self.cfg["model"])
        return model.to(self.device)

    def theta(self, seed: int):
        """A fresh model holding θ* of ``seed`` (cached on disk; seed 0's under a protocol
        with a shared θ*)."""
        seed = self.theta_seed(seed)
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
        """Accuracy on the held-out validation split and on the test set."""
        ev = evaluate(model, self.bundle.test_loader, device=self.device)
        out = {"accuracy": ev["acc"], "loss": ev["loss"], "test_acc": ev["acc"],
               "val_acc": float("nan"), "val_loss": float("nan")}
        if self.val_loader is not None:
            va = evaluate(model, self.val_loader, device=self.device)
            out.update(val_acc=va["acc"], val_loss=va["loss"])
        return out


def _split_validation(bundle, fraction: float, seed: int):
    """Hold out ``fraction`` of ``bundle.train_loader``'s dataset (a seeded permutation, fixed
    for the run): the bundle's train loader is rebuilt on the rest; returns the validation
    loader (None when ``fraction`` is 0)."""
    if fraction <= 0:
        return None
    from torch.utils.data import Subset
    loader = bundle.train_loader
    ds = loader.dataset
    n = len(ds)
    n_val = int(round(fraction * n))
    if not 0 < n_val < n:
        raise ValueError(f"experiment.val_fraction={fraction} leaves no validation or no "
                         f"training sample of {n}")
    perm = np.random.default_rng([int(seed), 0x5A1]).permutation(n)
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    bundle.train_loader = _data._loader(Subset(ds, train_idx.tolist()), loader.batch_size, True,
                                        seed, num_workers=loader.num_workers,
                                        drop_last=loader.drop_last)
    bundle.meta.update(val_size=int(n_val), train_size=int(n - n_val))
    return _data._loader(Subset(ds, val_idx.tolist()), bundle.test_loader.batch_size, False,
                         seed, num_workers=loader.num_workers)


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


def _sampler_unit(ctx: _Context, unit: Unit, results: Mapping[str, Dict[str, Any]]):
    """Run the sampler on the unit's base mask, then read it out: every snapshot trained from
    θ*, the reported one chosen on the validation split (:mod:`fspai.experiment.readout`).
    Each snapshot's training is its own resumable file ``units/<unit>/snap_<t>.json``."""
    cfg, s = ctx.cfg, ctx.cfg["sampler"]
    base_masks, _ = _baseline_masks(ctx, unit.base, unit.density, unit.seed)
    model = ctx.theta(unit.seed)
    sampler = FullSpectrumSampler(
        model, unit.base, unit.density, data=ctx.bundle.train_loader,
        population=s["population"], save_interval=s["save_interval"], seed=unit.seed,
        rule=s["rule"], budget=s["budget"], weights="init", protocol=s["protocol"],
        candidate_batches=s["candidate_batches"], noise=s["noise"],
        convention=cfg["experiment"]["convention"], baseline=base_masks,
        save_dir=ctx.run_dir / "masks" / f"{unit.id}", keep_snapshots=True,
        prune_options=cfg["pai"], device=ctx.device, progress=ctx.progress)
    t1 = time.perf_counter()
    res = sampler.run()
    prune_s = time.perf_counter() - t1
    snaps = {sn.t: sn for sn in res.snapshots}
    base_unit = results.get(Unit(unit.base, unit.density, unit.seed).id)
    base_row = None if base_unit is None else base_unit["row"]
    trained: Dict[int, Any] = {}     # t -> (trained model, history, evaluation), this process

    def train_eval(t: int) -> Dict[str, float]:
        path = ctx.run_dir / "units" / unit.id / f"snap_{t}.json"
        rec = _read_unit(path, key="val_acc")
        if rec is None:
            start = ctx.theta(unit.seed)
            hist = ctx.train(start, snaps[t].masks, unit.seed)
            ev = ctx.evaluate(start)
            trained[t] = (start, hist, ev)
            rec = {"t": t, "val_acc": ev["val_acc"], "test_acc": ev["test_acc"],
                   "test_loss": ev["loss"]}
            write_json(path, rec, indent=1)
        return rec

    ro = readout(sorted(snaps), train_eval, baseline=base_row)
    masks = snaps[ro["snapshot"]].masks
    _masks.save_masks(ctx.run_dir / "masks" / f"{unit.id}.pt", masks,
                      meta={"method": unit.method, "seed": unit.seed, "density": unit.density,
                            "snapshot": ro["snapshot"], "sampler": res.to_dict()})
    info = {k: v for k, v in res.to_dict().items() if k != "layers"}
    info["readout"] = ro
    info["layers_final"] = res.to_dict()["layers"]
    return masks, prune_s, info, trained.get(ro["snapshot"])


def _run_unit(ctx: _Context, unit: Unit,
              results: Optional[Mapping[str, Dict[str, Any]]] = None) -> Dict[str, Any]:
    e = ctx.cfg["experiment"]
    t0 = time.perf_counter()
    extra: Dict[str, Any] = {}
    done = None        # (trained model, history, evaluation) when the readout already trained it
    if unit.kind == "pai":
        masks, prune_s = _baseline_masks(ctx, unit.method, unit.density, unit.seed)
        start = ctx.theta(unit.seed)
    elif unit.kind == "sampler":
        masks, prune_s, extra["sampler"], done = _sampler_unit(ctx, unit, results or {})
        start = ctx.theta(unit.seed)
    else:  # lth
        masks, start, prune_s, info = _lth(ctx, unit)
        extra["lth"] = info
    theta_w = _weights_of(start)
    metrics_init = _mask_metrics(masks, theta_w, e["convention"])
    tt = time.perf_counter()
    if done is None:
        history = ctx.train(start, masks, unit.seed)
        ev = ctx.evaluate(start)
    else:
        start, history, ev = done
    train_s = time.perf_counter() - tt
    trained_w = _weights_of(start)
    metrics_trained = _mask_metrics(masks, trained_w, e["convention"])
    row = {
        "unit": unit.id, "method": unit.method, "kind": unit.kind, "base": unit.base,
        "density": unit.density, "seed": unit.seed,
        "realised_density": float(_masks.realised_density(masks)),
        "val_acc": float(ev["val_acc"]), "test_acc": float(ev["test_acc"]),
        "accuracy": float(ev["accuracy"]), "test_loss": float(ev.get("loss", float("nan"))),
        **{k: v for k, v in metrics_init["summary"].items()},
        **{f"{k}_trained": v for k, v in metrics_trained["summary"].items()},
        "prune_s": float(prune_s), "train_s": float(train_s),
        "total_s": float(time.perf_counter() - t0),
    }
    if unit.kind == "sampler":
        tm, ro = extra["sampler"]["timings"], extra["sampler"]["readout"]
        row.update({"snapshot": ro["snapshot"], "n_snapshots": len(ro["snapshots"]),
                    "best_test_acc_released": ro["best_test_acc_released"],
                    "sampler_accepted": extra["sampler"]["accepted"],
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
    verdict: Any = None          # fspai.stats.Verdict (None without sampler units)


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
        res = _run_unit(ctx, unit, results)
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
    files, md, corr, summary, table, verdict = _write_tables(cfg, run_dir, rows, set_res)
    if plots:
        files.update(make_plots(run_dir, cfg, rows, results, units, corr, set_res))
    wall = time.perf_counter() - t0
    write_json(run_dir / "timing.json", {"wall_s": wall, "ran": ran, "skipped": skipped},
               indent=1)
    return ExperimentResult(run_dir=run_dir, config=cfg, rows=rows, summary=summary,
                            correlations=corr, table_markdown=table, files=files, ran=ran,
                            skipped=skipped, wall_s=wall, verdict=verdict)


def _write_tables(cfg, run_dir: Path, rows, set_res):
    """results.csv, summary.csv, paired.csv, correlations.csv, throughput.csv and results.md."""
    e, s = cfg["experiment"], cfg["sampler"]
    order = _method_order(cfg)
    summary = summarize(rows, order, accuracy="test_acc")
    corr = stats.correlations(rows, CORR_METRICS, accuracy="test_acc") + stats.correlations(
        rows, CORR_METRICS, accuracy="test_acc", suffix="_trained")
    paired = stats.paired_rows(rows, "test_acc")
    tp = throughput(rows, model=f"{e['dataset']}/{e['model']}")
    verdict = stats.claim_verdict(rows, "test_acc") if paired else None
    table = markdown_table(summary)
    files: Dict[str, Path] = {}
    files["results_csv"] = write_csv(run_dir / "results.csv", rows)
    files["summary_csv"] = write_csv(run_dir / "summary.csv", summary)
    files["paired_csv"] = write_csv(run_dir / "paired.csv", paired,
                                    list(stats.PAIRED_COLUMNS) + [
                                        k for k in (paired[0] if paired else {})
                                        if k not in stats.PAIRED_COLUMNS])
    files["correlations_csv"] = write_csv(run_dir / "correlations.csv", corr)
    files["throughput_csv"] = write_csv(run_dir / "throughput.csv", tp)
    released = [r for r in rows if r.get("kind") == "sampler"]
    md = [f"# fspai experiment `{e['name']}`", "",
          f"dataset **{e['dataset']}**, model **{e['model']}**, seeds {e['seeds']}, θ* = "
          f"{e['weights']}" + (f" ({e['pretrain_steps']} SGD steps)"
                               if e['weights'] == 'pretrained' else "")
          + f", sampler protocol **{s['protocol']}**, N={s['population']} K="
            f"{s['save_interval']} rule={s['rule']} budget={s['budget']}; validation split "
            f"{e['val_fraction']:g} of the training data", "",
          "## Does the sampler beat its base method?", "",
          verdict.text if verdict is not None else "No sampler units in this run.", "",
          "Seed-paired differences (sampler − base) of test accuracy; the sampler's snapshot is "
          "chosen on the validation split:", "", paired_markdown(paired), "",
          "## Test accuracy", "", table, "",
          "Coordinates: mean over layers with θ* weights (before training); Δ vs base: paired "
          "by seed.", ""]
    if released:
        md += ["## Released readout (selected on the test set; for comparison only)", "",
               "The released code reports the best test accuracy over all trained snapshots "
               "(m0 included). That number is chosen on the test set and is optimistic:", "",
               "| unit | chosen on validation: snapshot, test acc | best by test (released) |",
               "|---|---|---|"]
        md += [f"| {r['unit']} | t={r['snapshot']}, {100 * r['test_acc']:.2f} % | "
               f"{100 * r['best_test_acc_released']:.2f} % |" for r in released]
        md += ["", "## Sampler throughput (candidates per second)", "",
               throughput_markdown(tp), ""]
    md += ["## Correlation with test accuracy (coordinates at θ*; 95 % CIs)", "",
           correlation_markdown([c for c in corr if not c["metric"].endswith("_trained")]), ""]
    if set_res is not None:
        md += ["## Metric evolution under SET", "",
               f"{set_res['method']} mask, density {set_res['density']:g}, "
               f"{len(set_res['records'])} snapshots, final accuracy "
               f"{100 * set_res['final_accuracy']:.2f} %", ""]
    files["results_md"] = run_dir / "results.md"
    atomic_write_text(files["results_md"], "\n".join(md))
    return files, md, corr, summary, table, verdict


def _read_unit(path: Path, key: str = "row") -> Optional[Dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (OSError, ValueError):
        log.warning("ignoring unreadable unit file %s", path)
        return None
    return data if isinstance(data, dict) and key in data else None

