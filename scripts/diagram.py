"""`make diagram`: docs/architecture.png drawn by Graphviz from the synthesized app; `--check`.

scripts/architecture.py models the cloud assembly as stacks, boxes and arrows; this file writes
that model as DOT (stacks as clusters, the request and training paths in colour, numbered,
top to bottom) and
has Graphviz's `dot` lay it out and draw it, so no label overlaps another. The PNG carries the
model's fingerprint (stacks, nodes, edges: never logical ids or asset hashes) in a tEXt chunk;
`--check` exits 1 when the app's fingerprint differs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `python scripts/diagram.py`: the app's packages sit in the repository root.
    sys.path.insert(0, str(ROOT))

from scripts.architecture import Edge, Model, build_model  # noqa: E402
from scripts.assembly import (  # noqa: E402
    StackTemplate,
    SynthError,
    load_assembly,
    parse_context,
    synthesize,
)

OUTPUT: Final = ROOT / "docs" / "architecture.png"
FINGERPRINT_KEY: Final = "Fingerprint"
# The serving stack first (the request path reads top to bottom into it), monitoring last.
STACK_ORDER: Final = ("api", "edge", "pipeline", "data", "cdn-monitoring", "observability")
NODE_COLOURS: Final[Mapping[str, tuple[str, str]]] = {  # kind: (fill, outline)
    "actor": ("#ffffff", "#37474f"),
    "cdn": ("#ede7f6", "#5e35b1"),
    "api": ("#fce4ec", "#ad1457"),
    "function": ("#fff3e0", "#e65100"),
    "trainer": ("#e3f2fd", "#1565c0"),
    "storage": ("#e8f5e9", "#2e7d32"),
    "deploy": ("#e0f7fa", "#00838f"),
    "security": ("#efebe9", "#5d4037"),
    "network": ("#eceff1", "#546e7a"),
    "schedule": ("#f3e5f5", "#7b1fa2"),
    "alarm": ("#fff8e1", "#c17900"),
    "messaging": ("#fbe9e7", "#bf360c"),
    "chat": ("#fbe9e7", "#bf360c"),
    "monitoring": ("#fff8e1", "#c17900"),
}
# kind: (colour, pen width, style, legend text); the paths are heavier and weigh more in layout.
EDGE_STYLES: Final[Mapping[str, tuple[str, float, str, str]]] = {
    "request": ("#d32f2f", 3.0, "solid", "Request path (R1, R2, ...)"),
    "training": ("#1565c0", 3.0, "solid", "Training path (T1, T2, ...)"),
    "event": ("#7b1fa2", 1.2, "solid", "EventBridge rule or stream: source to target"),
    "notify": ("#c17900", 1.2, "solid", "Alarm or budget notification"),
    "reference": ("#9e9e9e", 1.0, "solid", "Reference in a template (env var, IAM, origin)"),
    "watch": ("#bdbdbd", 0.8, "dotted", "Alarm watches a metric of"),
}
PATH_PREFIX: Final = {"request": "R", "training": "T"}
FONT: Final = "DejaVu Sans"  # Debian's fonts-dejavu-core: the same glyphs on every machine
# Width of the PNG: dot scales the drawing to fit it, so the README shows it at a stable size.
DPI: Final = 110


def quote(text: str) -> str:
    """A DOT string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(model: Model, *, title: str) -> str:
    """The model as a DOT digraph: clusters per stack, styled nodes, numbered path hops."""
    font = f"fontname={quote(FONT)}"
    lines = [
        "digraph architecture {",
        f"  graph [rankdir=TB, {font}, fontsize=20, labelloc=t, label={quote(title)},"
        f" nodesep=0.35, ranksep=0.9, dpi={DPI}, pad=0.3];",
        f'  node [shape=box, style="rounded,filled", {font}, fontsize=12, margin="0.15,0.08"];',
        f"  edge [{font}, fontsize=10, arrowsize=0.7];",
    ]
    order = {role: i for i, role in enumerate(STACK_ORDER)}
    stacks = sorted(model.stacks, key=lambda s: (order.get(s.role, len(order)), s.name))
    for node in (n for n in model.nodes if not n.stack):
        lines.append("  " + _node(model, node.ident))
    for index, stack in enumerate(stacks):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(
            f'    label={quote(f"{stack.name} ({stack.region})")}; style="rounded,dashed";'
            f' color="#90a4ae"; fontsize=14; {font};'
        )
        for node in sorted((n for n in model.nodes if n.stack == stack.name), key=_node_key):
            lines.append("    " + _node(model, node.ident))
        lines.append("  }")
    drawn: set[tuple[str, str, str]] = set()
    for edge in sorted(model.edges, key=_edge_key):
        # Two arrows of one kind between the same boxes (an alarm's ALARM and OK actions) are
        # one line in the picture.
        if (edge.source, edge.target, edge.kind) not in drawn:
            drawn.add((edge.source, edge.target, edge.kind))
            lines.append("  " + _edge(edge))
    if model.edges:
        lines.append("  " + _legend(model))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_key(node: Any) -> tuple[str, str]:
    return (node.kind, node.label)


