"""`make preflight`: checks that these credentials, account and machine can deploy the app.

Run with the caller's AWS credentials before anything is created. It prints one line per check,
`ok`, `note`, `WARNING` or `BLOCKER` (a problem's line carries its fix), and exits 1 when anything
blocks. Checked: credentials; the CDK bootstrap (version) in the app's region and us-east-1;
Docker, buildx and CPU emulation for the serving image; Lambda concurrency reservations against
the account's quota; Spot's service-linked role; CloudFront; the Slack workspace in AWS Chatbot;
where the alarms go. `make deploy` runs the same checks first (scripts/deploy.py), where a region
without a current bootstrap is a note, because the deploy bootstraps it next.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `python scripts/preflight.py`: the app's packages sit in the repository root.
    sys.path.insert(0, str(ROOT))

from cdk_app.config import AppConfig, ConfigError  # noqa: E402
from scripts.assembly import app_context, parse_context  # noqa: E402
from scripts.preflight_checks import (  # noqa: E402
    EDGE_REGION,
    Clients,
    Finding,
    Host,
    Status,
    bootstrap_needs,
    chatbot_region,
    check_alarm_targets,
    check_bootstrap,
    check_chatbot,
    check_cloudfront,
    check_concurrency,
    check_docker,
    check_identity,
    check_spot_role,
)

ASSEMBLY: Final = ROOT / "cdk.out"
# A preflight should answer in seconds: fail fast on a dead network instead of botocore's minutes.
CLIENT_CONFIG: Final = Config(
    connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}
)


@dataclasses.dataclass(frozen=True)
class Report:
    """Every finding, the account the credentials belong to, and the regions to bootstrap."""

    findings: tuple[Finding, ...]
    account: str | None = None
    bootstrap: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        """Whether any finding stops the deploy."""
        return any(finding.status is Status.BLOCKER for finding in self.findings)

    def text(self) -> str:
        """The report as printed: one line per finding, then a one-line verdict."""
        counts = Counter(finding.status for finding in self.findings)
        verdict = (
            f"preflight: {counts[Status.BLOCKER]} blocker(s), {counts[Status.WARNING]} warning(s)"
        )
        verdict += ": fix the blockers before deploying" if self.blocked else ": ready to deploy"
        return "".join(f"{finding.line()}\n" for finding in self.findings) + verdict + "\n"


def app_regions(config: AppConfig) -> list[str]:
    """Regions the app deploys stacks to: its own, then us-east-1."""
    return list(dict.fromkeys([config.region, EDGE_REGION]))


def session_clients(session: boto3.Session | None = None) -> Clients:
    """Clients from session (default: the caller's credentials, resolved at the first call)."""

    @functools.cache
    def caller() -> boto3.Session:
        # Created on first use, so that a bad AWS_PROFILE becomes the credentials check's blocker.
        return session or boto3.Session()

    def make(service: str, region: str) -> Any:
        # The stubs type `client` by literal service names only; these are chosen at run time.
        return cast(Any, caller()).client(service, region_name=region, config=CLIENT_CONFIG)

    return make


def _unexpected(name: str, err: Exception) -> Finding:
    """A check AWS could not answer (throttled, a dead network, an unknown error)."""
    return Finding(Status.WARNING, name, f"could not check: {err}", "re-run `make preflight`")


def run_checks(
    config: AppConfig,
    clients: Clients,
    host: Host,
    assembly: Path = ASSEMBLY,
    *,
    deploying: bool = False,
) -> Report:
    """Ask every question; with deploying, a missing or old bootstrap is a note, not a blocker."""
    local = [*check_docker(host, config.architecture), *check_alarm_targets(config)]
    identity, account = check_identity(clients, config.region)
    if account is None:
        skipped = Finding(
            Status.NOTE,
            "aws checks",
            "bootstrap, Lambda, Spot, CloudFront and Chatbot not checked: they need credentials",
        )
        return Report((identity, skipped, *local))
    findings = [identity]
    bootstrap: list[str] = []
    regions = app_regions(config)
    needs = bootstrap_needs(assembly, regions)
    for region in regions:
        try:
            finding, needed = check_bootstrap(
                clients, account, region, needs[region], deploying=deploying
            )
        except (ClientError, BotoCoreError) as err:
            finding, needed = _unexpected(f"bootstrap {region}", err), False
        findings.append(finding)
        if needed:
            bootstrap.append(region)
    checks: list[tuple[str, Callable[[], Finding]]] = [
        (
            "lambda concurrency",
            lambda: check_concurrency(clients("lambda", config.region), config),
        ),
        ("spot service-linked role", lambda: check_spot_role(clients("iam", EDGE_REGION))),
        ("cloudfront", lambda: check_cloudfront(clients("cloudfront", EDGE_REGION))),
        ("slack workspace", lambda: _slack(clients, config)),
    ]
    for name, check in checks:
        try:
            findings.append(check())
        except (ClientError, BotoCoreError) as err:
            findings.append(_unexpected(name, err))
    return Report((*findings, *local), account, tuple(bootstrap))


def _slack(clients: Clients, config: AppConfig) -> Finding:
    """The Chatbot check when Slack is configured; a plain note of its absence otherwise."""
    if not config.slack_workspace_id:
        return Finding(Status.OK, "slack workspace", "no Slack configured: nothing to check")
    chatbot = clients("chatbot", chatbot_region(config.region))
    return check_chatbot(chatbot, config.slack_workspace_id)


def load_config(pairs: Sequence[str]) -> AppConfig:
    """The app's config as the CDK app builds it: cdk.json's context plus `-c key=value`."""
    return AppConfig.from_context(app_context(parse_context(pairs)))


def context_pairs(cdk_args: Sequence[str]) -> list[str]:
    """The pairs of CDK CLI arguments `-c k=v`, `--context k=v` and `--context=k=v`."""
    pairs: list[str] = []
    args = iter(cdk_args)
    for arg in args:
        if arg in ("-c", "--context"):
            pairs.extend(value for value in (next(args, None),) if value is not None)
        elif arg.startswith("--context="):
            pairs.append(arg.removeprefix("--context="))
    return pairs


def before_deploy(session: boto3.Session, cdk_args: Sequence[str]) -> Report:
    """The checks `make deploy` runs first, with the config its `cdk deploy` will synthesize."""
    config = load_config(context_pairs(cdk_args))
    return run_checks(config, session_clients(session), Host(), deploying=True)


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: Clients | None = None,
    host: Host | None = None,
) -> int:
    """Parse `-c` overrides, run every check, print the report; 1 on a blocker, 2 on bad config."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a cdk.json context value, as `cdk deploy -c` does",
    )
    parser.add_argument(
        "--assembly",
        type=Path,
        default=ASSEMBLY,
        help="cdk.out to read the app's required bootstrap version from (default: ./cdk.out)",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.context)
    except (ValueError, ConfigError) as exc:
        sys.stderr.write(f"config error: {exc}\n")
        return 2
    report = run_checks(config, clients or session_clients(), host or Host(), args.assembly)
    sys.stdout.write(report.text())
    return 1 if report.blocked else 0


if __name__ == "__main__":
    raise SystemExit(main())
