"""Serving benchmark: our handler against the usual FastAPI + joblib scikit-learn handler.

Every figure is measured in this run for both apps, on this machine, so the ratios hold even
where absolute numbers drift. `make bench` runs it; nothing here is a test.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVING = ROOT / "lambda_image"
BASELINE = ROOT / "bench" / "baseline"
WHEELS = ROOT / ".venv" / "wheelhouse"
EVENTS = ROOT / "tests" / "serving" / "events"
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
BASE = Subject("baseline", BASELINE, "app", BASELINE / "requirements.txt")


def rest_event(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A REST (v1) API Gateway event from the recorded one."""
    event: dict[str, Any] = json.loads((EVENTS / "rest_v1_get_predict.json").read_text())
    if method == "POST":
        event.update(
            httpMethod="POST",
            path=path,
            body=json.dumps(body),
            queryStringParameters=None,
            multiValueQueryStringParameters=None,
        )
        event["headers"]["Content-Type"] = "application/json"
        event["multiValueHeaders"]["Content-Type"] = ["application/json"]
    return event


# --- child processes: one subject per fresh interpreter --------------------------------------


def child_cold(subject: Subject) -> None:
    """Import the handler, load the model and answer the first GET: the Lambda cold path."""
    sys.path.insert(0, str(subject.path))
    module = __import__(subject.module, fromlist=["handler"])
    response = module.handler(rest_event("GET", "/predict/"), None)
    if response["statusCode"] != 200:
        raise SystemExit(f"{subject.name}: first request failed: {response}")


def child_warm(subject: Subject, requests: int, batch_requests: int) -> None:
    """Warm latencies through the handler, in process; prints JSON."""
    sys.path.insert(0, str(subject.path))
    handler = __import__(subject.module, fromlist=["handler"]).handler
    single = rest_event("POST", "/predict", SINGLE)
    batch = rest_event("POST", "/predict", BATCH)

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

    sys.path.insert(0, str(ROOT))
    from training.dataset import load_dataset  # noqa: PLC0415

    data = load_dataset(None)
    model = KNeighborsClassifier(n_neighbors=3).fit(data.x, np.asarray(data.labels))
    path = directory / "baseline.joblib"
    joblib.dump(model, path)
    return path


def cold_starts(env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Wall time of fresh interpreters answering their first request, interleaved."""
    times: dict[str, list[float]] = {OURS.name: [], BASE.name: []}
    for subject in (OURS, BASE):  # one untimed run each: file cache warm for both
        run_child(["--child-cold", subject.name], env)
    for _ in range(runs):
        for subject in (OURS, BASE):
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
    """Cold starts, warm rounds and installed sizes of both subjects."""
    if not (SERVING / "model" / "model.npz").exists():
        raise SystemExit("lambda_image/model is missing: run `make model`")
    if not WHEELS.is_dir():
        raise SystemExit(".venv/wheelhouse is missing: run `make install`")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        env = child_env({"BASELINE_MODEL": str(baseline_model(scratch))})
        # Lambda images carry compiled bytecode; give both apps theirs before timing.
        for subject in (OURS, BASE):
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(subject.path)], check=True
            )
        say("cold starts ...")
        cold = cold_starts(env, args.cold_runs)
        say("warm requests ...")
        warm: dict[str, list[dict[str, float]]] = {OURS.name: [], BASE.name: []}
        counts = ["--requests", str(args.requests), "--batch-requests", str(args.batch_requests)]
        for _ in range(args.rounds):
            for subject in (OURS, BASE):
                out = run_child(["--child-warm", subject.name, *counts], env)
                # The last line: the app writes its request logs to stdout before it.
                warm[subject.name].append(json.loads(out.splitlines()[-1]))
        say("installing dependencies into empty folders ...")
        sizes = {s.name: installed_size(s.requirements, scratch / s.name) for s in (OURS, BASE)}
    return {"cold": cold, "warm": warm, "sizes": sizes}


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure for both subjects and its target."""

    label: str
    ours: float
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
            fmt.format(self.base * scale),
            f"{self.ours / self.base:.2f}x",
            self.target,
            "ok" if self.ok else "MISSED",
        ]


def rows(results: dict[str, Any]) -> list[Row]:
    """The figures against their targets."""
    cold, warm, sizes = results["cold"], results["warm"], results["sizes"]

    def med(name: str, key: str) -> float:
        return float(statistics.median(round_[key] for round_ in warm[name]))

    cold_ours, cold_base = (statistics.median(cold[n]) for n in (OURS.name, BASE.name))
    p50, p99 = med(OURS.name, "single_p50"), med(OURS.name, "single_p99")
    batch, size = med(OURS.name, "batch_p50"), sizes[OURS.name]
    return [
        Row("cold init, first GET (median)", cold_ours, cold_base, "ms", "<= 0.35x baseline",
            cold_ours <= 0.35 * cold_base),
        Row("warm POST 1 instance, p50", p50, med(BASE.name, "single_p50"), "us", "<= 200 us",
            p50 <= 200e-6),
        Row("warm POST 1 instance, p99", p99, med(BASE.name, "single_p99"), "us", "<= 400 us",
            p99 <= 400e-6),
        Row("POST 1,000 instances, p50", batch, med(BASE.name, "batch_p50"), "ms", "<= 5 ms",
            batch <= 5e-3),
        Row("serving deps on disk", size, sizes[BASE.name], "MB", "<= 100 MB", size <= 100e6),
    ]  # fmt: skip


def table(lines: list[list[str]]) -> str:
    """Left-aligned columns separated by bars."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out) + "\n"


def main() -> int:
    """Measure both subjects and print the table; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold-runs", type=int, default=9, help="cold starts per app")
    parser.add_argument("--requests", type=int, default=5000, help="warm single requests")
    parser.add_argument("--batch-requests", type=int, default=200, help="1,000-row requests")
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds (median reported)")
    parser.add_argument("--child-cold", choices=[OURS.name, BASE.name], help=argparse.SUPPRESS)
    parser.add_argument("--child-warm", choices=[OURS.name, BASE.name], help=argparse.SUPPRESS)
    args = parser.parse_args()
    subjects = {OURS.name: OURS, BASE.name: BASE}
    if args.child_cold:
        child_cold(subjects[args.child_cold])
        return 0
    if args.child_warm:
        child_warm(subjects[args.child_warm], args.requests, args.batch_requests)
        return 0

    results = measure(args)
    figures = rows(results)
    header = ["figure", "ours", "baseline", "ours/base", "target", "verdict"]
    sys.stdout.write(table([header, *(r.cells() for r in figures)]))
    spread = ", ".join(
        f"{name} {min(v) * 1e3:.0f}-{max(v) * 1e3:.0f} ms" for name, v in results["cold"].items()
    )
    sys.stdout.write(
        f"\n{args.cold_runs} cold starts each ({spread}); warm: median of {args.rounds} rounds "
        f"of {args.requests} single and {args.batch_requests} batch requests; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.\n"
    )
    return 0 if all(r.ok for r in figures) else 1


def say(text: str) -> None:
    """Progress on stderr, so stdout holds only the table."""
    sys.stderr.write(text + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
