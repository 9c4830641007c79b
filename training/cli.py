"""`python -m training`: write, validate and train on a dataset, one subcommand per step.

Exit codes: 0 ok, 1 the export failed, 2 bad usage, 3 invalid or unreadable dataset,
4 refused by the quality gate. Results go to stdout, messages to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.dataset import (
    FEATURES,
    IDENTIFIER,
    Dataset,
    DatasetError,
    load_dataset,
    write_bundled,
)
from training.export import ExportError, export_model
from training.gate import DEFAULT_MIN_ACCURACY, DEFAULT_TOLERANCE, check_gate, load_baseline
from training.train import DEFAULT_SEED, DEFAULT_TEST_SIZE, MAX_SEED, train

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INVALID_DATASET = 3
EXIT_REFUSED = 4

DEFAULT_DATASET_OUT = Path("build/datasets/iris/v1/data.csv")
DEFAULT_MIN_ROWS_PER_CLASS = 10

_EPILOG = f"""\
exit codes:
  {EXIT_OK}  success
  {EXIT_FAILED}  the model could not be exported
  {EXIT_USAGE}  bad usage (unknown option, value out of range)
  {EXIT_INVALID_DATASET}  the dataset is invalid or cannot be read (every problem is listed)
  {EXIT_REFUSED}  the quality gate refused the model (nothing is written)
"""


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help, its description, its options and what it runs."""

    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the descriptions' line breaks (they hold examples and lists)."""


# Argument types: argparse turns their ArgumentTypeError into a usage error (exit 2).


def _unit_interval(text: str) -> float:
    """Parse a number in [0, 1]."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _open_unit_interval(text: str) -> float:
    """Parse a number strictly between 0 and 1."""
    value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def _float(text: str) -> float:
    """Parse a finite float."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    """Parse an integer of at least 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _seed(text: str) -> int:
    """Parse an integer numpy accepts as a seed."""
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {text}")
    return value


def _int(text: str) -> int:
    """Parse an integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _identifier(text: str) -> str:
    """Check a dataset name or version: it becomes part of an S3 key and an ECR tag."""
    if not IDENTIFIER.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return text


def _baseline(text: str) -> dict[str, Any]:
    """Load the baseline's metrics while parsing the arguments, so a bad file fails first."""
    try:
        return load_baseline(Path(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


# Subcommands.


def _add_dataset_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_DATASET_OUT,
        metavar="PATH",
        help="file to write; parent directories are created (default: %(default)s)",
    )


def _run_dataset(args: argparse.Namespace) -> int:
    try:
        path = write_bundled(args.out)
    except OSError as err:
        _error(f"cannot write {args.out}: {err.strerror or err}")
        return EXIT_FAILED
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _output(f"wrote {path} (sha256 {digest})")
    return EXIT_OK


def _add_dataset_source(parser: argparse.ArgumentParser) -> None:
    """Options that choose and check the dataset, shared by every command that reads one."""
    parser.add_argument(
        "--dataset",
        metavar="SRC",
        help="CSV to use: a local path or s3://bucket/key "
        "(default: the iris data bundled with scikit-learn)",
    )
    parser.add_argument(
        "--dataset-name",
        type=_identifier,
        metavar="NAME",
        help="dataset name recorded with the model (default: from a "
        ".../datasets/<name>/<version>/data.csv path, else iris)",
    )
    parser.add_argument(
        "--dataset-version",
        type=_identifier,
        metavar="VERSION",
        help="dataset version recorded with the model (default: from the path layout, v1 for "
        "the bundled data, else local-<first 12 hex digits of the file's sha256>)",
    )
    parser.add_argument(
        "--min-rows-per-class",
        type=_positive_int,
        default=DEFAULT_MIN_ROWS_PER_CLASS,
        metavar="N",
        help="refuse a dataset with fewer rows in any class (default: %(default)s)",
    )


def _load(args: argparse.Namespace) -> Dataset:
    """Load the dataset the arguments name (raises DatasetError)."""
    return load_dataset(
        args.dataset,
        name=args.dataset_name,
        version=args.dataset_version,
        min_rows_per_class=args.min_rows_per_class,
    )


def _run_validate(args: argparse.Namespace) -> int:
    try:
        dataset = _load(args)
    except DatasetError as err:
        _error(str(err))
        return EXIT_INVALID_DATASET
    _output(f"ok: {dataset.name}/{dataset.version}, {dataset.rows} rows, sha256 {dataset.sha256}")
    return EXIT_OK


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dataset_source(parser)
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory for model.npz and metadata.json; created if needed, and left untouched "
        "when the gate refuses the model",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=DEFAULT_SEED,
        help="random seed of the train/test split (default: %(default)s)",
    )
    parser.add_argument(
        "--test-size",
        type=_open_unit_interval,
        default=DEFAULT_TEST_SIZE,
        metavar="FRACTION",
        help="fraction of the rows held out for evaluation, in (0, 1) (default: %(default)s)",
    )
    parser.add_argument(
        "--min-accuracy",
        type=_unit_interval,
        default=DEFAULT_MIN_ACCURACY,
        metavar="FRACTION",
        help="gate: refuse a model whose hold-out accuracy is below this, in [0, 1] "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--baseline",
        type=_baseline,
        metavar="FILE",
        help="gate: the current model's metadata.json or a metrics JSON with an accuracy; "
        "refuse a model worse than it by more than --tolerance (default: no baseline)",
    )
    parser.add_argument(
        "--tolerance",
        type=_unit_interval,
        default=DEFAULT_TOLERANCE,
        metavar="FRACTION",
        help="gate: accuracy the model may lose against --baseline, in [0, 1] "
        "(default: %(default)s)",
    )


