"""Serving benchmark: our handler against the framework floor and the usual scikit-learn handler.

The floor (bench/floor) is FastAPI + Mangum + numpy answering a constant: what any such Lambda
pays, so ours over it is the cost of our own work. The baseline (bench/baseline) is the usual
FastAPI + joblib scikit-learn app. Every figure is measured in this run for all three, on this
machine, so the ratios hold even where absolute numbers drift. `make bench` runs it; nothing
here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
# `python bench/bench.py` puts bench/ first on the path; the repository root holds training/.
sys.path.insert(0, str(ROOT))
from training.contract import ORIGIN_HEADER  # noqa: E402

SERVING = ROOT / "lambda_image"
BASELINE = ROOT / "bench" / "baseline"
FLOOR_APP = ROOT / "bench" / "floor"
WHEELS = ROOT / ".venv" / "wheelhouse"
EVENTS = ROOT / "tests" / "serving" / "events"
# The last run's figures, committed: `make cost` prices Lambda time from them.
RESULTS = ROOT / "bench" / "results.json"
SINGLE = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
BATCH = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] * 500}


@dataclass(frozen=True)
class Subject:
    """An app under test: where its code lives and which module holds `handler`."""

    name: str
    path: Path
    module: str
    requirements: Path


OURS = Subject("ours", SERVING, "app.handler", SERVING / "requirements.txt")
# The floor needs what ours installs (FastAPI, Mangum, numpy) and nothing else.
FLOOR = Subject("floor", FLOOR_APP, "app", SERVING / "requirements.txt")
BASE = Subject("baseline", BASELINE, "app", BASELINE / "requirements.txt")
# The order children run in, and the columns' order.
SUBJECTS = (OURS, FLOOR, BASE)


FLOWER_QUERY = "sepal_length=5.1&sepal_width=3.5&petal_length=1.4&petal_width=0.2"


def http_event(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event, what the function receives, from the recorded one."""
    event: dict[str, Any] = json.loads((EVENTS / "http_v2_post_predict.json").read_text())
    event.update(rawPath=path, isBase64Encoded=False)
    event["requestContext"]["http"].update(method=method, path=path)
    event["headers"][ORIGIN_HEADER] = "origin-key-from-cloudfront"
    if method == "POST":
        event["body"] = json.dumps(body)
        event["headers"]["content-length"] = str(len(event["body"]))
    else:
        del event["headers"]["content-type"], event["headers"]["content-length"]
        event.update(body=None, rawQueryString=FLOWER_QUERY)
        event["queryStringParameters"] = dict(q.split("=") for q in FLOWER_QUERY.split("&"))
    return event


# --- child processes: one subject per fresh interpreter --------------------------------------


def child_cold(subject: Subject) -> NoReturn:
    """Import the handler, load the model, answer the first GET and exit: the Lambda cold path."""
    sys.path.insert(0, str(subject.path))
    module = __import__(subject.module, fromlist=["handler"])
    response = module.handler(http_event("GET", "/predict/"), None)
    if response["statusCode"] != 200:
        raise SystemExit(f"{subject.name}: first request failed: {response}")
    # Out now, skipping Python's teardown: no cold start includes it, and it costs an app by
    # the objects it holds (here 0.1-0.4 s for the floor, 0.35-0.9 s for the baseline, under
    # 0.1 s for ours, whose gc.freeze() spares them), so timing it flattered ours.
    sys.stdout.flush()
    os._exit(0)


