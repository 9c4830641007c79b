"""The deploy rehearsal itself: the whole app into MiniStack, every check passing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.rehearsal
@pytest.mark.skipif(os.environ.get("REHEARSAL") != "1", reason="REHEARSAL=1 runs the rehearsal")
def test_rehearsal_passes_every_check() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rehearsal"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert last.startswith("rehearsal: ")
    assert "checks pass" in last
    passed, total = last.split()[1].split("/")
    assert passed == total
    assert "stand-in: " in done.stdout
