"""The dataset: canonical bundled CSV, every validation rule, S3 and local sources, identity."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.exceptions import NoCredentialsError
from mypy_boto3_s3 import S3Client
from sklearn.datasets import load_iris

from training.ml.dataset import (
    CLASSES,
    COLUMNS,
    MAX_PROBLEMS_PER_KIND,
    Dataset,
    DatasetError,
    bundled_iris_csv,
    dataset_identity,
    load_dataset,
    parse_dataset,
    read_source,
    write_bundled,
)

HEADER = ",".join(COLUMNS)
# The identity of iris v1: if scikit-learn ever ships different iris values, v1 must not
# silently change under the same name.
BUNDLED_SHA256 = "9cc1c345c71bcc9b486b74cbf6063fa66f4bb5e0f603a4b3c3471ec2e5e8e355"


def to_csv(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def parse(data: bytes, min_rows_per_class: int = 10) -> Dataset:
    return parse_dataset(
        data, name="iris", version="v1", source="test.csv", min_rows_per_class=min_rows_per_class
    )


def problems_of(data: bytes, min_rows_per_class: int = 10) -> list[str]:
    with pytest.raises(DatasetError) as caught:
        parse(data, min_rows_per_class)
    return caught.value.problems


def set_field(lines: list[str], line: int, column: str, value: str) -> list[str]:
    """The lines with `column` of file line `line` (header = line 1) set to `value`."""
    fields = lines[line - 1].split(",")
    fields[COLUMNS.index(column)] = value
    return [*lines[: line - 1], ",".join(fields), *lines[line:]]


# The bundled data.


def test_bundled_csv_is_the_canonical_iris() -> None:
    data = bundled_iris_csv()
    lines = data.decode("ascii").split("\n")
    assert lines[0] == "sepal_length,sepal_width,petal_length,petal_width,species"
    assert lines[1] == "5.1,3.5,1.4,0.2,setosa"
    assert lines[-1] == ""  # trailing newline
    assert b"\r" not in data
    rows = lines[1:-1]
    assert len(rows) == 150
    assert Counter(row.rsplit(",", 1)[1] for row in rows) == dict.fromkeys(CLASSES, 50)


def test_bundled_csv_bytes_are_stable() -> None:
    assert hashlib.sha256(bundled_iris_csv()).hexdigest() == BUNDLED_SHA256
    assert bundled_iris_csv() == bundled_iris_csv()


def test_bundled_dataset_loads_with_sklearns_values() -> None:
    dataset = load_dataset(None)
    iris = load_iris()
    assert dataset.x.dtype == np.float64
    assert dataset.x.shape == (150, 4)
    np.testing.assert_array_equal(dataset.x, iris.data)
    assert dataset.labels.dtype.kind == "U"
    assert dataset.labels.tolist() == [CLASSES[t] for t in iris.target]
    info = dataset.info()
    assert info == {
        "name": "iris",
        "version": "v1",
        "source": "bundled:sklearn.datasets.load_iris",
        "sha256": BUNDLED_SHA256,
        "rows": 150,
    }
    assert json.loads(json.dumps(info)) == info


def test_dataset_arrays_are_read_only() -> None:
    dataset = load_dataset(None)
    with pytest.raises(ValueError, match="read-only"):
        dataset.x[0, 0] = 1.0


def test_write_bundled_creates_parents(tmp_path: Path) -> None:
    path = write_bundled(tmp_path / "a" / "b" / "data.csv")
    assert path.read_bytes() == bundled_iris_csv()


def test_read_source_none_is_the_bundled_data() -> None:
    assert read_source(None) == bundled_iris_csv()


# Accepted files.


def test_columns_in_any_order_give_features_in_feature_order(iris_lines: list[str]) -> None:
    order = ["species", "petal_width", "sepal_length", "petal_length", "sepal_width"]
    shuffled = []
    for line in iris_lines:
        fields = dict(zip(COLUMNS, line.split(","), strict=True))
        shuffled.append(",".join(fields[column] for column in order))
    data = to_csv(shuffled)
    reference = parse(bundled_iris_csv())
    dataset = parse(data)
    np.testing.assert_array_equal(dataset.x, reference.x)
    assert dataset.labels.tolist() == reference.labels.tolist()
    assert dataset.sha256 == hashlib.sha256(data).hexdigest() != reference.sha256


def test_common_csv_variations_are_accepted(iris_lines: list[str]) -> None:
    lines = set_field(iris_lines, 2, "sepal_length", " 10 ")  # upper bound, spaces
    lines = set_field(lines, 3, "sepal_width", '"3.0e0"')  # quoted, exponent
    lines = set_field(lines, 4, "species", " setosa ")
    text = "\r\n".join(lines[:50]) + "\r\n\r\n  \r\n" + "\r\n".join(lines[50:]) + "\r\n\r\n"
    dataset = parse(b"\xef\xbb\xbf" + text.encode())  # BOM, CRLF, blank lines
    assert dataset.rows == 150
    assert dataset.x[0, 0] == 10.0
    assert dataset.x[1, 1] == 3.0
    assert dataset.labels[2] == "setosa"


def test_min_rows_per_class_is_configurable(iris_lines: list[str]) -> None:
    few_virginica = iris_lines[:104]
    assert parse(to_csv(few_virginica), min_rows_per_class=3).rows == 103
    assert problems_of(to_csv(few_virginica), min_rows_per_class=4) == [
        "class virginica has 3 rows; at least 4 required"
    ]


def test_min_rows_per_class_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_rows_per_class must be at least 1"):
        parse(bundled_iris_csv(), min_rows_per_class=0)


# One rule at a time: the single problem names the line, the field and the value.


@pytest.mark.parametrize(
    ("line", "column", "value", "expected"),
    [
        (7, "petal_width", "nan", "line 7: petal_width is 'nan', not a finite number"),
        (7, "petal_width", "NaN", "line 7: petal_width is 'NaN', not a finite number"),
        (8, "sepal_width", "inf", "line 8: sepal_width is 'inf', not a finite number"),
        (8, "sepal_width", "-Infinity", "line 8: sepal_width is '-Infinity', not a finite number"),
        (9, "petal_length", "1e400", "line 9: petal_length is '1e400', not a finite number"),
        (9, "petal_length", "abc", "line 9: petal_length is 'abc', not a finite number"),
        (9, "petal_length", "1_0", "line 9: petal_length is '1_0', not a finite number"),
        (9, "petal_length", "5,1", "line 9: has 6 fields, expected 5"),
        (10, "petal_length", "\uff15", "line 10: petal_length is '\uff15', not a finite number"),
        (7, "sepal_width", "", "line 7: sepal_width is empty"),
        (7, "sepal_width", "   ", "line 7: sepal_width is empty"),
        (4, "sepal_length", "12.0", "line 4: sepal_length 12.0 is out of range (0, 10]"),
        (4, "sepal_length", "10.01", "line 4: sepal_length 10.01 is out of range (0, 10]"),
        (4, "sepal_length", "0", "line 4: sepal_length 0 is out of range (0, 10]"),
        (4, "sepal_length", "-1.5", "line 4: sepal_length -1.5 is out of range (0, 10]"),
        (
            12,
            "species",
            "iris-foo",
            "line 12: unknown label 'iris-foo' (known: setosa, versicolor, virginica)",
        ),
        (
            12,
            "species",
            "Setosa",
            "line 12: unknown label 'Setosa' (known: setosa, versicolor, virginica)",
        ),
        (12, "species", "", "line 12: species is empty"),
    ],
)
def test_each_bad_value_is_reported(
    iris_lines: list[str], line: int, column: str, value: str, expected: str
) -> None:
    assert problems_of(to_csv(set_field(iris_lines, line, column, value))) == [expected]


def test_row_with_too_few_fields(iris_lines: list[str]) -> None:
    iris_lines[8] = iris_lines[8].rsplit(",", 1)[0]
    assert problems_of(to_csv(iris_lines)) == ["line 9: has 4 fields, expected 5"]


def test_duplicate_header_row(iris_lines: list[str]) -> None:
    iris_lines.insert(1, HEADER)
    iris_lines.insert(80, " species,sepal_length,sepal_width,petal_length,petal_width")
    assert problems_of(to_csv(iris_lines)) == [
        "line 2: duplicate header row",
        "line 81: duplicate header row",
    ]


def drop_column(lines: list[str], column: str) -> list[str]:
    position = COLUMNS.index(column)
    return [",".join(f for i, f in enumerate(line.split(",")) if i != position) for line in lines]


def test_missing_label_column(iris_lines: list[str]) -> None:
    assert problems_of(to_csv(drop_column(iris_lines, "species"))) == ["missing column: species"]


def test_missing_feature_column(iris_lines: list[str]) -> None:
    lines = drop_column(iris_lines, "petal_width")
    assert problems_of(to_csv(lines)) == ["missing column: petal_width"]


def test_unexpected_and_duplicate_columns(iris_lines: list[str]) -> None:
    lines = [f"{iris_lines[0]},colour,,species"] + [
        f"{line},blue,,setosa" for line in iris_lines[1:]
    ]
    assert problems_of(to_csv(lines)) == [
        "unexpected column: colour",
        "unexpected column: an empty name (field 7)",
        "duplicate column: species (fields 5 and 8)",
    ]


def test_file_without_a_header(iris_lines: list[str]) -> None:
    assert problems_of(to_csv(iris_lines[1:])) == [
        "line 1: expected a header with the columns "
        "sepal_length,sepal_width,petal_length,petal_width,species (any order), "
        "found '5.1,3.5,1.4,0.2,setosa'"
    ]


def test_class_with_too_few_rows(iris_lines: list[str]) -> None:
    assert problems_of(to_csv(iris_lines[:104])) == [
        "class virginica has 3 rows; at least 10 required"
    ]


def test_missing_class(iris_lines: list[str]) -> None:
    lines = [line for line in iris_lines if not line.endswith(",versicolor")]
    assert problems_of(to_csv(lines)) == ["class versicolor is missing"]


@pytest.mark.parametrize("data", [b"", b"\n", b" \r\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file(data: bytes) -> None:
    assert problems_of(data) == ["the file is empty"]


def test_file_that_is_not_utf8(iris_lines: list[str]) -> None:
    data = to_csv(iris_lines).replace(b"setosa", b"s\xe9tosa", 1)
    offset = len(HEADER) + len("\n5.1,3.5,1.4,0.2,s")
    assert problems_of(data) == [f"the file is not UTF-8 text (byte 0xe9 at offset {offset})"]


def test_unparseable_csv_stops_with_the_line(iris_lines: list[str]) -> None:
    # The csv module refuses fields over 128 KiB; class counts are then not reported.
    huge = '"' + "1" * 200_000 + '"'
    lines = [*iris_lines[:5], f"{huge},1,1,1,setosa", *iris_lines[5:]]
    (problem,) = problems_of(to_csv(lines))
    assert problem.startswith("line 6: not valid CSV: field larger than field limit")


def test_huge_values_are_shortened_in_messages(iris_lines: list[str]) -> None:
    lines = set_field(iris_lines, 2, "sepal_width", "x" * 1000)
    lines = set_field(lines, 3, "sepal_width", "1" * 300)
    assert problems_of(to_csv(lines)) == [
        f"line 2: sepal_width is '{'x' * 60}...', not a finite number",
        f"line 3: sepal_width {'1' * 60}... is out of range (0, 10]",
    ]


def test_invalid_identity_is_a_problem() -> None:
    with pytest.raises(DatasetError) as caught:
        parse_dataset(bundled_iris_csv(), name="iris", version="v 1", source="x.csv")
    assert caught.value.problems == [
        "dataset version 'v 1' is not valid: use 1-64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    ]


# Many problems at once.


def test_every_problem_is_reported_in_one_error(iris_lines: list[str]) -> None:
    lines = set_field(iris_lines, 3, "petal_width", "nan")
    lines = set_field(lines, 5, "species", "iris-foo")
    lines = set_field(lines, 6, "sepal_length", "11")
    lines[8] = "5.0,3.0,1.0"
    lines = [line for line in lines if not line.endswith(",virginica")]
    with pytest.raises(DatasetError) as caught:
        parse(to_csv(lines))
    expected = [
        "line 3: petal_width is 'nan', not a finite number",
        "line 5: unknown label 'iris-foo' (known: setosa, versicolor, virginica)",
        "line 6: sepal_length 11 is out of range (0, 10]",
        "line 9: has 3 fields, expected 5",
        "class virginica is missing",
    ]
    assert caught.value.problems == expected
    message = str(caught.value)
    assert message.splitlines() == [
        "dataset test.csv is invalid: 5 problems",
        *(f"  {problem}" for problem in expected),
    ]


def test_a_bad_row_reports_every_bad_field(iris_lines: list[str]) -> None:
    lines = set_field(iris_lines, 3, "sepal_length", "x")
    lines = set_field(lines, 3, "petal_length", "99")
    lines = set_field(lines, 3, "species", "rose")
    assert problems_of(to_csv(lines)) == [
        "line 3: sepal_length is 'x', not a finite number",
        "line 3: petal_length 99 is out of range (0, 10]",
        "line 3: unknown label 'rose' (known: setosa, versicolor, virginica)",
    ]


def test_repeated_problems_are_capped_per_kind(iris_lines: list[str]) -> None:
    lines = iris_lines
    for line in range(2, 102):
        lines = set_field(lines, line, "sepal_width", "20")
    lines = set_field(lines, 120, "species", "rose")
    with pytest.raises(DatasetError) as caught:
        parse(to_csv(lines))
    problems = caught.value.problems
    assert len(problems) == MAX_PROBLEMS_PER_KIND + 2
    assert problems[0] == "line 2: sepal_width 20 is out of range (0, 10]"
    assert problems[MAX_PROBLEMS_PER_KIND - 1] == "line 21: sepal_width 20 is out of range (0, 10]"
    assert problems[MAX_PROBLEMS_PER_KIND] == (
        "line 120: unknown label 'rose' (known: setosa, versicolor, virginica)"
    )
    assert problems[-1] == "... and 80 more out-of-range values"
    assert caught.value.total == 101
    assert str(caught.value).splitlines()[0] == (
        "dataset test.csv is invalid: 101 problems (at most 20 of each kind listed)"
    )


def test_a_large_broken_file_gives_a_short_message() -> None:
    data = (HEADER + "\n" + "0,0,0,0,x\n" * 20_000).encode()
    with pytest.raises(DatasetError) as caught:
        parse(data)
    assert caught.value.total == 20_000 * 5 + len(CLASSES)
    assert len(str(caught.value).splitlines()) < 60


# Sources.


def test_load_from_s3_uses_the_key_layout(s3: S3Client) -> None:
    data = bundled_iris_csv()
    s3.put_object(Bucket="data", Key="datasets/iris/v2/data.csv", Body=data)
    dataset = load_dataset("s3://data/datasets/iris/v2/data.csv")
    assert (dataset.name, dataset.version) == ("iris", "v2")
    assert dataset.source == "s3://data/datasets/iris/v2/data.csv"
    assert dataset.sha256 == hashlib.sha256(data).hexdigest()
    assert dataset.rows == 150


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "s3://data/datasets/iris/v9/data.csv",
            "cannot read s3://data/datasets/iris/v9/data.csv: NoSuchKey",
        ),
        ("s3://nobucket/data.csv", "cannot read s3://nobucket/data.csv: NoSuchBucket"),
    ],
)
def test_missing_s3_object(s3: S3Client, uri: str, expected: str) -> None:
    with pytest.raises(DatasetError) as caught:
        load_dataset(uri)
    (problem,) = caught.value.problems
    assert problem.startswith(expected)
    assert str(caught.value).startswith(f"dataset {uri} is invalid: 1 problem\n")


@pytest.mark.parametrize("uri", ["s3://data", "s3://data/", "s3:///key.csv"])
def test_s3_uri_without_a_key(uri: str) -> None:
    with pytest.raises(DatasetError) as caught:
        read_source(uri)
    assert caught.value.problems == [f"{uri} does not name an object; expected s3://bucket/key"]


def test_s3_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoCredentialsClient:
        def get_object(self, **_: str) -> None:
            raise NoCredentialsError

    monkeypatch.setattr(boto3, "client", lambda *_: NoCredentialsClient())
    with pytest.raises(DatasetError) as caught:
        read_source("s3://data/data.csv")
    assert caught.value.problems == [
        "cannot read s3://data/data.csv: NoCredentialsError: Unable to locate credentials"
    ]


def test_load_from_a_local_path(tmp_path: Path) -> None:
    path = write_bundled(tmp_path / "datasets" / "flowers" / "2024-06" / "data.csv")
    dataset = load_dataset(str(path))
    assert (dataset.name, dataset.version, dataset.source) == ("flowers", "2024-06", str(path))


def test_missing_local_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DatasetError) as caught:
        load_dataset(str(path))
    assert caught.value.problems == [f"no such file: {path}"]


def test_directory_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        read_source(str(tmp_path))
    assert caught.value.problems == [f"cannot read {tmp_path}: Is a directory"]


# Identity.

SHA = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("source", "name", "version", "expected"),
    [
        (None, None, None, ("iris", "v1")),
        ("s3://b/datasets/iris/v2/data.csv", None, None, ("iris", "v2")),
        ("s3://b/team/datasets/flowers/2024.06_01/data.csv", None, None, ("flowers", "2024.06_01")),
        ("build/datasets/iris/v1/data.csv", None, None, ("iris", "v1")),
        ("/srv/datasets/iris/v3/data.csv", None, None, ("iris", "v3")),
        ("uploads/iris.csv", None, None, ("iris", "local-0123456789ab")),
        ("s3://b/uploads/iris.csv", None, None, ("iris", "local-0123456789ab")),
        ("datasets/iris/v1/other.csv", None, None, ("iris", "local-0123456789ab")),
        ("iris/v1/data.csv", None, None, ("iris", "local-0123456789ab")),
        ("build/datasets/iris/v1/data.csv", "flowers", "v9", ("flowers", "v9")),
        ("build/datasets/iris/v1/data.csv", None, "v9", ("iris", "v9")),
        ("uploads/iris.csv", "setosa-only", None, ("setosa-only", "local-0123456789ab")),
        (None, None, "v2", ("iris", "v2")),
    ],
)
def test_dataset_identity(
    source: str | None, name: str | None, version: str | None, expected: tuple[str, str]
) -> None:
    assert dataset_identity(source, SHA, name=name, version=version) == expected


@pytest.mark.parametrize(
    ("source", "name", "version", "bad"),
    [
        (None, None, "v 1", "version 'v 1'"),
        (None, None, "", "version ''"),
        (None, None, "-v1", "version '-v1'"),
        (None, None, "v1\n", "version 'v1\\n'"),
        (None, None, "v" * 65, f"version '{'v' * 65}'"),
        (None, "iris/v1", None, "name 'iris/v1'"),
        ("s3://b/datasets/my iris/v1/data.csv", None, None, "name 'my iris'"),
    ],
)
def test_invalid_identity(
    source: str | None, name: str | None, version: str | None, bad: str
) -> None:
    with pytest.raises(DatasetError) as caught:
        dataset_identity(source, SHA, name=name, version=version)
    (problem,) = caught.value.problems
    assert problem.startswith(f"dataset {bad} is not valid: use 1-64 letters")


def test_longest_valid_version() -> None:
    assert dataset_identity(None, SHA, name=None, version="v" * 64) == ("iris", "v" * 64)
