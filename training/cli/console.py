"""What the commands print: results to stdout, messages to stderr, and plain-text tables."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any


def output(text: str) -> None:
    """Write a result line to stdout."""
    sys.stdout.write(text + "\n")


def error(text: str) -> None:
    """Write a message to stderr."""
    sys.stderr.write(text + "\n")


def accuracy_text(metrics: Mapping[str, Any] | None) -> str:
    """A model's accuracy to four places, or "-" when it has none."""
    value = (metrics or {}).get("accuracy")
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def one_line(text: str | None, limit: int = 100) -> str:
    """A reason on one line, cut to fit a table row."""
    flat = " ".join((text or "-").split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart; "(none)" for no rows."""
    if not rows:
        return ["  (none)"]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
