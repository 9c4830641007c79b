"""Training data: the canonical iris CSV, where it is read from, and the checks it must pass.

Every problem in a file is reported in one DatasetError, so a broken upload is fixed in one go
rather than one rerun per mistake.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import numpy as np
import numpy.typing as npt
from botocore.exceptions import BotoCoreError, ClientError
from sklearn.datasets import load_iris

from training.contract import DATASET_FILE, DATASETS_PREFIX, IDENTIFIER

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
LABEL = "species"
CLASSES = ("setosa", "versicolor", "virginica")
COLUMNS = (*FEATURES, LABEL)
# Feature values in cm; the serving API accepts the same domain, so the model never sees
# data during training that it would refuse at a request.
MIN_VALUE_EXCLUSIVE = 0.0
MAX_VALUE = 10.0
# The bundled data's name in metadata and messages (it has no path or URI).
BUNDLED_SOURCE = "bundled:sklearn.datasets.load_iris"
# Problems of one kind listed before the rest are only counted: a million broken rows must not
# make a million-line message.
MAX_PROBLEMS_PER_KIND = 20

# Plain decimal notation only: float() would also take 'nan', 'inf', '1_0' and non-ASCII digits.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_S3_SCHEME = "s3://"


class DatasetError(ValueError):
    """A dataset that cannot be used; the message lists every problem, one per line."""

    def __init__(self, source: str, problems: list[str], *, total: int | None = None) -> None:
        self.source = source
        self.problems = list(problems)
        self.total = len(self.problems) if total is None else total
        noun = "problem" if self.total == 1 else "problems"
        first = f"dataset {source} is invalid: {self.total} {noun}"
        if self.total > len(self.problems):
            first += f" (at most {MAX_PROBLEMS_PER_KIND} of each kind listed)"
        super().__init__("\n".join([first, *(f"  {problem}" for problem in self.problems)]))


@dataclass(frozen=True, eq=False)
class Dataset:
    """A validated dataset: its identity, features in FEATURES order and string labels."""

    name: str
    version: str
    source: str
    sha256: str
    x: npt.NDArray[np.float64]
    labels: npt.NDArray[np.str_]

    @property
    def rows(self) -> int:
        """Number of data rows."""
        return int(self.x.shape[0])

    def info(self) -> dict[str, Any]:
        """Return the identity recorded in the model's metadata under "dataset"."""
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "sha256": self.sha256,
            "rows": self.rows,
        }


class _Problems:
    """Problems in discovery order, at most MAX_PROBLEMS_PER_KIND listed of each kind."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, message: str) -> None:
        """Record a problem of `kind` (the plural noun used when the rest are only counted)."""
        self.counts[kind] += 1
        if self.counts[kind] <= MAX_PROBLEMS_PER_KIND:
            self.listed.append(message)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def error(self, source: str) -> DatasetError:
        """Build the DatasetError that lists (and counts) every problem."""
        more = [
            f"... and {count - MAX_PROBLEMS_PER_KIND} more {kind}"
            for kind, count in self.counts.items()
            if count > MAX_PROBLEMS_PER_KIND
        ]
        return DatasetError(source, [*self.listed, *more], total=self.counts.total())


def bundled_iris_csv() -> bytes:
    """Return the canonical iris CSV built from the copy scikit-learn ships (no download)."""
    iris = load_iris()
    names = [str(name).removesuffix(" (cm)").replace(" ", "_") for name in iris.feature_names]
    if names != list(FEATURES) or [str(c) for c in iris.target_names] != list(CLASSES):
        raise RuntimeError(
            f"scikit-learn's iris has features {names} and classes {list(iris.target_names)}; "
            f"expected {list(FEATURES)} and {list(CLASSES)}"
        )
    lines = [",".join(COLUMNS)]
    for features, target in zip(iris.data, iris.target, strict=True):
        # repr of a Python float is the shortest text that reads back to the same value.
        lines.append(",".join([*(repr(float(value)) for value in features), CLASSES[target]]))
    return ("\n".join(lines) + "\n").encode("ascii")


def write_bundled(path: Path) -> Path:
    """Write the bundled iris CSV to `path`, creating its parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bundled_iris_csv())
    return path


def parse_dataset(
    data: bytes,
    *,
    name: str,
    version: str,
    source: str,
    min_rows_per_class: int = 10,
) -> Dataset:
    """Parse and validate CSV bytes; raise DatasetError listing every problem found."""
    if min_rows_per_class < 1:
        raise ValueError(f"min_rows_per_class must be at least 1, got {min_rows_per_class}")
    problems = _Problems()
    for problem in _identity_problems(name, version):
        problems.add("identity problems", problem)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        problems.add(
            "encoding problems",
            f"the file is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})",
        )
        raise problems.error(source) from err
    if not text.strip():
        problems.add("empty files", "the file is empty")
        raise problems.error(source)
    x, labels = _parse_rows(text, problems, min_rows_per_class)
    if problems:
        raise problems.error(source)
    return Dataset(
        name=name,
        version=version,
        source=source,
        sha256=hashlib.sha256(data).hexdigest(),
        x=x,
        labels=labels,
    )


