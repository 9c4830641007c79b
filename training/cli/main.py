"""The `python -m training` parser: one subcommand per entry of COMMANDS, loaded on use."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple

from training.aws import SettingsError
from training.cli import settings
from training.cli.command import Command
from training.cli.console import error
from training.exit_codes import ExitCode, describe


class Entry(NamedTuple):
    """A subcommand's one-line help and the module that defines it."""

    help: str
    module: str


# A new subcommand is one more entry here and one in its module's COMMANDS. The modules are
# imported only for the command that runs: `status --help` need not load scikit-learn.
COMMANDS: dict[str, Entry] = {
    "dataset": Entry("write the bundled iris data as the project's canonical CSV", "local"),
    "validate": Entry("check a dataset and report every problem in it", "local"),
    "train": Entry("train, evaluate and gate a model, then export it", "local"),
    "pipeline": Entry(
        "the cloud run: S3 dataset -> train -> gate -> image in ECR (on the instance)",
        "pipeline",
    ),
    "upload": Entry(
        "validate a dataset file and store it as a new, immutable dataset version", "datasets"
    ),
    "retrain": Entry("start a training run on an uploaded dataset version", "datasets"),
    "registry": Entry(
        "show the live and rollback models, every model and the recent runs", "views"
    ),
    "status": Entry(
        "show the live and rollback models, every model and the recent promotions", "views"
    ),
    "fetch-live": Entry(
        "write the registry's live model into lambda_image/model (make deploy runs it)", "views"
    ),
    "promote": Entry("make a registered model live through the CodeDeploy canary", "promotion"),
    "rollback": Entry(
        "return the API to the rollback model (or --model-version), all at once", "promotion"
    ),
}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the descriptions' line breaks (they hold examples and lists)."""


def command(name: str) -> Command:
    """The named subcommand's definition, importing its module."""
    module = importlib.import_module(f"training.cli.{COMMANDS[name].module}")
    defined: Command = module.COMMANDS[name]
    return defined


def build_parser(load: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the commands in `load` (default: all) get their options and help."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the iris classifier: dataset -> validate -> train -> evaluate -> "
        "gate -> export.",
        epilog=describe(),
        formatter_class=_HelpFormatter,
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    for name, entry in COMMANDS.items():
        if load is not None and name not in load:
            subparsers.add_parser(name, help=entry.help)
            continue
        chosen = command(name)
        subparser = subparsers.add_parser(
            name,
            help=entry.help,
            description=chosen.description,
            epilog=chosen.epilog,
            formatter_class=_HelpFormatter,
        )
        chosen.add_arguments(subparser)
        subparser.set_defaults(run=chosen.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `python -m training` with `argv` (default: sys.argv[1:]); return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # The top level takes no option but --help, so the first word names the command.
    load = args_list[:1] if args_list and args_list[0] in COMMANDS else []
    try:
        args = build_parser(load).parse_args(args_list)
    except SystemExit as exit_:
        # argparse exits on --help (0) and on bad usage (2); callers get the code back.
        return exit_.code if isinstance(exit_.code, int) else ExitCode.USAGE
    try:
        settings.resolve(args)
    except SettingsError as err:
        error(str(err))
        return ExitCode.USAGE
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)
