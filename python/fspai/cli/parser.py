"""The ``fspai`` argument parser (options, their types and checks, ``--config`` files).

(see :mod:`fspai.cli` for the commands)

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
from pathlib import Path
from typing import List, Sequence

from .._vocab import METHODS

__all__ = ["build_parser", "UsageError", "apply_config_file"]

PROG = "fspai"


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


def _csv_pos_ints(text: str) -> List[int]:
    vals = _csv_ints(text)
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got "
                                         f"{text!r}")
    return vals


def _finite(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    if v != v or v in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _positive(text: str) -> float:
    v = _finite(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def _nonneg(text: str) -> float:
    v = _finite(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def _csv_words(text: str) -> List[str]:
    return [x.strip().lower() for x in str(text).split(",") if x.strip()]


def _density(text: str) -> float:
    from .._vocab import check_density
    try:
        return check_density(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc) if "density" in str(exc) else
                                         f"expected a number in (0, 1], got {text!r}")


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
    g.add_argument("--hidden", type=_csv_pos_ints, metavar="N,N",
                   help="MLP hidden sizes, e.g. 256,256 (default: the model's)")
    g.add_argument("--init", default="pytorch", choices=("pytorch", "paper", "kaiming"),
                   help="weight initialisation scheme of the built model")
    g.add_argument("--batch-size", type=_pos_int, default=128, help="training batch size")
    g.add_argument("--seed", type=_nonneg_int, default=0,
                   help="seed for the model init, pruning and data order")
    g.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__
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

    _add_metrics(sub)
    _add_prune(sub)
    _add_train(sub)
    _add_experiment(sub)
    return parser


def _add_metrics(sub) -> None:
    """The ``fspai metrics`` subcommand: per-layer metrics of a mask file or checkpoint."""
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
                   help="metric conventions of the two papers' released code")
    p.add_argument("--format", default="markdown", choices=("markdown", "csv", "json"),
                   help="output format of the table")
    p.add_argument("--output", "-o", metavar="FILE", help="write the table here (default stdout)")
    p.add_argument("--plot", metavar="FILE",
                   help="also write a per-layer bar chart (.png, .pdf or .svg)")
    _add_common(p)


def _add_prune(sub) -> None:
    """The ``fspai prune`` subcommand: PaI, the sampler or IMP."""
    p = sub.add_parser(
        "prune", formatter_class=_Formatter,
        help="make a pruning mask (PaI method, Full-Spectrum sampler, or IMP/LTH)",
        description="Prune a freshly built model with a PaI method, with the Full-Spectrum "
                    "sampler on top of one (--sample; under torchrun the population is sharded "
                    "across ranks), or with iterative magnitude pruning (--method imp), and "
                    "write the mask file (+ JSON sidecar).")
    p.add_argument("--method", default="snip", choices=METHODS + ("imp",),
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
    s.add_argument("--noise", type=_nonneg, default=1.0,
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
    i.add_argument("--lr", type=_positive, default=0.1, help="learning rate of IMP training")
    _add_common(p)


def _add_train(sub) -> None:
    """The ``fspai train`` subcommand: training."""
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
    p.add_argument("--lr", type=_positive, default=0.1, help="learning rate")
    p.add_argument("--momentum", type=_nonneg, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=_nonneg, default=5e-4, help="weight decay")
    p.add_argument("--set", dest="set_training", action="store_true",
                   help="SET dynamic sparse training (needs --masks or --density)")
    p.add_argument("--density", type=_density,
                   help="with --set and no --masks: start from an ERK mask of this density")
    p.add_argument("--update-every", type=_pos_int, default=100,
                   help="SET topology update interval (steps)")
    p.add_argument("--prune-rate", type=_positive, default=0.5,
                   help="SET fraction of each layer's edges dropped and regrown per update "
                        "(cosine-decayed over training)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the trained checkpoint here")
    _add_model_data(p)
    _add_common(p)


def _add_experiment(sub) -> None:
    """The ``fspai experiment`` subcommand: the grid experiment."""
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
    p.add_argument("--protocol", metavar="NAME",
                   help="override sampler.protocol: fspai or released (docs/protocols.md)")
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




# --------------------------------------------------------------------------------------------
# --config for metrics / prune / train
# --------------------------------------------------------------------------------------------

def apply_config_file(parser: argparse.ArgumentParser, sub: argparse.ArgumentParser,
                       command: str, path: str, argv: Sequence[str]) -> argparse.Namespace:
    from ..experiment.config import read_toml
    p = Path(path)
    data = read_toml(p)
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