def _parse_rows(
    text: str, problems: _Problems, min_rows_per_class: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.str_]]:
    """Check the header and every row; return the features and labels of the good rows."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    index: dict[str, int] = {}
    rows: list[list[float]] = []
    labels: list[str] = []
    per_class: Counter[str] = Counter()
    try:
        for row in reader:
            if _is_blank(row):
                continue
            line = reader.line_num
            if header is None:
                header = [field.strip() for field in row]
                index = _check_header(header, line, problems)
                if not index:
                    return _arrays(rows, labels)
                continue
            parsed = _check_row(row, line, header, index, problems)
            if parsed.label is not None:
                per_class[parsed.label] += 1
            if parsed.values is not None and parsed.label is not None:
                rows.append(parsed.values)
                labels.append(parsed.label)
    except csv.Error as err:
        # The rest of the file cannot be split into rows, so class counts would mislead.
        problems.add("CSV syntax errors", f"line {reader.line_num}: not valid CSV: {err}")
        return _arrays(rows, labels)
    if LABEL in index:
        _check_class_counts(per_class, min_rows_per_class, problems)
    return _arrays(rows, labels)


def _arrays(
    rows: list[list[float]], labels: list[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.str_]]:
    """Read-only arrays, so a frozen Dataset cannot be changed through them."""
    x = np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
    y = np.array(labels, dtype=np.str_)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _shorten(text: str, limit: int = 60) -> str:
    """Cut a value for a message, so one huge field cannot flood the output."""
    return text if len(text) <= limit else text[:limit] + "..."


def _quote(text: str) -> str:
    """Quote a (shortened) value for a message."""
    return repr(_shorten(text))


def _is_blank(row: list[str]) -> bool:
    """Tell whether a line holds nothing but spaces; such lines are skipped like a final newline."""
    return not row or (len(row) == 1 and not row[0].strip())


def _check_header(header: list[str], line: int, problems: _Problems) -> dict[str, int]:
    """Map each expected column to its field index; no mapping when this is not a header."""
    if not set(header) & set(COLUMNS):
        problems.add(
            "header problems",
            f"line {line}: expected a header with the columns {','.join(COLUMNS)} "
            f"(any order), found {_quote(','.join(header))}",
        )
        return {}
    index: dict[str, int] = {}
    for position, column in enumerate(header, start=1):
        if column in index:
            problems.add(
                "header problems",
                f"duplicate column: {column} (fields {index[column] + 1} and {position})",
            )
        elif column in COLUMNS:
            index[column] = position - 1
        elif not column:
            problems.add("header problems", f"unexpected column: an empty name (field {position})")
        else:
            problems.add("header problems", f"unexpected column: {column}")
    for column in COLUMNS:
        if column not in index:
            problems.add("header problems", f"missing column: {column}")
    return index


@dataclass(frozen=True)
class _Row:
    """A data row's features (None when any is bad or missing) and label (None when bad)."""

    values: list[float] | None
    label: str | None


def _check_row(
    row: list[str], line: int, header: list[str], index: dict[str, int], problems: _Problems
) -> _Row:
    """Check one data row against the header; record its problems."""
    fields = [field.strip() for field in row]
    if sorted(fields) == sorted(header):
        problems.add("duplicate header rows", f"line {line}: duplicate header row")
        return _Row(None, None)
    if len(fields) != len(header):
        problems.add(
            "rows with the wrong number of fields",
            f"line {line}: has {len(fields)} fields, expected {len(header)}",
        )
        return _Row(None, None)
    values: list[float] | None = []
    for feature in FEATURES:
        if feature not in index:
            values = None
            continue
        value = _check_value(fields[index[feature]], feature, line, problems)
        if value is None:
            values = None
        elif values is not None:
            values.append(value)
    label = _check_label(fields[index[LABEL]], line, problems) if LABEL in index else None
    return _Row(values, label)


def _check_value(text: str, feature: str, line: int, problems: _Problems) -> float | None:
    """Parse a feature value; None (and a recorded problem) unless it is a number in range."""
    if not text:
        problems.add("empty values", f"line {line}: {feature} is empty")
        return None
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value):
        # Also catches decimal text too large for a float, like 1e400.
        problems.add(
            "values that are not finite numbers",
            f"line {line}: {feature} is {_quote(text)}, not a finite number",
        )
        return None
    if not MIN_VALUE_EXCLUSIVE < value <= MAX_VALUE:
        problems.add(
            "out-of-range values",
            f"line {line}: {feature} {_shorten(text)} is out of range "
            f"({MIN_VALUE_EXCLUSIVE:g}, {MAX_VALUE:g}]",
        )
        return None
    return value