def _edge_key(edge: Edge) -> tuple[int, int, str, str]:
    # Paths first: dot ranks by the first edges it meets, so the paths set the columns.
    return (0 if edge.kind in PATH_PREFIX else 1, edge.step, edge.source, edge.target)


def _node(model: Model, ident: str) -> str:
    node = model.node(ident)
    fill, outline = NODE_COLOURS.get(node.kind, ("#ffffff", "#616161"))
    label = node.label
    shape = ', shape=ellipse, style="filled"' if node.kind == "actor" else ""
    return (
        f"{quote(ident)} [label={quote(label)}, fillcolor={quote(fill)},"
        f" color={quote(outline)}{shape}];"
    )


def _edge(edge: Edge) -> str:
    colour, width, style, _ = EDGE_STYLES.get(edge.kind, EDGE_STYLES["reference"])
    attributes = [f"color={quote(colour)}", f"penwidth={width}"]
    if edge.kind in PATH_PREFIX:
        step = f"{PATH_PREFIX[edge.kind]}{edge.step}"
        label = f"{step} {edge.label}".strip()
        attributes += [f"label={quote(label)}", f"fontcolor={quote(colour)}", "weight=8"]
        # A hop no template shows (the trainer's push, say) happens at run time: dashed.
        attributes.append("style=dashed" if edge.runtime else "style=solid")
    else:
        # Unlabelled: the legend says what each colour means, and only the paths' labels are
        # placed by the layout itself, so no label can land on another.
        attributes += [f"style={style}", "weight=1"]
    return f"{quote(edge.source)} -> {quote(edge.target)} [{', '.join(attributes)}];"


def _legend(model: Model) -> str:
    kinds = {e.kind for e in model.edges}
    rows = "".join(
        f'<tr><td><font color="{colour}">&#9472;&#9472;&#9654;</font></td>'
        f'<td align="left">{text}</td></tr>'
        for kind, (colour, _, _, text) in EDGE_STYLES.items()
        if kind in kinds
    )
    dashed = '<tr><td>- - &#9654;</td><td align="left">a path hop no template shows</td></tr>'
    if not any(e.runtime for e in model.edges):
        dashed = ""
    table = f'<<table border="0" cellspacing="2">{rows}{dashed}</table>>'
    return f'legend [shape=plaintext, style="", label={table}, fontsize=11];'


