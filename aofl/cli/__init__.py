"""Command line: `python -m aofl train|evaluate|inspect|infer|compare|data|embed|bench|tune|finals|slices|results|playground`.

One module per command; each adds its own subparser and sets `func`. The commands and their
`--json` outputs are contracts other tools call; extend, never rename.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import AOFLError

__all__ = ["main", "build_parser", "COMMANDS"]

# The commands in the order `--help` lists them, with the line it shows for each (each module's
# add_parser says the same; tests/test_cli.py checks). A command's module is imported, and its
# options built, only when the command is named: `python -m aofl --help` imports no torch.
COMMANDS = {
    "train": "train a variant and save a checkpoint",
    "evaluate": "metrics of a checkpoint on a split",
    "inspect": "describe a checkpoint or data file; with --data/--split/--dialogue/--drop, "
    "one dialogue's per-utterance predictions and angles",
    "infer": "write the per-utterance inference table of a split",
    "compare": "ablation comparison: metrics with bootstrap CIs, paired test, flips",
    "data": "list, inspect, prepare and download datasets",
    "embed": "2-D embedding (PCA / t-SNE / UMAP) of shared / specific features",
    "bench": "benchmarks: speed ratios against baselines measured in the same run",
    "tune": "search hyper-parameters by grouped k-fold cross-validation (Optuna)",
    "finals": "final runs of a study: arms x seeds, per-run tables, resumable",
    "slices": "weighted F1, accuracy and mean angles per slice (emotion shift, turn "
    "position, dialogue length, speaker, utterance length) with bootstrap CIs",
    "results": "the evidence in results/: test WF1 per seed, full − variant paired by seed, the CV studies",
    "playground": "the app's Playground: a tiny model on small synthetic data, per seed",
}


class _CommandParser(argparse.ArgumentParser):
    """A command's parser whose module adds the options on first use (parsing or help)."""

    command: str | None = None
    module_help: str | None = None  # what the module's add_parser said (checked against COMMANDS)

    def build(self) -> None:
        command, self.command = self.command, None
        if command is not None:
            import importlib

            importlib.import_module(f"{__name__}.{command}").add_parser(_Into(self))

    def parse_known_args(self, args=None, namespace=None):
        self.build()
        return super().parse_known_args(args, namespace)

    def format_help(self):
        self.build()
        return super().format_help()

    def format_usage(self):
        self.build()
        return super().format_usage()


class _Into:
    """The `subparsers` a command module's add_parser expects, handing it its (already listed) parser."""

    def __init__(self, parser: _CommandParser):
        self.parser = parser

    def add_parser(self, name, help=None, **kwargs):
        p = self.parser
        p.module_help = help
        for key, value in kwargs.items():  # description, formatter_class, ...
            setattr(p, key, value)
        return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aofl", description="AO-FL Explorer library and tools")
    parser.add_argument("--version", action="store_true", help="print the package version")
    sub = parser.add_subparsers(dest="command", parser_class=_CommandParser)
    for command, help_line in COMMANDS.items():
        sub.add_parser(command, help=help_line).command = command
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