def child_warm(subject: Subject, requests: int, batch_requests: int) -> None:
    """Warm latencies through the handler, in process; prints JSON."""
    sys.path.insert(0, str(subject.path))
    handler = __import__(subject.module, fromlist=["handler"]).handler
    single = http_event("POST", "/predict", SINGLE)
    batch = http_event("POST", "/predict", BATCH)

    def timings(event: dict[str, Any], count: int) -> list[float]:
        for _ in range(max(20, count // 20)):
            handler(event, None)
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            response = handler(event, None)
            samples.append(time.perf_counter() - start)
            if response["statusCode"] != 200:
                raise SystemExit(f"{subject.name}: {response}")
        return sorted(samples)

    one, many = timings(single, requests), timings(batch, batch_requests)
    json.dump(
        {
            "single_p50": one[len(one) // 2],
            "single_p99": one[int(len(one) * 0.99)],
            "batch_p50": many[len(many) // 2],
        },
        sys.stdout,
    )


# --- parent ---------------------------------------------------------------------------------


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment: no PYTHONDONTWRITEBYTECODE, no inherited PYTHONPATH."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, **extra}


def run_child(args: list[str], env: dict[str, str]) -> str:
    """Run this script in a fresh interpreter; its stdout."""
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr}")
    return proc.stdout


def baseline_model(directory: Path) -> Path:
    """The usual artifact: a joblib pickle of KNeighborsClassifier(n_neighbors=3)."""
    import joblib  # noqa: PLC0415 - the parent needs it only here
    import numpy as np  # noqa: PLC0415
    from sklearn.neighbors import KNeighborsClassifier  # noqa: PLC0415

    from training.ml.dataset import load_dataset  # noqa: PLC0415

    data = load_dataset(None)
    model = KNeighborsClassifier(n_neighbors=3).fit(data.x, np.asarray(data.labels))
    path = directory / "baseline.joblib"
    joblib.dump(model, path)
    return path


def cold_starts(env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Wall time of fresh interpreters answering their first request, interleaved."""
    times: dict[str, list[float]] = {s.name: [] for s in SUBJECTS}
    for subject in SUBJECTS:  # one untimed run each: file cache warm for all
        run_child(["--child-cold", subject.name], env)
    for _ in range(runs):
        for subject in SUBJECTS:
            start = time.perf_counter()
            run_child(["--child-cold", subject.name], env)
            times[subject.name].append(time.perf_counter() - start)
    return times


def installed_size(requirements: Path, target: Path) -> int:
    """Bytes on disk after installing `requirements` alone into an empty folder."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-index", "--find-links", str(WHEELS), "--target", str(target), "-r",
         str(requirements)],
        check=True,
        capture_output=True,
        timeout=600,
    )  # fmt: skip
    return sum(f.stat().st_size for f in target.rglob("*") if f.is_file())


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Cold starts, warm rounds and installed sizes of every subject."""
    if not (SERVING / "model" / "model.npz").exists():
        raise SystemExit("lambda_image/model is missing: run `make model`")
    if not WHEELS.is_dir():
        raise SystemExit(".venv/wheelhouse is missing: run `make install`")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        env = child_env({"BASELINE_MODEL": str(baseline_model(scratch))})
        # Lambda images carry compiled bytecode; give every app its own before timing.
        for subject in SUBJECTS:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(subject.path)], check=True
            )
        say("cold starts ...")
        cold = cold_starts(env, args.cold_runs)
        say("warm requests ...")
        warm: dict[str, list[dict[str, float]]] = {s.name: [] for s in SUBJECTS}
        counts = ["--requests", str(args.requests), "--batch-requests", str(args.batch_requests)]
        for _ in range(args.rounds):
            for subject in SUBJECTS:
                out = run_child(["--child-warm", subject.name, *counts], env)
                # The last line: the app writes its request logs to stdout before it.
                warm[subject.name].append(json.loads(out.splitlines()[-1]))
        say("installing dependencies into empty folders ...")
        files = {s.requirements for s in SUBJECTS}  # the floor's are ours: installed once
        size_of = {f: installed_size(f, scratch / f.parent.name) for f in files}
        sizes = {s.name: size_of[s.requirements] for s in SUBJECTS}
    return {"cold": cold, "warm": warm, "sizes": sizes}


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure for every subject and its target."""

    label: str
    ours: float
    floor: float
    base: float
    unit: str
    target: str
    ok: bool

    def cells(self) -> list[str]:
        """The row as printed."""
        scale, fmt = {
            "ms": (1e3, "{:.1f} ms"),
            "us": (1e6, "{:.0f} us"),
            "MB": (1e-6, "{:.1f} MB"),
        }[self.unit]
        return [
            self.label,
            fmt.format(self.ours * scale),
            fmt.format(self.floor * scale),
            fmt.format(self.base * scale),
            f"{self.ours / self.floor:.2f}x",
            f"{self.ours / self.base:.2f}x",
            self.target,
            "ok" if self.ok else "MISSED",
        ]


HEADER = ["figure", "ours", "floor", "baseline", "ours/floor", "ours/base", "target", "verdict"]


def columns(by_name: dict[str, float]) -> tuple[float, float, float]:
    """A figure per subject, in the table's column order: ours, floor, baseline."""
    ours, floor, base = (by_name[s.name] for s in SUBJECTS)
    return ours, floor, base


def rows(results: dict[str, Any]) -> list[Row]:
    """The figures against their targets."""
    cold, warm, sizes = results["cold"], results["warm"], results["sizes"]

    def med(key: str) -> tuple[float, float, float]:
        """A warm figure's median over the rounds."""
        return columns({n: statistics.median(r[key] for r in rounds) for n, rounds in warm.items()})

    c_ours, c_floor, c_base = columns({n: statistics.median(v) for n, v in cold.items()})
    p50, p99, batch, size = med("single_p50"), med("single_p99"), med("batch_p50"), columns(sizes)
    return [
        Row("cold init, first GET (median)", c_ours, c_floor, c_base, "ms",
            "<= 0.35x baseline, <= 1.15x floor",
            c_ours <= 0.35 * c_base and c_ours <= 1.15 * c_floor),
        Row("warm POST 1 instance, p50", *p50, "us", "<= 200 us, <= 1.5x floor",
            p50[0] <= 200e-6 and p50[0] <= 1.5 * p50[1]),
        Row("warm POST 1 instance, p99", *p99, "us", "<= 400 us", p99[0] <= 400e-6),
        Row("POST 1,000 instances, p50", *batch, "ms", "<= 5 ms", batch[0] <= 5e-3),
        Row("serving deps on disk", *size, "MB", "<= 100 MB", size[0] <= 100e6),
    ]  # fmt: skip


# The figures for other tools (scripts/cost.py): key -> the row it comes from.
RESULT_KEYS = {
    "cold_init_s": "cold init, first GET (median)",
    "warm_post_p50_s": "warm POST 1 instance, p50",
    "warm_post_p99_s": "warm POST 1 instance, p99",
    "batch_post_p50_s": "POST 1,000 instances, p50",
    "serving_deps_bytes": "serving deps on disk",
}


def results_document(figures: list[Row], machine: dict[str, Any]) -> dict[str, Any]:
    """The run's figures in SI units (seconds, bytes) per subject, and the machine they ran on."""
    by_label = {r.label: r for r in figures}
    return {
        "machine": machine,
        "figures": {
            key: {
                "ours": by_label[label].ours,
                "floor": by_label[label].floor,
                "baseline": by_label[label].base,
            }
            for key, label in RESULT_KEYS.items()
        },
    }


def table(lines: list[list[str]]) -> str:
    """Left-aligned columns separated by bars."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out) + "\n"


def main() -> int:
    """Measure every subject and print the table; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold-runs", type=int, default=9, help="cold starts per app")
    parser.add_argument("--requests", type=int, default=5000, help="warm single requests")
    parser.add_argument("--batch-requests", type=int, default=200, help="1,000-row requests")
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds (median reported)")
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="write the figures here (default: %(default)s)",
    )
    subjects = {s.name: s for s in SUBJECTS}
    parser.add_argument("--child-cold", choices=list(subjects), help=argparse.SUPPRESS)
    parser.add_argument("--child-warm", choices=list(subjects), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_cold:
        child_cold(subjects[args.child_cold])
    if args.child_warm:
        child_warm(subjects[args.child_warm], args.requests, args.batch_requests)
        return 0

    results = measure(args)
    figures = rows(results)
    sys.stdout.write(table([HEADER, *(r.cells() for r in figures)]))
    spread = ", ".join(
        f"{name} {min(v) * 1e3:.0f}-{max(v) * 1e3:.0f} ms" for name, v in results["cold"].items()
    )
    sys.stdout.write(
        f"\n{args.cold_runs} cold starts each ({spread}); warm: median of {args.rounds} rounds "
        f"of {args.requests} single and {args.batch_requests} batch requests; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.\n"
    )
    machine = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    args.results.write_text(json.dumps(results_document(figures, machine), indent=2) + "\n")
    return 0 if all(r.ok for r in figures) else 1


def say(text: str) -> None:
    """Progress on stderr, so stdout holds only the table."""
    sys.stderr.write(text + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
