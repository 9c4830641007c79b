"""The trainer's steps on a laptop: write the bundled dataset, validate one, train and gate."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from training.cli.arguments import (
    add_min_rows_per_class,
    identifier,
    integer,
    open_unit_interval,
    unit_interval,
)
from training.cli.command import Command
from training.cli.console import error, output
from training.exit_codes import ExitCode, describe
from training.ml.dataset import FEATURES, Dataset, DatasetError, load_dataset, write_bundled
from training.ml.export import ExportError, export_info, export_model
from training.ml.gate import DEFAULT_MIN_ACCURACY, DEFAULT_TOLERANCE, check_gate, load_baseline
from training.ml.train import DEFAULT_SEED, DEFAULT_TEST_SIZE, MAX_SEED, train

DEFAULT_DATASET_OUT = Path("build/datasets/iris/v1/data.csv")

_EPILOG = describe(
    {
        ExitCode.OK: "success",
        ExitCode.FAILED: "the model could not be exported",
        ExitCode.USAGE: "bad usage (unknown option, value out of range)",
        ExitCode.INVALID_DATASET: "the dataset is invalid or cannot be read "
        "(every problem is listed)",
        ExitCode.REFUSED: "the quality gate refused the model (nothing is written)",
    }
)


def _seed(text: str) -> int:
    """Parse an integer numpy accepts as a seed."""
    value = integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {text}")
    return value


def _baseline(text: str) -> dict[str, Any]:
    """Load the baseline's metrics while parsing the arguments, so a bad file fails first."""
    try:
        return load_baseline(Path(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


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
        error(f"cannot write {args.out}: {err.strerror or err}")
        return ExitCode.FAILED
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    output(f"wrote {path} (sha256 {digest})")
    return ExitCode.OK


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
        type=identifier,
        metavar="NAME",
        help="dataset name recorded with the model (default: from a "
        ".../datasets/<name>/<version>/data.csv path, else iris)",
    )
    parser.add_argument(
        "--dataset-version",
        type=identifier,
        metavar="VERSION",
        help="dataset version recorded with the model (default: from the path layout, v1 for "
        "the bundled data, else local-<first 12 hex digits of the file's sha256>)",
    )
    add_min_rows_per_class(parser)


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
        error(str(err))
        return ExitCode.INVALID_DATASET
    output(f"ok: {dataset.name}/{dataset.version}, {dataset.rows} rows, sha256 {dataset.sha256}")
    return ExitCode.OK


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
        type=open_unit_interval,
        default=DEFAULT_TEST_SIZE,
        metavar="FRACTION",
        help="fraction of the rows held out for evaluation, in (0, 1) (default: %(default)s)",
    )
    parser.add_argument(
        "--min-accuracy",
        type=unit_interval,
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
        type=unit_interval,
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
        error(str(err))
        return ExitCode.INVALID_DATASET
    gate = check_gate(
        result.metrics,
        min_accuracy=args.min_accuracy,
        baseline=args.baseline,
        tolerance=args.tolerance,
    )
    if not gate.passed:
        reasons = "".join(f"\n  {reason}" for reason in gate.reasons)
        error(f"refused by the quality gate; nothing written to {args.out}:{reasons}")
        return ExitCode.REFUSED
    try:
        exported = export_model(
            result.estimator,
            args.out,
            feature_names=list(FEATURES),
            info=export_info(dataset, result, gate),
        )
    except ExportError as err:
        error(f"cannot export the model: {err}")
        return ExitCode.FAILED
    except OSError as err:
        error(f"cannot write the model to {args.out}: {err.strerror or err}")
        return ExitCode.FAILED
    output(
        f"model {exported.model_version} trained on {dataset.name}/{dataset.version} "
        f"({result.training['n_train']} rows)\n"
        f"accuracy {result.metrics['accuracy']:.4f} on {result.training['n_test']} held-out rows; "
        "gate passed\n"
        f"wrote {exported.directory}"
    )
    return ExitCode.OK


COMMANDS: dict[str, Command] = {
    "dataset": Command(
        description="Write the iris data that scikit-learn ships (no download) as the project's\n"
        "canonical CSV, then print its path, row count and sha256. Upload it to\n"
        "s3://<bucket>/datasets/iris/v1/data.csv to train the cloud model on it.",
        add_arguments=_add_dataset_out,
        run=_run_dataset,
        epilog=_EPILOG,
    ),
    "validate": Command(
        description="Check a dataset's columns, values, labels and class sizes and print\n"
        "'ok: <name>/<version>, <rows> rows, sha256 <hex>'. An invalid dataset prints\n"
        f"every problem to stderr and exits {ExitCode.INVALID_DATASET:d}.",
        add_arguments=_add_dataset_source,
        run=_run_validate,
        epilog=_EPILOG,
    ),
    "train": Command(
        description="Validate the dataset, fit the KNN classifier on a seeded stratified split,\n"
        "score it on the held-out rows and apply the quality gate. A model that\n"
        "passes is written to --out as model.npz and metadata.json\n"
        "(docs/model-artifact.md); a refused model writes nothing and exits "
        f"{ExitCode.REFUSED:d}.\n"
        "The same data and seed give a byte-identical model.npz.",
        add_arguments=_add_train_arguments,
        run=_run_train,
        epilog=_EPILOG,
    ),
}
