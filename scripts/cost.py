"""`make cost`: the app's estimated AWS bill, from its config and AWS list prices.

Four tables: (a) a month while idle, (b) a million predictions, (c) one training run and
(d) a SageMaker real-time endpoint for comparison. What bills by the month is counted in the
synthesized templates (alarms and the metrics they evaluate, KMS keys, dashboards, secrets, WAF
rules, schedules, NAT gateways); sizes, durations and rates are the assumptions in ASSUMPTIONS;
unit prices are the list prices in PRICES, each with its source and the day it was recorded.
Free tiers are named beside the items they cover but never subtracted.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `python scripts/cost.py`: the app's packages sit in the repository root.
    sys.path.insert(0, str(ROOT))

from cdk_app.config import AppConfig, ConfigError  # noqa: E402
from cdk_app.prices import PRICE_REGION, PRICES, RECORDED_ON  # noqa: E402
from scripts.assembly import (  # noqa: E402
    StackTemplate,
    SynthError,
    app_context,
    load_assembly,
    parse_context,
    synthesize,
)
from scripts.cost_inputs import (  # noqa: E402
    ASSUMPTIONS,
    Assumptions,
    Inventory,
    Performance,
    bench_performance,
    inventory,
)
from scripts.cost_items import (  # noqa: E402
    REQUESTS,
    Comparison,
    Item,
    comparison,
    ec2_hour,
    idle,
    money,
    per_million,
    training_run,
    usd,
    with_traffic,
)

DOC: Final = ROOT / "docs" / "cost.md"


# --- the estimate ---------------------------------------------------------------------------


# --- the report -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Every table of the report."""

    config: AppConfig
    overrides: Mapping[str, str]
    inventory: Inventory
    performance: Performance
    idle: tuple[Item, ...]
    requests: Mapping[str, tuple[Item, ...]]
    with_traffic: Item
    training: tuple[Item, ...]
    comparison: tuple[Comparison, ...]

    @property
    def idle_total(self) -> float:
        """A month with no traffic and no training."""
        return sum(i.usd for i in self.idle)

    def request_total(self, request: str) -> float:
        """A million requests of one kind."""
        return sum(i.usd for i in self.requests[request])

    @property
    def training_total(self) -> float:
        """One training run, its image's first month in ECR included."""
        return sum(i.usd for i in self.training)


def estimate(
    config: AppConfig,
    stacks: Sequence[StackTemplate],
    *,
    overrides: Mapping[str, str] | None = None,
    performance: Performance | None = None,
    assumptions: Assumptions = ASSUMPTIONS,
) -> Estimate:
    """The whole estimate for a config and the templates synthesized from it."""
    inv = inventory(stacks, assumptions)
    perf = performance or bench_performance()
    idle_items = tuple(idle(config, inv, assumptions))
    requests = {r: tuple(per_million(config, inv, perf, r, assumptions)) for r in REQUESTS}
    idle_total = sum(i.usd for i in idle_items)
    uncached_total = sum(i.usd for i in requests["uncached GET"])
    return Estimate(
        config=config,
        overrides=dict(overrides or {}),
        inventory=inv,
        performance=perf,
        idle=idle_items,
        requests=requests,
        with_traffic=with_traffic(assumptions),
        training=tuple(training_run(config, assumptions)),
        comparison=tuple(comparison(idle_total, uncached_total, assumptions)),
    )


