"""``fspai`` command line: ``metrics``, ``prune``, ``train``, ``experiment``.

Every subcommand accepts ``--config FILE.toml``: a TOML file whose keys are the subcommand's long
option names (dashes or underscores), either at the top level or under a table named after the
subcommand (``[prune]``); explicit flags override it.  ``fspai experiment`` reads the nested
experiment schema instead (``fspai.experiment.DEFAULTS``; presets in ``fspai/configs``).

Exit codes: 0 success, 2 usage or input error (bad flag, missing or unreadable file, invalid
configuration, bad option value), 1 runtime failure, 130 interrupted.  Errors are one line on
stderr; ``--debug`` shows the traceback.

The parser lives in :mod:`fspai.cli.parser`, the commands in :mod:`fspai.cli.commands`.
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence, Tuple

from .commands import COMMANDS, _setup_logging
from .parser import UsageError, apply_config_file, build_parser

__all__ = ["main", "build_parser", "UsageError"]


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
            args = apply_config_file(parser, sub, args.command, args.config, argv)
        _setup_logging(args)
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        return COMMANDS[args.command](args)
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
    from ..experiment.config import ConfigError
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    if isinstance(exc, (UsageError, ConfigError, FileNotFoundError, IsADirectoryError,
                        NotADirectoryError, PermissionError, ValueError, KeyError, TypeError)):
        return 2, text
    if isinstance(exc, ImportError):
        return 1, f"{text} (is the optional dependency installed? pip install 'fspai[torch]')"
    return 1, f"{type(exc).__name__}: {text}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
