"""``fspai`` command line: ``metrics``, ``prune``, ``train``, ``experiment``.

Every subcommand accepts ``--config FILE.toml``: a TOML file whose keys are the subcommand's long
option names (dashes or underscores), either at the top level or under a table named after the
subcommand (``[prune]``); explicit flags override it.  ``fspai experiment`` reads the nested
experiment schema instead (``fspai.experiment.DEFAULTS``; presets in ``fspai/configs``).

Exit codes: 0 success, 2 usage or input error (bad flag, missing or unreadable file, invalid
configuration), 1 runtime failure, 130 interrupted.  Errors are one line on stderr; ``--debug``
shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["main", "build_parser", "UsageError"]

PROG = "fspai"
_PAI_METHODS = ("random", "erk", "magnitude", "snip", "grasp", "synflow", "itersnip")


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage + message."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _Formatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` only where a default means something."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        meaningless = (default is None or default is False or default is argparse.SUPPRESS
                       or (isinstance(default, list) and not default))
        if ("%(default)" not in text and not meaningless and action.option_strings
                and not isinstance(action, argparse._CountAction)):
            text += " (default: %(default)s)"
        return text


class _TopFormatter(_Formatter, argparse.RawDescriptionHelpFormatter):
    pass


# --------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------

def _csv_floats(text: str) -> List[float]:
    try:
        return [float(x) for x in str(text).replace(" ", "").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def _csv_ints(text: str) -> List[int]:
    try:
        return [int(x) for x in str(text).replace(" ", "").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _csv_words(text: str) -> List[str]:
    return [x.strip().lower() for x in str(text).split(",") if x.strip()]


def _density(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    if not (0.0 < v <= 1.0):
        raise argparse.ArgumentTypeError(f"density must be in (0, 1] (fraction kept), got {v}")
    return v


def _pos_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def _add_common(p: argparse.ArgumentParser, *, experiment: bool = False) -> None:
    g = p.add_argument_group("general")
    if experiment:
        g.add_argument("--config", metavar="FILE",
                       help="experiment TOML file (sections [experiment], [data], [model], "
                            "[pai], [sampler], [train], [lth], [set]; see the bundled presets "
                            "and fspai.experiment.DEFAULTS)")
    else:
        g.add_argument("--config", metavar="FILE",
                       help="TOML file with option values (keys = long option names, top "
                            "level or under a table named after the subcommand); flags "
                            "override it")
    g.add_argument("--threads", type=_pos_int, metavar="N",
                   help="torch intra-op threads (default: torch's choice)")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="more log output (-v info, -vv debug)")
    g.add_argument("-q", "--quiet", action="store_true", help="only errors and the final result")
    g.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def _add_model_data(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = p.add_argument_group("model and data")
    g.add_argument("--dataset", default="mnist1d",
                   help="dataset: mnist1d, digits (offline), cifar10, cifar100 (from --data-root)")
    g.add_argument("--data-root", metavar="DIR",
                   help="data/cache folder (default $FSPAI_DATA or ~/.cache/fspai)")
    g.add_argument("--model", default="mlp",
                   help="model: mlp, cnn1d, resnet18, resnet34, vgg16")
    g.add_argument("--hidden", type=_csv_ints, metavar="N,N",
                   help="MLP hidden sizes, e.g. 256,256 (default: the model's)")
    g.add_argument("--init", default="pytorch", choices=("pytorch", "paper", "kaiming"),
                   help="weight initialisation scheme of the built model")
    g.add_argument("--batch-size", type=_pos_int, default=128, help="training batch size")
    g.add_argument("--seed", type=_nonneg_int, default=0,
                   help="seed for the model init, pruning and data order")
    g.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__
    parser = _Parser(
        prog=PROG, formatter_class=_TopFormatter,
        description="Graph-spectral analysis of pruning masks and Full-Spectrum pruning at "
                    "initialization (fspai).",
        epilog="Examples:\n"
               "  fspai experiment --quick              # MNIST-1D demo, a few minutes on CPU\n"
               "  fspai prune --method snip --density 0.05 --output snip.pt\n"
               "  fspai prune --method snip --sample --population 100 --output fs.pt\n"
               "  fspai train --masks fs.pt --steps 2000 --output fs_trained.pt\n"
               "  fspai metrics fs_trained.pt --plot layers.png\n"
               "Run 'fspai <command> --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"fspai {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # metrics -------------------------------------------------------------------------------
    p = sub.add_parser(
        "metrics", formatter_class=_Formatter,
        help="per-layer spectral metrics of a mask file or checkpoint",
        description="Per-layer graph-spectral metrics (Ramanujan gap, weighted spectral gap, "
                    "IMDB, full-spectrum coordinate, ...) of a mask file (fspai prune output, "
                    ".pt/.npz) or a checkpoint (a state_dict or fspai train output).")
    p.add_argument("path", nargs="?", help="mask file or checkpoint")
    p.add_argument("--weights", metavar="CKPT",
                   help="checkpoint whose weights give the weighted metrics of a mask file "
                        "(default: unweighted, i.e. |W| = mask)")
    p.add_argument("--convention", default="neurips23", choices=("neurips23", "iclr23"),
                   help="metric conventions (SPEC.md)")
    p.add_argument("--format", default="markdown", choices=("markdown", "csv", "json"),
                   help="output format of the table")
    p.add_argument("--output", "-o", metavar="FILE", help="write the table here (default stdout)")
    p.add_argument("--plot", metavar="PNG", help="also write a per-layer bar chart")
    _add_common(p)

    # prune ---------------------------------------------------------------------------------
    p = sub.add_parser(
        "prune", formatter_class=_Formatter,
        help="make a pruning mask (PaI method, Full-Spectrum sampler, or IMP/LTH)",
        description="Prune a freshly built model with a PaI method, with the Full-Spectrum "
                    "sampler on top of one (--sample; under torchrun the population is sharded "
                    "across ranks), or with iterative magnitude pruning (--method imp), and "
                    "write the mask file (+ JSON sidecar).")
    p.add_argument("--method", default="snip", choices=_PAI_METHODS + ("imp",),
                   help="PaI method (the sampler's base method with --sample); imp = lottery "
                        "ticket by iterative magnitude pruning with rewinding")
    p.add_argument("--density", type=_density, default=0.05,
                   help="fraction of weights kept, in (0, 1]")
    p.add_argument("--output", "-o", metavar="FILE", required=False,
                   help="mask file to write (.pt or .npz) [required]")
    p.add_argument("--scope", default="global", choices=("global", "layer"),
                   help="one threshold over all layers, or the density in every layer")
    p.add_argument("--data-batches", type=_pos_int, metavar="N",
                   help="mini-batches used by data-driven methods (default: one epoch)")
    p.add_argument("--rounds", type=_pos_int, metavar="R",
                   help="SynFlow/iterSNIP scoring rounds (default 100), or IMP pruning rounds "
                        "(default 3)")
    _add_model_data(p)
    s = p.add_argument_group("Full-Spectrum sampler (--sample)")
    s.add_argument("--sample", action="store_true",
                   help="run the Full-Spectrum sampler on top of --method")
    s.add_argument("--population", type=_nonneg_int, default=100, help="candidates N")
    s.add_argument("--save-interval", type=_pos_int, default=10,
                   help="K: save the composite every K candidates (and sync ranks)")
    s.add_argument("--rule", default="layer", choices=("layer", "layer-alt", "network"),
                   help="acceptance: per layer (imdb and norm not lower), the released --alt "
                        "variant, or whole network (higher mean layer norm)")
    s.add_argument("--budget", default="free", choices=("free", "preserve"),
                   help="free = released behaviour (density drifts); preserve = every layer "
                        "keeps the baseline's edge count")
    s.add_argument("--weights", default="init", metavar="init|pretrained|CKPT",
                   help="θ*, the weights the mask is computed (and scored) with: the random "
                        "init, the dense model after --pretrain-steps SGD iterations, or a "
                        "checkpoint (also for plain PaI methods)")
    s.add_argument("--pretrain-steps", type=_nonneg_int, default=500,
                   help="dense SGD iterations for --weights pretrained")
    s.add_argument("--candidate-batches", type=_pos_int, default=4,
                   help="mini-batches per SNIP/GraSP/iterSNIP candidate")
    s.add_argument("--noise", type=float, default=1.0,
                   help="weight-noise scale for SynFlow/iterSNIP/magnitude candidates")
    s.add_argument("--save-dir", metavar="DIR",
                   help="also write every saved composite (mask_<t>.pt) here")
    s.add_argument("--save-weights", metavar="FILE",
                   help="write θ* (the weights the mask was made for) here, to train from it")
    i = p.add_argument_group("IMP / lottery ticket (--method imp)")
    i.add_argument("--train-steps", type=_pos_int, default=1000,
                   help="training steps per IMP round")
    i.add_argument("--rewind-steps", type=_nonneg_int, default=0,
                   help="rewind point (0 = init: classic LTH; k > 0: LTH with rewinding)")
    i.add_argument("--lr", type=float, default=0.1, help="learning rate of IMP training")
    _add_common(p)

    # train ---------------------------------------------------------------------------------
    p = sub.add_parser(
        "train", formatter_class=_Formatter,
        help="train a (masked) model and report test accuracy",
        description="Train a model with a fixed mask (or dense, or with SET dynamic sparse "
                    "training) and report the test accuracy; optionally save a checkpoint "
                    "(readable by 'fspai metrics').")
    p.add_argument("--masks", metavar="FILE", help="mask file (default: dense training)")
    p.add_argument("--weights", metavar="CKPT",
                   help="start from these weights (e.g. θ* from 'fspai prune --save-weights')")
    p.add_argument("--steps", type=_pos_int, help="training iterations (default 1000)")
    p.add_argument("--epochs", type=_pos_int, help="training epochs (instead of --steps)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay")
    p.add_argument("--set", dest="set_training", action="store_true",
                   help="SET dynamic sparse training (needs --masks or --density)")
    p.add_argument("--density", type=_density,
                   help="with --set and no --masks: start from an ERK mask of this density")
    p.add_argument("--update-every", type=_pos_int, default=100,
                   help="SET topology update interval (steps)")
    p.add_argument("--prune-rate", type=float, default=0.5,
                   help="SET fraction of each layer's edges dropped and regrown per update "
                        "(cosine-decayed over training)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the trained checkpoint here")
    _add_model_data(p)
    _add_common(p)

    # experiment ----------------------------------------------------------------------------
    p = sub.add_parser(
        "experiment", formatter_class=_Formatter,
        help="PaI baselines vs Full-Spectrum sampler vs LTH: table, correlations, plots",
        description="Run (or resume) a grid experiment: PaI baselines, the Full-Spectrum "
                    "sampler on top of them and IMP/LTH with rewinding, each mask trained with "
                    "the same schedule and seeds. Writes results.csv/.md, summary.csv, "
                    "correlations.csv and PNG plots into <out>/<name>-<config hash>/; a rerun "
                    "of the same configuration skips finished units. Configuration: defaults < "
                    "--preset/--quick < --config < flags < --override.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--quick", action="store_true",
                     help="the 'quick' preset: MNIST-1D + MLP, a few minutes on 2 CPU cores")
    src.add_argument("--preset", metavar="NAME",
                     help="a bundled preset (quick, grid, full; see --list-presets)")
    p.add_argument("--list-presets", action="store_true", help="list bundled presets and exit")
    p.add_argument("--out", default="runs", metavar="DIR", help="parent of the run directory")
    p.add_argument("--dataset", help="override experiment.dataset")
    p.add_argument("--model", help="override experiment.model")
    p.add_argument("--densities", type=_csv_floats, metavar="D,D",
                   help="override experiment.densities, e.g. 0.01,0.05,0.1")
    p.add_argument("--seeds", type=_csv_ints, metavar="S,S", help="override experiment.seeds")
    p.add_argument("--methods", type=_csv_words, metavar="M,M",
                   help="override experiment.methods (PaI baselines)")
    p.add_argument("--sampler-methods", type=_csv_words, metavar="M,M",
                   help="override sampler.methods (base methods for the sampler)")
    p.add_argument("--population", type=_nonneg_int, help="override sampler.population")
    p.add_argument("--steps", type=_pos_int, help="override train.steps")
    p.add_argument("--device", help="override experiment.device (e.g. cuda)")
    p.add_argument("--no-lth", action="store_true", help="skip IMP/LTH")
    p.add_argument("--no-set", action="store_true", help="skip the SET metric evolution")
    p.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")
    p.add_argument("--override", "-O", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="set any configuration value (TOML syntax), e.g. -O sampler.rule=network"
                        " -O 'train.lr=0.05'; repeatable")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration (TOML) and exit")
    _add_common(p, experiment=True)
    return parser


# --------------------------------------------------------------------------------------------
# --config for metrics / prune / train
# --------------------------------------------------------------------------------------------

def _apply_config_file(parser: argparse.ArgumentParser, sub: argparse.ArgumentParser,
                       command: str, path: str, argv: Sequence[str]) -> argparse.Namespace:
    import tomllib
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{p}: invalid TOML: {exc}") from exc
    table = data.get(command, None)
    if isinstance(table, dict):
        values = dict(table)
    else:
        values = {k: v for k, v in data.items() if not isinstance(v, dict)}
    dests = {}
    for action in sub._actions:
        for opt in action.option_strings:
            if opt.startswith("--"):
                dests[opt[2:].replace("-", "_")] = action
        if not action.option_strings and action.dest not in ("help",):
            dests[action.dest] = action
    defaults = {}
    for key, value in values.items():
        k = key.replace("-", "_")
        if k in ("config",):
            continue
        action = dests.get(k)
        if action is None:
            raise UsageError(f"{p}: unknown option {key!r} for 'fspai {command}'")
        if isinstance(value, list) and action.type is not None:
            value = ",".join(str(v) for v in value)
        if action.type is not None and not isinstance(value, bool):
            try:
                value = action.type(str(value))
            except argparse.ArgumentTypeError as exc:
                raise UsageError(f"{p}: {key}: {exc}") from exc
        if action.choices is not None and value not in action.choices:
            raise UsageError(f"{p}: {key} must be one of {', '.join(map(str, action.choices))}, "
                             f"got {value!r}")
        defaults[action.dest] = value
    sub.set_defaults(**defaults)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

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
    from . import data as _data
    opts: Dict[str, Any] = {"batch_size": args.batch_size, "seed": args.seed}
    if args.data_root:
        opts["root"] = args.data_root
    return _data.load(args.dataset, **opts)


def _build_model(args, bundle):
    from . import models as _models
    kw: Dict[str, Any] = {}
    if getattr(args, "hidden", None):
        kw["hidden"] = tuple(args.hidden)
    return _models.build(args.model, bundle.num_classes, input_shape=bundle.input_shape,
                         init=args.init, seed=args.seed, **kw).to(args.device)


def _torch_load(path: Path):
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unpickling problem is an input error
        raise UsageError(f"cannot read {path}: not a torch file of tensors "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")


def _plain_name(key: str) -> Optional[str]:
    """State-dict key -> plain parameter name, or None for mask buffers."""
    if ".parametrizations." in key:
        head, _, tail = key.partition(".parametrizations.")
        tname, _, rest = tail.partition(".")
        if rest == "original":
            return f"{head}.{tname}"
        return None
    if key.endswith("_orig"):
        return key[:-len("_orig")]
    if key.endswith("_mask"):
        return None
    return key


def _state_masks_weights(sd: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(masks, weights) of the prunable (>= 2-D ``weight``) tensors of a state dict, with plain
    names; masks from parametrize / torch.nn.utils.prune buffers, else the nonzero pattern."""
    import torch
    weights: Dict[str, Any] = {}
    masks: Dict[str, Any] = {}
    for key, v in sd.items():
        if not isinstance(v, torch.Tensor):
            continue
        if ".parametrizations." in key and key.endswith(".mask"):
            head, _, tail = key.partition(".parametrizations.")
            masks[f"{head}.{tail.split('.')[0]}"] = v.bool()
            continue
        if key.endswith("_mask"):
            masks[key[:-len("_mask")]] = v.bool()
            continue
        name = _plain_name(key)
        if name and v.dim() >= 2 and v.is_floating_point() and name.endswith("weight"):
            weights[name] = v
    for name, w in weights.items():
        if name not in masks:
            masks[name] = w != 0
    return {n: masks[n] for n in weights}, weights