def _check_label(text: str, line: int, problems: _Problems) -> str | None:
    """Return the label when it is one of CLASSES exactly; otherwise record a problem."""
    if not text:
        problems.add("empty values", f"line {line}: {LABEL} is empty")
        return None
    if text not in CLASSES:
        problems.add(
            "unknown labels",
            f"line {line}: unknown label {_quote(text)} (known: {', '.join(CLASSES)})",
        )
        return None
    return text


def _check_class_counts(per_class: Counter[str], minimum: int, problems: _Problems) -> None:
    """Every class needs enough rows for a stratified holdout and a meaningful score."""
    for label in CLASSES:
        count = per_class[label]
        if count == 0:
            problems.add("class size problems", f"class {label} is missing")
        elif count < minimum:
            noun = "row" if count == 1 else "rows"
            problems.add(
                "class size problems",
                f"class {label} has {count} {noun}; at least {minimum} required",
            )


def _identity_problems(name: str, version: str) -> list[str]:
    """Return why a dataset name or version cannot serve as an S3 key part and an ECR tag."""
    rule = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    return [
        f"dataset {what} {value!r} is not valid: use {rule}"
        for what, value in (("name", name), ("version", version))
        if not IDENTIFIER.fullmatch(value)
    ]


def source_label(source: str | None) -> str:
    """Return how a source is named in metadata and messages (the bundled data has no path)."""
    return BUNDLED_SOURCE if source is None else source


def read_source(source: str | None) -> bytes:
    """Return the raw bytes of the bundled data (None), an s3://bucket/key object or a file."""
    if source is None:
        return bundled_iris_csv()
    if source.startswith(_S3_SCHEME):
        return _read_s3(source)
    try:
        return Path(source).read_bytes()
    except FileNotFoundError as err:
        raise DatasetError(source, [f"no such file: {source}"]) from err
    except OSError as err:
        raise DatasetError(source, [f"cannot read {source}: {err.strerror or err}"]) from err


def _split_s3_uri(uri: str) -> tuple[str, str]:
    """Bucket and key of an s3://bucket/key URI."""
    bucket, _, key = uri.removeprefix(_S3_SCHEME).partition("/")
    if not bucket or not key:
        raise DatasetError(uri, [f"{uri} does not name an object; expected s3://bucket/key"])
    return bucket, key


def _read_s3(uri: str) -> bytes:
    """Read an S3 object with the credentials and region of the normal boto3 environment."""
    bucket, key = _split_s3_uri(uri)
    try:
        response = boto3.client("s3").get_object(Bucket=bucket, Key=key)
        return response["Body"].read()
    except ClientError as err:
        error = err.response.get("Error", {})
        reason = error.get("Code", "unknown error")
        if error.get("Message"):
            reason += f" ({error['Message']})"
        raise DatasetError(uri, [f"cannot read {uri}: {reason}"]) from err
    except BotoCoreError as err:
        raise DatasetError(uri, [f"cannot read {uri}: {type(err).__name__}: {err}"]) from err


def dataset_identity(
    source: str | None, sha256: str, *, name: str | None, version: str | None
) -> tuple[str, str]:
    """Return (name, version): explicit values, else the path layout, else defaults.

    A key or path shaped `.../datasets/<name>/<version>/data.csv` names itself; the bundled data
    is iris/v1; any other file is iris/local-<first 12 hex digits of its sha256>.
    """
    if source is None:
        derived = ("iris", "v1")
    else:
        derived = _layout_identity(source) or ("iris", f"local-{sha256[:12]}")
    identity = (
        derived[0] if name is None else name,
        derived[1] if version is None else version,
    )
    problems = _identity_problems(*identity)
    if problems:
        raise DatasetError(source_label(source), problems)
    return identity


def _layout_identity(source: str) -> tuple[str, str] | None:
    """(name, version) from a `.../datasets/<name>/<version>/data.csv` key or path."""
    if source.startswith(_S3_SCHEME):
        source = source.removeprefix(_S3_SCHEME).partition("/")[2]
    parts = PurePosixPath(source).parts
    if len(parts) >= 4 and parts[-1] == DATASET_FILE and parts[-4] == DATASETS_PREFIX.rstrip("/"):
        return parts[-3], parts[-2]
    return None


def load_dataset(
    source: str | None,
    *,
    name: str | None = None,
    version: str | None = None,
    min_rows_per_class: int = 10,
) -> Dataset:
    """Read, identify and validate a dataset: bundled (None), s3://bucket/key or a local path."""
    data = read_source(source)
    name, version = dataset_identity(
        source, hashlib.sha256(data).hexdigest(), name=name, version=version
    )
    return parse_dataset(
        data,
        name=name,
        version=version,
        source=source_label(source),
        min_rows_per_class=min_rows_per_class,
    )