def _table(rows: Sequence[Sequence[str]], numbers: Sequence[int]) -> list[str]:
    """Rows as aligned text, the columns in `numbers` right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            cell.rjust(widths[i]) if i in numbers else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def _items(items: Sequence[Item], total: str, value: float, unit: str) -> list[str]:
    """An item table: name, how it was counted, dollars, the free tier that would cover it."""
    rows = [["", "counted as", unit, "free tier"]]
    rows += [[i.name, i.basis, money(i.usd), i.free] for i in items]
    rows.append([total, "", money(value), ""])
    return _table(rows, [2])


def format_estimate(e: Estimate) -> str:
    """The report `python scripts/cost.py` prints."""
    config, a = e.config, ASSUMPTIONS
    overrides = "".join(f" -c {k}={v}" for k, v in sorted(e.overrides.items()))
    amis_note = (
        f"  Nothing deletes old trainer AMIs (no lifecycle policy): each month adds about "
        f"${money(a.ami_rebuilds_per_month * a.ami_snapshot_gb * usd('ebs_snapshot'))}."
        if e.inventory.ami_lifecycle_keep is None
        else ""
    )
    lines = [
        f"Estimated AWS cost of {config.stack_prefix} in {config.region} (cdk.json{overrides})",
        f"List prices of {PRICE_REGION}, recorded on {RECORDED_ON}: they may have changed since.",
        *(
            [
                f"Priced with {PRICE_REGION}'s list, not {config.region}'s: docs/cost.md "
                "(Region) says what differs there."
            ]
            if config.region != PRICE_REGION
            else []
        ),
        "Free tiers are named, never subtracted.",
        "",
        "(a) A month while idle: no traffic, no training",
        *_items(e.idle, "Total while idle", e.idle_total, "USD/month"),
        "  KMS: each key's first two yearly rotations add $1.00 a month to it.",
        *([amis_note] if amis_note else []),
        "",
        "(b) A million predictions, USD",
    ]
    names: list[str] = []
    for request in REQUESTS:
        names += [i.name for i in e.requests[request] if i.name not in names]
    rows = [["", *REQUESTS]]
    for name in names:
        found = [{i.name: i for i in e.requests[r]}.get(name) for r in REQUESTS]
        rows.append([name, *(money(i.usd) if i else "-" for i in found)])
    rows.append(["Total per million", *(money(e.request_total(r)) for r in REQUESTS)])
    traffic, perf = e.with_traffic, e.performance
    lines += [
        *_table(rows, [1, 2, 3]),
        f"  Any month with traffic adds {traffic.name}:",
        f"  {traffic.basis}, ${money(traffic.usd)} ({traffic.free} free).",
        f"  Lambda bills whole ms, 1 ms at least; warm, the handler takes {perf.warm_ms:g} ms "
        f"in process ({perf.source}).",
        *(
            [
                f"  The app traces {config.trace_sample_rate:g} of requests plus "
                f"{config.trace_reservoir_per_hour} an hour per instance (trace_sample_rate,",
                "  trace_reservoir_per_hour); tracing=false drops the line. Lambda's own tracing",
                f"  would trace every request below 1 a second (${money(usd('xray_traces'))}).",
            ]
            if config.tracing
            else []
        ),
        "",
        "(c) One training run",
        *_items(e.training, "Total per run", e.training_total, "USD"),
    ]
    if config.trainer_on_demand_fallback:
        hours = a.training_minutes / 60
        on_demand = ec2_hour(config.trainer_instance_types[0]) * hours
        lines.append(f"  Without Spot capacity the instance runs on demand: ${money(on_demand)}.")
    if config.retrain_every_days:
        runs = 30 / config.retrain_every_days
        lines.append(
            f"  retrain_every_days={config.retrain_every_days}: about {runs:.0f} runs a month, "
            f"${money(runs * e.training_total)}."
        )
    rows = [["", "USD/month idle", "USD per million"]]
    rows += [[c.name, money(c.idle), money(c.per_million)] for c in e.comparison]
    lines += [
        "",
        "(d) Compared with a SageMaker real-time endpoint",
        *_table(rows, [1, 2]),
        "  The endpoint bills its instance every hour, called or not; per million: the data",
        "  it processes in and out (add API Gateway or CloudFront to make it public).",
    ]
    return "\n".join(lines) + "\n"


def price_table() -> str:
    """The unit prices as a Markdown table (docs/cost.md holds it; a test keeps it current)."""
    rows = ["| item | USD | per | source | recorded |", "|---|---|---|---|---|"]
    for price in PRICES.values():
        rows.append(
            f"| {price.what} | {price.usd:g} | {price.unit} | <{price.source}> | {price.recorded} |"
        )
    return "\n".join(rows) + "\n"


def assumption_table() -> str:
    """The assumptions as a Markdown table (docs/cost.md holds it; a test keeps it current)."""
    rows = ["| assumption | value | why |", "|---|---|---|"]
    for field in dataclasses.fields(Assumptions):
        value = f"{getattr(ASSUMPTIONS, field.name):g} {field.metadata['unit']}".strip()
        rows.append(f"| `{field.name}` | {value} | {field.metadata['why']} |")
    return "\n".join(rows) + "\n"


def _synthesized(overrides: Mapping[str, str]) -> tuple[StackTemplate, ...]:
    """The stacks of the app synthesized, with the overrides, into a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="cost-") as outdir:
        return synthesize(Path(outdir), overrides)


def doc_sections(report: str) -> dict[str, str]:
    """The generated sections of docs/cost.md: the default report, the prices, the assumptions."""
    return {
        "cost-output": f"```text\n{report}```\n",
        "prices": price_table(),
        "assumptions": assumption_table(),
    }


def update_doc(text: str, sections: Mapping[str, str]) -> str:
    """The doc with each `<!-- name -->...<!-- /name -->` section replaced."""
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.S)
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"docs/cost.md has no <!-- {name} --> section")
        text = text[: match.start()] + match.group(1) + body + match.group(2) + text[match.end() :]
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Print the estimate for cdk.json's config with any `-c key=value` overrides."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a cdk.json context value, as `cdk synth -c` does",
    )
    parser.add_argument(
        "--assembly", type=Path, help="count in this cdk.out (synthesized with the same -c)"
    )
    parser.add_argument("--prices", action="store_true", help="print the unit prices as Markdown")
    parser.add_argument(
        "--assumptions", action="store_true", help="print the assumptions as Markdown"
    )
    parser.add_argument(
        "--update-doc", action="store_true", help="rewrite docs/cost.md's generated sections"
    )
    args = parser.parse_args(argv)
    if args.prices or args.assumptions:
        sys.stdout.write(price_table() if args.prices else assumption_table())
        return 0
    try:
        overrides = parse_context(args.context)
        config = AppConfig.from_context(app_context(overrides))
    except (ValueError, ConfigError) as exc:
        parser.error(str(exc))
    try:
        stacks = load_assembly(args.assembly) if args.assembly else _synthesized(overrides)
        report = estimate(config, stacks, overrides=overrides)
    except (FileNotFoundError, SynthError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    text = format_estimate(report)
    if args.update_doc:
        if overrides:
            parser.error("--update-doc documents cdk.json's config: drop the -c overrides")
        DOC.write_text(update_doc(DOC.read_text(), doc_sections(text)))
        sys.stdout.write(f"updated {DOC.relative_to(ROOT)}\n")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