def _run_train(args: argparse.Namespace) -> int:
    try:
        dataset = _load(args)
        result = train(dataset, seed=args.seed, test_size=args.test_size)
    except DatasetError as err:
        _error(str(err))
        return EXIT_INVALID_DATASET
    gate = check_gate(
        result.metrics,
        min_accuracy=args.min_accuracy,
        baseline=args.baseline,
        tolerance=args.tolerance,
    )
    if not gate.passed:
        reasons = "".join(f"\n  {reason}" for reason in gate.reasons)
        _error(f"refused by the quality gate; nothing written to {args.out}:{reasons}")
        return EXIT_REFUSED
    info = {
        "dataset": dataset.info(),
        "metrics": result.metrics,
        "training": result.training,
        "gate": gate.as_dict(),
    }
    try:
        exported = export_model(result.estimator, args.out, feature_names=list(FEATURES), info=info)
    except ExportError as err:
        _error(f"cannot export the model: {err}")
        return EXIT_FAILED
    except OSError as err:
        _error(f"cannot write the model to {args.out}: {err.strerror or err}")
        return EXIT_FAILED
    _output(
        f"model {exported.model_version} trained on {dataset.name}/{dataset.version} "
        f"({result.training['n_train']} rows)\n"
        f"accuracy {result.metrics['accuracy']:.4f} on {result.training['n_test']} held-out rows; "
        "gate passed\n"
        f"wrote {exported.directory}"
    )
    return EXIT_OK


# A new subcommand is one more entry here.
COMMANDS: dict[str, Command] = {
    "dataset": Command(
        help="write the bundled iris data as the project's canonical CSV",
        description="Write the iris data that scikit-learn ships (no download) as the project's\n"
        "canonical CSV, then print its path, row count and sha256. Upload it to\n"
        "s3://<bucket>/datasets/iris/v1/data.csv to train the cloud model on it.",
        add_arguments=_add_dataset_out,
        run=_run_dataset,
    ),
    "validate": Command(
        help="check a dataset and report every problem in it",
        description="Check a dataset's columns, values, labels and class sizes and print\n"
        "'ok: <name>/<version>, <rows> rows, sha256 <hex>'. An invalid dataset prints\n"
        f"every problem to stderr and exits {EXIT_INVALID_DATASET}.",
        add_arguments=_add_dataset_source,
        run=_run_validate,
    ),
    "train": Command(
        help="train, evaluate and gate a model, then export it",
        description="Validate the dataset, fit the KNN classifier on a seeded stratified split,\n"
        "score it on the held-out rows and apply the quality gate. A model that\n"
        "passes is written to --out as model.npz and metadata.json\n"
        "(docs/model-artifact.md); a refused model writes nothing and exits "
        f"{EXIT_REFUSED}.\n"
        "The same data and seed give a byte-identical model.npz.",
        add_arguments=_add_train_arguments,
        run=_run_train,
    ),
}


def build_parser(commands: Mapping[str, Command] = COMMANDS) -> argparse.ArgumentParser:
    """Build the `python -m training` parser with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the iris classifier: dataset -> validate -> train -> evaluate -> "
        "gate -> export.",
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    for name, command in commands.items():
        subparser = subparsers.add_parser(
            name,
            help=command.help,
            description=command.description,
            epilog=_EPILOG,
            formatter_class=_HelpFormatter,
        )
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `python -m training` with `argv` (default: sys.argv[1:]); return the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        # argparse exits on --help (0) and on bad usage (2); callers get the code back.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


def _output(text: str) -> None:
    sys.stdout.write(text + "\n")


def _error(text: str) -> None:
    sys.stderr.write(text + "\n")