def _read_masks_or_checkpoint(path: str) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]], str]:
    """Returns (masks, weights or None, kind) from a mask file or a checkpoint."""
    import torch
    from . import masks as _masks
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"file not found: {p}")
    if p.is_dir():
        raise UsageError(f"{p} is a directory, expected a mask file or checkpoint")
    sidecar = p.with_name(p.name + ".json")
    if sidecar.is_file():
        return _masks.load_masks(p), None, "mask file"
    if p.suffix.lower() == ".npz":
        return _masks.load_masks(p, require_sidecar=False), None, "mask file"
    obj = _torch_load(p)
    if isinstance(obj, dict) and obj.get("format") == "fspai.checkpoint":
        sd = obj["state_dict"]
        m = obj.get("masks")
        _, weights = _state_masks_weights(sd)
        if m:
            masks = {k: v.bool() for k, v in m.items()}
            weights = {k: weights[k] for k in masks if k in weights}
        else:
            masks = {k: w != 0 for k, w in weights.items()}
        return masks, weights, "checkpoint"
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise UsageError(f"{p}: expected a mask file or a state_dict, got {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if tensors and all(v.dtype == torch.bool for v in tensors.values()):
        return tensors, None, "mask file"
    masks, weights = _state_masks_weights(tensors)
    if not masks:
        raise UsageError(f"{p}: no prunable (>= 2-D) weight tensors found")
    return masks, weights, "checkpoint"


def _load_weights_file(path: str) -> Dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights checkpoint not found: {p}")
    obj = _torch_load(p)
    if isinstance(obj, dict) and obj.get("format") == "fspai.checkpoint":
        obj = obj["state_dict"]
    elif isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise UsageError(f"{p}: expected a state_dict")
    return obj


def _plain_state(sd: Mapping[str, Any]) -> Dict[str, Any]:
    """A plain (unmasked-model) state dict from any attachment form; masked values kept."""
    out = {}
    for key, v in sd.items():
        name = _plain_name(key)
        if name is not None:
            out[name] = v
    return out


def _load_state_into(model, sd: Mapping[str, Any], path: str) -> None:
    plain = _plain_state(sd)
    try:
        model.load_state_dict(plain)
    except RuntimeError as exc:
        raise UsageError(f"{path}: weights do not fit the model "
                         f"({str(exc).splitlines()[0]})") from exc


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------

def cmd_metrics(args) -> int:
    import fspai
    if not args.path:
        raise UsageError("metrics needs the path of a mask file or checkpoint")
    masks, weights, kind = _read_masks_or_checkpoint(args.path)
    if args.weights:
        sd = _load_weights_file(args.weights)
        _, w = _state_masks_weights(sd)
        missing = [n for n in masks if n not in w]
        if missing:
            raise UsageError(f"{args.weights}: no weights for layers {missing[:3]}"
                             f"{' ...' if len(missing) > 3 else ''}")
        weights = {n: w[n] for n in masks}
    table = fspai.model_metrics(masks, weights=weights, convention=args.convention)
    if args.format == "markdown":
        text = table.to_markdown() + "\n"
        summ = table.summary()
        text += (f"\n{len(table)} layers ({kind}), density {summ['density']:.4g}, mean coordinate "
                 f"norm {table.mean_coordinate_norm():.4g}, Ramanujan layers "
                 f"{100 * summ['ramanujan_fraction']:.0f} %\n")
    elif args.format == "json":
        text = table.to_json() + "\n"
    else:
        import csv
        import io
        rows = table.to_dicts()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["name"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
        _info(args, f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    if args.plot:
        from . import plots
        path = plots.layer_metrics_plot(table.to_dicts() and [
            {**d, **{a: d.get(f"coord_{a}", d.get(a)) for a in plots.AXES}}
            for d in table.to_dicts()], args.plot, title=Path(args.path).name)
        _info(args, f"wrote {path}")
    return 0


def cmd_prune(args) -> int:
    import torch
    from . import masks as _masks
    from . import pai
    if not args.output:
        raise UsageError("prune needs --output FILE (.pt or .npz)")
    if Path(args.output).suffix.lower() not in (".pt", ".pth", ".npz"):
        raise UsageError(f"--output must end in .pt, .pth or .npz, got {args.output}")
    if args.weights not in ("init", "pretrained") and not Path(args.weights).is_file():
        raise FileNotFoundError(f"weights checkpoint not found: {args.weights}")
    bundle = _bundle(args)
    model = _build_model(args, bundle)
    t0 = time.perf_counter()
    meta: Dict[str, Any] = {"method": args.method, "seed": args.seed, "density": args.density,
                            "model": args.model, "dataset": args.dataset}
    opts: Dict[str, Any] = {}
    if args.method in ("synflow", "itersnip") and args.rounds:
        opts["rounds"] = args.rounds
    if args.method == "imp":
        if args.sample:
            raise UsageError("--sample needs a PaI base method, not imp")
        res = pai.imp(model, bundle.train_loader, args.density, rounds=args.rounds or 3,
                      rewind_to=args.rewind_steps, steps=args.train_steps, seed=args.seed,
                      lr=args.lr, train_final=False, device=args.device)
        masks = res.masks
        meta.update({"rewind_to": args.rewind_steps, "rounds": args.rounds or 3})
        if args.save_weights:
            _save_checkpoint(args.save_weights, res.state_dict, None, args, {"kind": "imp-rewind"})
    elif args.sample:
        from .sampler import FullSpectrumSampler, init_distributed, dist_info
        if init_distributed():
            import atexit
            atexit.register(_destroy_process_group)
        rank, world = dist_info()
        if args.data_batches:
            opts["num_batches"] = args.data_batches
        sampler = FullSpectrumSampler(
            model, args.method, args.density, data=bundle.train_loader,
            population=args.population, save_interval=args.save_interval, seed=args.seed,
            rule=args.rule, budget=args.budget, weights=args.weights,
            pretrain_steps=args.pretrain_steps, candidate_batches=args.candidate_batches,
            noise=args.noise, scope=args.scope, save_dir=args.save_dir, device=args.device,
            prune_options={k: v for k, v in opts.items() if k != "num_batches"},
            baseline_batches=args.data_batches,
            progress=not args.quiet and sys.stderr.isatty())
        res = sampler.run()
        masks = res.masks
        meta["method"] = f"fullspectrum-{args.method}"
        meta["sampler"] = res.to_dict()
        if rank != 0:
            return 0
        tm = res.timings
        _info(args, f"sampler: {res.accepted} of {args.population} candidates accepted, mean "
                    f"coordinate norm {res.baseline_mean_norm:.4g} -> {res.mean_norm:.4g}, "
                    f"density {res.baseline_density:.4g} -> {res.realised_density:.4g}, "
                    f"{tm['candidates_per_s']:.2f} candidates/s on {world} process(es), "
                    f"{100 * tm['metrics_fraction']:.0f} % of the time in metrics")
        if args.save_weights:
            _save_checkpoint(args.save_weights, model.state_dict(), None, args, {"kind": "theta"})
    else:
        if args.weights != "init":
            from .sampler import prepare_weights
            prepare_weights(model, args.weights, data=bundle.train_loader,
                            steps=args.pretrain_steps, seed=args.seed, device=args.device)
        if args.data_batches:
            opts["num_batches"] = args.data_batches
        masks = pai.prune(model, args.method, args.density, data=bundle.train_loader,
                          scope=args.scope, seed=args.seed, **opts)
        if args.save_weights:
            _save_checkpoint(args.save_weights, model.state_dict(), None, args, {"kind": "theta"})
    meta["seconds"] = time.perf_counter() - t0
    path = _masks.save_masks(args.output, masks, meta=meta)
    _info(args, f"wrote {path} ({len(masks)} layers, density "
                f"{_masks.realised_density(masks):.4g}, {meta['seconds']:.1f} s)")
    return 0


def _destroy_process_group() -> None:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _save_checkpoint(path: str, state_dict, masks, args, extra: Mapping[str, Any]) -> None:
    import torch
    from .experiment import _atomic_torch_save
    ckpt = {"format": "fspai.checkpoint", "model": args.model, "dataset": args.dataset,
            "seed": args.seed,
            "state_dict": {k: v.detach().cpu() for k, v in _plain_state(state_dict).items()},
            "masks": None if masks is None else {k: v.detach().cpu().bool()
                                                 for k, v in masks.items()}}
    ckpt.update({k: v for k, v in extra.items()})
    _atomic_torch_save(ckpt, Path(path))


def cmd_train(args) -> int:
    import torch
    from . import masks as _masks
    from . import train as _train
    from .experiment import _call, _evaluate, _as_eval_dict
    if args.steps and args.epochs:
        raise UsageError("give --steps or --epochs, not both")
    masks = None
    if args.masks:
        masks = _masks.load_masks(args.masks, require_sidecar=False)
    if args.weights and not Path(args.weights).is_file():
        raise FileNotFoundError(f"weights checkpoint not found: {args.weights}")
    if args.set_training and masks is None and args.density is None:
        raise UsageError("--set needs --masks or --density")
    bundle = _bundle(args)
    model = _build_model(args, bundle)
    if args.weights:
        _load_state_into(model, _load_weights_file(args.weights), args.weights)
    if masks is not None:
        try:
            _masks.validate_masks(model, masks)
        except (KeyError, ValueError) as exc:
            raise UsageError(f"{args.masks}: masks do not fit model {args.model!r}: "
                             f"{str(exc).splitlines()[0][:300]}") from exc
        _masks.apply_masks(model, masks)
    steps = args.steps if (args.steps or args.epochs) else 1000
    opts = {"lr": args.lr, "momentum": args.momentum, "weight_decay": args.weight_decay,
            "seed": args.seed, "device": args.device, "progress": not args.quiet and
            sys.stderr.isatty()}
    if args.epochs:
        opts["epochs"] = args.epochs
    else:
        opts["steps"] = steps
    t0 = time.perf_counter()
    if args.set_training:
        fit_set = getattr(_train, "fit_set", None)
        if fit_set is None:
            raise RuntimeError("this fspai has no SET training (fspai.train.fit_set)")
        hist = fit_set(model, bundle.train_loader, masks=masks, density=args.density,
                       update_every=args.update_every, prune_rate=args.prune_rate, **opts)
    else:
        hist = _train.fit(model, bundle.train_loader, masks=masks, **opts)
    elapsed = time.perf_counter() - t0
    ev_fn = getattr(_train, "evaluate", None)
    ev = (_as_eval_dict(_call(ev_fn, model, bundle.test_loader, device=args.device))
          if ev_fn is not None else _evaluate(model, bundle.test_loader, args.device))
    final_masks = _masks.extract_masks(model) or None
    dens = _masks.realised_density(final_masks) if final_masks else 1.0
    print(f"test accuracy {100 * ev['accuracy']:.2f} % (loss {ev.get('loss', float('nan')):.4f}),"
          f" density {dens:.4g}, {elapsed:.1f} s")
    if args.output:
        _save_checkpoint(args.output, model.state_dict(), final_masks, args,
                         {"accuracy": float(ev["accuracy"]), "seconds": elapsed})
        _info(args, f"wrote {args.output}")
    return 0


def cmd_experiment(args) -> int:
    from . import experiment as ex
    if args.list_presets:
        for name in ex.list_presets():
            print(name)
        return 0
    preset = "quick" if args.quick else args.preset
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
    put("train", "steps", args.steps)
    put("experiment", "threads", args.threads)
    if args.no_lth:
        put("lth", "enabled", False)
    if args.no_set:
        put("set", "enabled", False)
    cfg = ex.load_config(args.config, preset=preset, overrides=None)
    cfg = ex.load_config(cfg, overrides=overrides)
    if args.override:
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


def _num(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if f != f else f"{f:.3f}"


_COMMANDS = {"metrics": cmd_metrics, "prune": cmd_prune, "train": cmd_train,
             "experiment": cmd_experiment}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point: returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("FSPAI_DEBUG") == "1"
    parser = build_parser()
    command = "fspai"
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        command = f"fspai {args.command}"
        if args.config and args.command != "experiment":
            sub = parser._subparsers._group_actions[0].choices[args.command]  # type: ignore
            args = _apply_config_file(parser, sub, args.command, args.config, argv)
        _setup_logging(args)
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the one place errors become exit codes
        code, msg = _classify(exc)
        if debug:
            import traceback
            traceback.print_exc()
        print(f"{command}: error: {msg}", file=sys.stderr)
        return code


def _classify(exc: BaseException) -> Tuple[int, str]:
    from .experiment import ConfigError
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    if isinstance(exc, (UsageError, ConfigError, FileNotFoundError, IsADirectoryError,
                        NotADirectoryError, PermissionError, ValueError, KeyError)):
        return 2, text
    if isinstance(exc, ImportError):
        return 1, f"{text} (is the optional dependency installed? pip install 'fspai[torch]')"
    return 1, f"{type(exc).__name__}: {text}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
