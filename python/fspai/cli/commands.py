"""The ``fspai`` commands: each parses nothing and computes nothing of its own -- it reads its
inputs, calls the library, and prints."""
from __future__ import annotations

import csv
import io
import logging
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .parser import UsageError

__all__ = ["cmd_metrics", "cmd_prune", "cmd_train", "cmd_experiment", "COMMANDS"]

PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def _setup_logging(args) -> None:
    level = logging.WARNING
    if getattr(args, "verbose", 0) >= 2:
        level = logging.DEBUG
    elif getattr(args, "verbose", 0) == 1:
        level = logging.INFO
    if getattr(args, "quiet", False):
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("fspai").setLevel(level)


def _info(args, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr, flush=True)


def _bundle(args):
    from .. import data as _data
    opts: Dict[str, Any] = {"batch_size": args.batch_size, "seed": args.seed}
    if args.data_root:
        opts["root"] = args.data_root
    return _data.load(args.dataset, **opts)


def _device(args):
    from .._torch_utils import resolve_device
    try:
        return resolve_device(args.device)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--device: {exc}") from None


def _build_model(args, bundle, device):
    from .. import models as _models
    kw: Dict[str, Any] = {}
    if getattr(args, "hidden", None):
        kw["hidden"] = tuple(args.hidden)
    return _models.build(args.model, bundle.num_classes, input_shape=bundle.input_shape,
                         init=args.init, seed=args.seed, **kw).to(device)


def _read_masks_or_checkpoint(path: str) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]], str]:
    """(masks, weights or None, kind) from a mask file, an fspai checkpoint or a state dict."""
    import torch
    from .. import masks as _masks
    from ..checkpoint import load_state
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"file not found: {p}")
    if p.is_dir():
        raise UsageError(f"{p} is a directory, expected a mask file or checkpoint")
    if p.with_name(p.name + ".json").is_file():
        return _masks.load_masks(p), None, "mask file"
    if p.suffix.lower() == ".npz":
        return _masks.load_masks(p, require_sidecar=False), None, "mask file"
    ck = load_state(p)
    if ck.state_dict and all(v.dtype == torch.bool for v in ck.state_dict.values()):
        return dict(ck.state_dict), None, "mask file"      # a bare dict of masks
    masks, weights = _masks.masks_and_weights(ck.state_dict)
    if ck.masks:
        masks = dict(ck.masks)
        weights = {k: weights[k] for k in masks if k in weights}
    if not masks:
        raise UsageError(f"{p}: no prunable (>= 2-D) weight tensors found")
    return masks, weights, "checkpoint" if ck.version is not None else "state dict"