def dot_layout(dot_source: str, output_format: str) -> bytes:
    """Run Graphviz's `dot` on the source; its output in `output_format` (png, json)."""
    binary = shutil.which("dot")
    if binary is None:
        raise SynthError("Graphviz is not installed: run `make system` (Debian's graphviz)")
    result = subprocess.run(
        [binary, f"-T{output_format}"], input=dot_source.encode(), capture_output=True, check=False
    )
    if result.returncode != 0:
        raise SynthError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def render(model: Model, path: Path, *, title: str) -> None:
    """Draw the model into a PNG at `path`, its fingerprint in a tEXt chunk."""
    png = dot_layout(to_dot(model, title=title), "png")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(with_text(png, FINGERPRINT_KEY, model.fingerprint()))


def boxes(model: Model, *, title: str) -> dict[str, tuple[float, float, float, float]]:
    """Each node's box as dot lays it out: (left, bottom, right, top) in points."""
    laid_out = json.loads(dot_layout(to_dot(model, title=title), "json"))
    found = {}
    for item in laid_out.get("objects", []):
        if "pos" not in item or item.get("name") == "legend" or "width" not in item:
            continue
        x, y = (float(v) for v in item["pos"].split(","))
        half_w, half_h = float(item["width"]) * 36, float(item["height"]) * 36  # inches / 2
        found[item["name"]] = (x - half_w, y - half_h, x + half_w, y + half_h)
    return found


def with_text(png: bytes, key: str, value: str) -> bytes:
    """The PNG with a tEXt chunk `key`=`value` after its IHDR chunk (PNG spec, 11.3.4.3)."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG")
    (length,) = struct.unpack(">I", png[8:12])
    end = 8 + 12 + length  # signature, then IHDR: length, type, body, CRC
    body = key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    return png[:end] + chunk + png[end:]


def read_fingerprint(path: Path) -> str | None:
    """The fingerprint a PNG carries in its tEXt chunk, or None."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    offset = 8
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        key, _, value = body.partition(b"\0")
        if kind == b"tEXt" and key == FINGERPRINT_KEY.encode():
            return value.decode("latin-1")
    return None


def title_of(model: Model) -> str:
    """`iris-ml-dev: architecture`, from the stacks' shared prefix."""
    names = [s.name for s in model.stacks]
    prefix = names[0][: len(names[0]) - len(model.stacks[0].role)].rstrip("-") if names else ""
    return f"{prefix or 'app'}: architecture"


def main(argv: Sequence[str] | None = None) -> int:
    """Draw docs/architecture.png, or check that it matches the app (`--check`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assembly", type=Path, help="read this cdk.out instead of synthesizing")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: %(default)s")
    parser.add_argument("--check", action="store_true", help="exit 1 if the picture is stale")
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a cdk.json context value, as `cdk synth -c` does",
    )
    args = parser.parse_args(argv)
    try:
        overrides = parse_context(args.context)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        model = build_model(stacks_of(args.assembly, overrides))
        fingerprint = model.fingerprint()
        shown = shown_path(args.output)
        if args.check:
            drawn = read_fingerprint(args.output)
            if drawn != fingerprint:
                sys.stderr.write(
                    f"{shown} is stale: run make diagram "
                    f"(picture {drawn[:12] if drawn else 'has no fingerprint'}, "
                    f"app {fingerprint[:12]})\n"
                )
                return 1
            sys.stdout.write(f"{shown} is current (fingerprint {fingerprint[:12]})\n")
            return 0
        render(model, args.output, title=title_of(model))
    except (FileNotFoundError, SynthError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(
        f"wrote {shown}: {len(model.nodes)} nodes, {len(model.edges)} edges, "
        f"fingerprint {fingerprint[:12]}\n"
    )
    return 0


def stacks_of(assembly: Path | None, overrides: Mapping[str, Any]) -> tuple[StackTemplate, ...]:
    """The stacks of `assembly`, or of the app synthesized into a temporary directory."""
    if assembly is not None:
        return load_assembly(assembly)
    with tempfile.TemporaryDirectory(prefix="diagram-") as outdir:
        return synthesize(Path(outdir), overrides)


def shown_path(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
