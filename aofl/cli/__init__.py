"""Command line: `python -m aofl train|evaluate|inspect|infer|compare|data|embed|bench|tune|finals|slices|results`.

One module per command; each adds its own subparser and sets `func`. The commands and their
`--json` outputs are contracts other tools call; extend, never rename.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import AOFLError
from . import bench, compare, data, embed, evaluate, finals, infer, inspect, results, slices, train, tune

__all__ = ["main", "build_parser", "COMMANDS"]

# in the order `--help` lists them
COMMANDS = (train, evaluate, inspect, infer, compare, data, embed, bench, tune, finals, slices, results)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aofl", description="AO-FL Explorer library and tools")
    parser.add_argument("--version", action="store_true", help="print the package version")
    sub = parser.add_subparsers(dest="command")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from .. import __version__

        print(__version__)
        return 0
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    if getattr(args, "allow_unsafe_load", False):  # every loader reads the opt-in from the environment
        from ..io.safe_pickle import ALLOW_UNSAFE_ENV

        os.environ[ALLOW_UNSAFE_ENV] = "1"
    try:
        return int(func(args) or 0)
    except BrokenPipeError:
        # the reader went away (`... | head`): stop quietly, as cat does, instead of a traceback
        try:
            os.dup2(
                os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno()
            )  # the exit-time flush must not fail again
        except (OSError, ValueError):  # stdout is not a real file (captured, redirected in-process)
            pass
        return 1
    except (AOFLError, FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
