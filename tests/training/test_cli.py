"""`python -m training`: help, exit codes, stdout/stderr, and what train writes or refuses to."""

from __future__ import annotations

import hashlib
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mypy_boto3_s3 import S3Client

import training.cli.local as local_command
from training.cli.main import COMMANDS, build_parser, main
from training.cli.main import command as load_command
from training.ml.dataset import bundled_iris_csv
from training.ml.export import METADATA_FILE, MODEL_FILE, ExportError

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_SHA256 = hashlib.sha256(bundled_iris_csv()).hexdigest()


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and modification time, to prove a directory was left alone."""
    return {
        path.name: (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(directory.iterdir())
    }


# Help.


def test_a_command_loads_only_its_own_module() -> None:
    """main imports the chosen command's module alone: a cloud command's help loads no ML code."""
    probe = (
        "import sys\n"
        "from training.cli.main import main\n"
        "main(['status', '--help'])\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'sklearn')\n"
        "          or m in ('training.cli.local', 'training.cli.promotion')]\n"
        "sys.stderr.write(repr(sorted(loaded)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stderr == "[]"
    assert "--events N" in done.stdout


def test_every_command_builds_with_help_and_options() -> None:
    """The table in main.py and each module's COMMANDS name the same commands."""
    for module in {entry.module for entry in COMMANDS.values()}:
        defined = importlib.import_module(f"training.cli.{module}").COMMANDS
        assert set(defined) == {name for name, e in COMMANDS.items() if e.module == module}
    assert all(load_command(name).description for name in COMMANDS)
    build_parser()  # every command's options at once: no clash, no missing module


def test_top_level_help_lists_the_commands_and_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("dataset", "validate", "train"):
        assert f"    {command}  " in out
    for code in ("0", "1", "2", "3", "4"):
        assert f"\n  {code}  " in out


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("dataset", ["--out"]),
        ("validate", ["--dataset", "--dataset-name", "--dataset-version", "--min-rows-per-class"]),
        (
            "train",
            [
                "--dataset",
                "--dataset-name",
                "--dataset-version",
                "--min-rows-per-class",
                "--out",
                "--seed",
                "--test-size",
                "--min-accuracy",
                "--baseline",
                "--tolerance",
            ],
        ),
    ],
)
def test_subcommand_help_explains_every_option(
    capsys: pytest.CaptureFixture[str], command: str, options: list[str]
) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m training {command}")
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  --")]
    assert listed == options


def test_train_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 42)", "(default: 0.2)", "(default: 0.9)", "(default: 0.02)"):
        assert default in out
    assert "(default: 10)" in out


def test_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "training", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m training")


def test_module_entry_point_returns_the_exit_code(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "training", "validate", "--dataset", str(tmp_path / "no.csv")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3
    assert f"no such file: {tmp_path / 'no.csv'}" in done.stderr


# Usage errors.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["fly"], "invalid choice: 'fly'"),
        (["train"], "the following arguments are required: --out"),
        (["train", "--min-accuracy", "1.01"], "argument --min-accuracy: must be between 0 and 1"),
        (["train", "--min-accuracy", "nan"], "argument --min-accuracy: must be a number"),
        (["train", "--tolerance", "-0.1"], "argument --tolerance: must be between 0 and 1"),
        (
            ["train", "--test-size", "0"],
            "argument --test-size: must be between 0 and 1 (exclusive)",
        ),
        (
            ["train", "--test-size", "1"],
            "argument --test-size: must be between 0 and 1 (exclusive)",
        ),
        (["train", "--seed", "-1"], "argument --seed: must be between 0 and 4294967295"),
        (["train", "--seed", "x"], "argument --seed: must be an integer, got 'x'"),
        (["validate", "--min-rows-per-class", "0"], "argument --min-rows-per-class: must be at"),
        (
            ["validate", "--dataset-version", "v 1"],
            "argument --dataset-version: 'v 1' is not valid",
        ),
        (["validate", "--dataset-name", "a/b"], "argument --dataset-name: 'a/b' is not valid"),
    ],
)
def test_bad_usage_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    argv = (
        [*args, "--out", str(tmp_path / "m")] if args[:1] == ["train"] and len(args) > 1 else args
    )
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
    assert not (tmp_path / "m").exists()


def test_unreadable_baseline_is_bad_usage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text('{"f1": 1}')
    assert main(["train", "--out", str(tmp_path / "m"), "--baseline", str(baseline)]) == 2
    assert f"argument --baseline: baseline {baseline} has no accuracy" in capsys.readouterr().err


# dataset.