def _write_table(table, fmt: str) -> str:
    if fmt == "json":
        return table.to_json() + "\n"
    if fmt == "csv":
        rows = table.to_dicts()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["name"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    summ = table.summary()
    return (table.to_markdown() + "\n" +
            f"\n{len(table)} layers, density {summ['density']:.4g}, mean coordinate "
            f"norm {table.mean_coordinate_norm():.4g}, Ramanujan layers "
            f"{100 * summ['ramanujan_fraction']:.0f} %\n")


def cmd_metrics(args) -> int:
    from ..checkpoint import load_weights
    from ..tables import model_metrics
    if not args.path:
        raise UsageError("metrics needs the path of a mask file or checkpoint")
    if args.plot and Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
        raise UsageError(f"--plot must end in {', '.join(PLOT_SUFFIXES)}, got {args.plot}")
    masks, weights, kind = _read_masks_or_checkpoint(args.path)
    if args.weights:
        from ..masks import masks_and_weights
        _, w = masks_and_weights(load_weights(args.weights))
        missing = [n for n in masks if n not in w]
        if missing:
            raise UsageError(f"{args.weights}: no weights for layers {missing[:3]}"
                             f"{' ...' if len(missing) > 3 else ''}")
        weights = {n: w[n] for n in masks}
    table = model_metrics(masks, weights=weights, convention=args.convention)
    text = _write_table(table, args.format)
    if args.output:
        from .._jsonio import atomic_write_text
        atomic_write_text(args.output, text)
        _info(args, f"wrote {args.output} ({kind})")
    else:
        sys.stdout.write(text)
    if args.plot:
        from .. import plots
        records = [{**d, **{a: d.get(f"coord_{a}", d.get(a)) for a in plots.AXES}}
                   for d in table.to_dicts()]
        _info(args, f"wrote {plots.layer_metrics_plot(records, args.plot, title=Path(args.path).name)}")
    return 0


def _sample(args, model, bundle, device, opts):
    """``fspai prune --sample``: the Full-Spectrum sampler (collective under torchrun)."""
    from ..distributed import dist_info, init_distributed
    from ..sampler import FullSpectrumSampler
    init_distributed()  # registers the process group's cleanup at exit
    sampler = FullSpectrumSampler(
        model, args.method, args.density, data=bundle.train_loader,
        population=args.population, save_interval=args.save_interval, seed=args.seed,
        rule=args.rule, budget=args.budget, weights=args.weights,
        pretrain_steps=args.pretrain_steps, candidate_batches=args.candidate_batches,
        noise=args.noise, scope=args.scope, save_dir=args.save_dir, device=device,
        prune_options=opts, baseline_batches=args.data_batches,
        progress=not args.quiet and sys.stderr.isatty())
    res = sampler.run()
    rank, world = dist_info()
    if rank == 0:
        tm = res.timings
        _info(args, f"sampler: {res.accepted} of {args.population} candidates accepted, mean "
                    f"coordinate norm {res.baseline_mean_norm:.4g} -> {res.mean_norm:.4g}, "
                    f"density {res.baseline_density:.4g} -> {res.realised_density:.4g}, "
                    f"{tm['candidates_per_s']:.2f} candidates/s on {world} process(es), "
                    f"{100 * tm['metrics_fraction']:.0f} % of the time in metrics")
    return res, rank


def cmd_prune(args) -> int:
    from .. import masks as _masks
    from ..checkpoint import save_checkpoint
    from ..lottery import imp
    from ..pai import prune
    from ..weights import prepare_weights
    if not args.output:
        raise UsageError("prune needs --output FILE (.pt or .npz)")
    if Path(args.output).suffix.lower() not in (".pt", ".pth", ".npz"):
        raise UsageError(f"--output must end in .pt, .pth or .npz, got {args.output}")
    if args.weights not in ("init", "pretrained") and not Path(args.weights).is_file():
        raise FileNotFoundError(f"weights checkpoint not found: {args.weights}")
    if args.method == "imp" and args.sample:
        raise UsageError("--sample needs a PaI base method, not imp")
    device = _device(args)
    bundle = _bundle(args)
    model = _build_model(args, bundle, device)
    t0 = time.perf_counter()
    meta: Dict[str, Any] = {"method": args.method, "seed": args.seed, "density": args.density,
                            "model": args.model, "dataset": args.dataset}
    opts: Dict[str, Any] = {}
    if args.method in ("synflow", "itersnip") and args.rounds:
        opts["rounds"] = args.rounds
    theta = model
    if args.method == "imp":
        res = imp(model, bundle, args.density, rounds=args.rounds or 3,
                  rewind_to=args.rewind_steps, steps=args.train_steps, seed=args.seed,
                  lr=args.lr, train_final=False, device=device)
        masks, theta = res.masks, res.state_dict
        meta.update({"rewind_to": args.rewind_steps, "rounds": args.rounds or 3})
    elif args.sample:
        res, rank = _sample(args, model, bundle, device, opts)
        if rank != 0:
            return 0
        masks = res.masks
        meta.update({"method": f"fullspectrum-{args.method}", "sampler": res.to_dict()})
    else:
        prepare_weights(model, args.weights, data=bundle.train_loader,
                        steps=args.pretrain_steps, seed=args.seed, device=device)
        if args.data_batches:
            opts["num_batches"] = args.data_batches
        masks = prune(model, args.method, args.density, data=bundle.train_loader,
                      scope=args.scope, seed=args.seed, **opts)
    if args.save_weights:
        state = theta if isinstance(theta, dict) else theta.state_dict()
        save_checkpoint(args.save_weights, state, meta={
            "kind": "imp-rewind" if args.method == "imp" else "theta", "model": args.model,
            "dataset": args.dataset, "seed": args.seed})
    meta["seconds"] = time.perf_counter() - t0
    path = _masks.save_masks(args.output, masks, meta=meta)
    _info(args, f"wrote {path} ({len(masks)} layers, density "
                f"{_masks.realised_density(masks):.4g}, {meta['seconds']:.1f} s)")
    return 0


def cmd_train(args) -> int:
    from .. import masks as _masks
    from ..checkpoint import load_weights, save_checkpoint
    from ..train import evaluate, fit
    if args.steps and args.epochs:
        raise UsageError("give --steps or --epochs, not both")
    if args.set_training and not args.masks and args.density is None:
        raise UsageError("--set needs --masks or --density")
    if args.weights and not Path(args.weights).is_file():
        raise FileNotFoundError(f"weights checkpoint not found: {args.weights}")
    masks = _masks.load_masks(args.masks, require_sidecar=False) if args.masks else None
    device = _device(args)
    bundle = _bundle(args)
    model = _build_model(args, bundle, device)
    if args.weights:
        try:
            model.load_state_dict(load_weights(args.weights))
        except RuntimeError as exc:
            raise UsageError(f"{args.weights}: weights do not fit the model "
                             f"({str(exc).splitlines()[0]})") from None
    if masks is not None:
        try:
            _masks.validate_masks(model, masks)
        except (KeyError, ValueError) as exc:
            raise UsageError(f"{args.masks}: masks do not fit model {args.model!r}: "
                             f"{str(exc).splitlines()[0][:300]}") from None
    length = {"epochs": args.epochs} if args.epochs else {"steps": args.steps or 1000}
    opts = dict(lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                seed=args.seed, device=device, progress=not args.quiet and sys.stderr.isatty(),
                **length)
    if args.set_training:
        opts.update(sparse="set", density=args.density, set_update_every=args.update_every,
                    set_prune_rate=args.prune_rate)
    t0 = time.perf_counter()
    fit(model, bundle.train_loader, masks=masks, **opts)
    elapsed = time.perf_counter() - t0
    ev = evaluate(model, bundle.test_loader, device=device)
    final_masks = _masks.extract_masks(model) or None
    dens = _masks.realised_density(final_masks) if final_masks else 1.0
    print(f"test accuracy {100 * ev['acc']:.2f} % (loss {ev['loss']:.4f}), density {dens:.4g}, "
          f"{elapsed:.1f} s")
    if args.output:
        save_checkpoint(args.output, model.state_dict(), masks=final_masks, meta={
            "kind": "trained", "model": args.model, "dataset": args.dataset, "seed": args.seed,
            "accuracy": ev["acc"], "seconds": elapsed})
        _info(args, f"wrote {args.output}")
    return 0


def cmd_experiment(args) -> int:
    from .. import experiment as ex
    if args.list_presets:
        for name in ex.list_presets():
            print(name)
        for name in ex.list_suites():
            print(f"{name} (suite: {', '.join(ex.suite_cases(name)['presets'])})")
        return 0
    preset = "quick" if args.quick else args.preset
    if preset is not None and preset in ex.list_suites():
        return _run_suite(args, ex, preset)
    overrides: Dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    put("experiment", "dataset", args.dataset)
    put("experiment", "model", args.model)
    put("experiment", "densities", args.densities)
    put("experiment", "seeds", args.seeds)
    put("experiment", "methods", args.methods)
    put("experiment", "device", args.device)
    put("sampler", "methods", args.sampler_methods)
    put("sampler", "population", args.population)
    put("sampler", "protocol", args.protocol)
    put("train", "steps", args.steps)
    put("experiment", "threads", args.threads)
    if args.no_lth:
        put("lth", "enabled", False)
    if args.no_set:
        put("set", "enabled", False)
    cfg = ex.load_config(args.config, preset=preset, overrides=None)
    cfg = ex.load_config(cfg, overrides=overrides)
    if args.override:        # the whole configuration is validated here, before any run
        cfg = ex.load_config(cfg, overrides=list(args.override))
    if args.print_config:
        sys.stdout.write(ex.to_toml(cfg))
        return 0
    run_dir = ex.run_dir_for(cfg, args.out)
    units = ex.plan_units(cfg)
    _info(args, f"run directory: {run_dir} ({len(units)} units)")
    counter = {"i": 0}

    def on_unit(unit, row, skipped) -> None:
        counter["i"] += 1
        tag = "skip" if skipped else f"{row.get('total_s', 0):.1f} s"
        _info(args, f"[{counter['i']:>3}/{len(units)}] {unit.method:<12} d={unit.density:<6g} "
                    f"seed={unit.seed}: acc {100 * row['accuracy']:.2f} %  norm "
                    f"{row.get('coordinate_norm', float('nan')):.3f}  ({tag})")

    res = ex.run_experiment(cfg, out=args.out, plots=not args.no_plots,
                            progress=not args.quiet and sys.stderr.isatty(), on_unit=on_unit)
    print(res.table_markdown)
    print()
    corr = [c for c in res.correlations
            if c["metric"] == "coordinate_norm" and c["scope"] == "all"]
    if corr:
        c = corr[0]
        print(f"coordinate norm vs accuracy (all {c['n']} units): Pearson r = "
              f"{_num(c['pearson_r'])}, Spearman rho = {_num(c['spearman_rho'])}")
    print(f"ran {len(res.ran)} unit(s), skipped {len(res.skipped)} finished, "
          f"{res.wall_s:.1f} s")
    print(f"run directory: {res.run_dir}")
    return 0


def _run_suite(args, ex, name: str) -> int:
    """``--preset <suite>``: every case with its own preset (no per-run flags apply)."""
    if args.config or args.override or args.print_config:
        raise SystemExit(f"fspai experiment: --preset {name} is a suite of presets; "
                         "--config/--override/--print-config apply to single experiments")
    cases = ex.suite_cases(name)
    _info(args, f"suite {name}: {', '.join(cases['presets'])}"
                + (f" (+ optional {', '.join(cases['optional'])})" if cases["optional"] else ""))

    def on_unit(unit, row, skipped) -> None:
        tag = "skip" if skipped else f"{row.get('total_s', 0):.1f} s"
        _info(args, f"{unit.id:<28} val {100 * row['val_acc']:.2f} %  test "
                    f"{100 * row['test_acc']:.2f} %  ({tag})")

    res = ex.run_suite(name, out=args.out, plots=not args.no_plots,
                       progress=not args.quiet and sys.stderr.isatty(), on_unit=on_unit)
    print(res.verdict.text if res.verdict is not None else "no sampler units")
    for case, why in res.skipped.items():
        print(f"skipped {case}: {why}")
    print(f"report: {res.files['report_md']}")
    return 0


def _num(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if f != f else f"{f:.3f}"


COMMANDS = {"metrics": cmd_metrics, "prune": cmd_prune, "train": cmd_train,
            "experiment": cmd_experiment}