def test_dataset_writes_the_canonical_csv(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "deep" / "data.csv"
    assert main(["dataset", "--out", str(out)]) == 0
    assert out.read_bytes() == bundled_iris_csv()
    assert capsys.readouterr().out == f"wrote {out} (sha256 {BUNDLED_SHA256})\n"


def test_dataset_default_path_is_the_v1_layout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["dataset"]) == 0
    assert (tmp_path / "build/datasets/iris/v1/data.csv").read_bytes() == bundled_iris_csv()
    assert main(["validate", "--dataset", "build/datasets/iris/v1/data.csv"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == f"ok: iris/v1, 150 rows, sha256 {BUNDLED_SHA256}"
    )


def test_dataset_that_cannot_be_written(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["dataset", "--out", str(blocker / "data.csv")]) == 1
    assert capsys.readouterr().err.startswith(f"cannot write {blocker / 'data.csv'}: ")


# validate.


def test_validate_the_bundled_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"ok: iris/v1, 150 rows, sha256 {BUNDLED_SHA256}\n"
    assert captured.err == ""


def test_validate_with_an_explicit_identity(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "upload.csv"
    path.write_bytes(bundled_iris_csv())
    assert main(["validate", "--dataset", str(path), "--dataset-version", "2024-06"]) == 0
    assert capsys.readouterr().out.startswith("ok: iris/2024-06, 150 rows")


def test_validate_a_bad_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = bundled_iris_csv().decode().splitlines()
    lines[6] = "5.4,3.9,1.7,nan,setosa"
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    assert main(["validate", "--dataset", str(path)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"dataset {path} is invalid: 1 problem\n"
        "  line 7: petal_width is 'nan', not a finite number\n"
    )


def test_validate_with_a_higher_class_minimum(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--min-rows-per-class", "51"]) == 3
    err = capsys.readouterr().err
    assert "invalid: 3 problems" in err
    assert "class setosa has 50 rows; at least 51 required" in err


# train.


def test_train_writes_the_model_and_its_metadata(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "model"
    assert main(["train", "--out", str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == [METADATA_FILE, MODEL_FILE]
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert {"dataset", "metrics", "training", "gate"} <= set(metadata)
    assert metadata["dataset"] == {
        "name": "iris",
        "version": "v1",
        "source": "bundled:sklearn.datasets.load_iris",
        "sha256": BUNDLED_SHA256,
        "rows": 150,
    }
    assert metadata["training"] == {"seed": 42, "test_size": 0.2, "n_train": 120, "n_test": 30}
    assert metadata["gate"]["verdict"] == "passed"
    assert metadata["gate"]["min_accuracy"] == 0.9
    assert metadata["feature_names"] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert metadata["model_sha256"] == hashlib.sha256((out / MODEL_FILE).read_bytes()).hexdigest()
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"model {metadata['model_version']} trained on iris/v1 (120 rows)",
        f"accuracy {metadata['metrics']['accuracy']:.4f} on 30 held-out rows; gate passed",
        f"wrote {out}",
    ]
    assert captured.err == ""


def test_train_from_s3_records_the_source(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, s3: S3Client
) -> None:
    s3.put_object(Bucket="data", Key="datasets/iris/v2/data.csv", Body=bundled_iris_csv())
    uri = "s3://data/datasets/iris/v2/data.csv"
    assert main(["train", "--dataset", uri, "--out", str(tmp_path), "--seed", "5"]) == 0
    metadata = json.loads((tmp_path / METADATA_FILE).read_text())
    assert (metadata["dataset"]["source"], metadata["dataset"]["version"]) == (uri, "v2")
    assert metadata["training"]["seed"] == 5
    assert "trained on iris/v2" in capsys.readouterr().out


def test_train_on_an_invalid_dataset_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    out = tmp_path / "model"
    assert main(["train", "--dataset", str(path), "--out", str(out)]) == 3
    assert "missing column: species" in capsys.readouterr().err
    assert not out.exists()


def test_train_on_too_few_rows_to_split(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = bundled_iris_csv().decode().splitlines()
    path = tmp_path / "small.csv"
    path.write_text("\n".join([lines[0], lines[1], lines[51], lines[101]]) + "\n")
    args = ["--dataset", str(path), "--min-rows-per-class", "1", "--out", str(tmp_path / "m")]
    assert main(["train", *args]) == 3
    assert "cannot hold out 0.2 of 3 rows stratified by class" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_gate_refusal_leaves_the_current_model_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "model"
    assert main(["train", "--out", str(out)]) == 0
    before = snapshot(out)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"accuracy": 1.0}))
    capsys.readouterr()
    # Seed 1 holds out a split the model scores 29/30 on: 0.9667 < 1.0 - 0.02.
    args = ["--out", str(out), "--seed", "1", "--baseline", str(baseline)]
    assert main(["train", *args]) == 4
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"refused by the quality gate; nothing written to {out}:\n"
        "  accuracy 0.9667 is worse than the baseline's 1.00 by more than the tolerance 0.02\n"
    )
    assert snapshot(out) == before


def test_gate_refusal_creates_no_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "model"
    assert main(["train", "--out", str(out), "--seed", "1", "--min-accuracy", "1"]) == 4
    assert "accuracy 0.9667 is below the minimum 1.00" in capsys.readouterr().err
    assert not out.exists()


def test_the_current_models_metadata_is_a_baseline(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    current = tmp_path / "current"
    assert main(["train", "--out", str(current)]) == 0
    baseline = ["--seed", "1", "--baseline", str(current / METADATA_FILE)]
    assert main(["train", "--out", str(tmp_path / "a"), *baseline, "--tolerance", "0.05"]) == 0
    assert main(["train", "--out", str(tmp_path / "b"), *baseline]) == 4
    assert not (tmp_path / "b").exists()
    gate = json.loads((tmp_path / "a" / METADATA_FILE).read_text())["gate"]
    assert (gate["baseline_accuracy"], gate["accuracy"]) == (1.0, 29 / 30)


def test_export_error_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise ExportError("no exporter for Thing; supported: KNeighborsClassifier")

    monkeypatch.setattr(local_command, "export_model", refuse)
    assert main(["train", "--out", str(tmp_path / "m")]) == 1
    assert capsys.readouterr().err == (
        "cannot export the model: no exporter for Thing; supported: KNeighborsClassifier\n"
    )


def test_unwritable_out_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.write_text("a file, not a directory")
    assert main(["train", "--out", str(out)]) == 1
    assert capsys.readouterr().err.startswith(f"cannot write the model to {out}: ")
