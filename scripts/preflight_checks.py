"""The questions `make preflight` asks AWS and this machine, one function each, with the fixes."""

from __future__ import annotations

import dataclasses
import enum
import json
import platform
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from cdk_app.config import AppConfig

EDGE_REGION: Final = "us-east-1"  # CloudFront's alarms (and the WAF, when enabled) live there
BOOTSTRAP_PARAMETER: Final = "/cdk-bootstrap/hnb659fds/version"
# What aws-cdk-lib 2.x's DefaultStackSynthesizer asks of every stack and asset manifest (cdk.out's
# manifest.json says 6, and each template's CheckBootstrapVersion rule refuses 1-5). Used only
# when no cdk.out is there to read the app's own requirement from.
MIN_BOOTSTRAP_VERSION: Final = 6
UNRESERVED_MINIMUM: Final = 100  # Lambda refuses a reservation that leaves fewer unreserved
# Service Quotas' code for Lambda's "Concurrent executions". AWS's pages name the quota but the
# code only in examples elsewhere; `aws service-quotas list-service-quotas --service-code lambda`
# shows it for the account.
CONCURRENCY_QUOTA: Final = "'Concurrent executions' (quota code L-B99A9384)"
SPOT_ROLE: Final = "AWSServiceRoleForEC2Spot"
# Chatbot's API is served only in these regions, and its console only in us-east-2; the
# configuration data is stored in each of them, so any one answers for the account.
CHATBOT_REGIONS: Final = ("us-east-2", "us-west-2", "eu-west-1", "ap-southeast-1")
CHATBOT_CONSOLE_REGION: Final = "us-east-2"
DENIED: Final = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})

Clients = Callable[[str, str], Any]  # (service, region) -> a boto3 client
CommandRunner = Callable[[Sequence[str]], tuple[int, str]]  # argv -> (exit status, output)


class Status(enum.Enum):
    """How a finding bears on the deploy; only a blocker stops it."""

    OK = "ok"
    NOTE = "note"
    WARNING = "WARNING"
    BLOCKER = "BLOCKER"


@dataclasses.dataclass(frozen=True)
class Finding:
    """One line of the report: a check's answer and, for a problem, how to fix it."""

    status: Status
    check: str
    message: str
    fix: str = ""

    def line(self) -> str:
        """The report line: status, check, what was found and the fix."""
        text = f"{self.status.value:<8} {self.check}: {self.message}"
        return f"{text}; fix: {self.fix}" if self.fix else text


def error_code(err: ClientError) -> str:
    """The AWS error code of a failed call (`AccessDenied`, `NoSuchEntity`, ...)."""
    return str(err.response.get("Error", {}).get("Code", ""))


def check_identity(clients: Clients, region: str) -> tuple[Finding, str | None]:
    """Whose credentials these are; without working ones nothing else can be asked."""
    name = "credentials"
    try:
        identity = clients("sts", region).get_caller_identity()
    except ClientError as err:
        return Finding(
            Status.BLOCKER,
            name,
            f"AWS rejected the credentials ({error_code(err)})",
            "refresh them: `aws sso login --profile <profile>`, or new access keys",
        ), None
    except BotoCoreError as err:  # NoCredentialsError, ProfileNotFound, an expired SSO token
        return Finding(
            Status.BLOCKER,
            name,
            f"no usable AWS credentials ({err})",
            "export AWS_PROFILE=<profile> (set up with `aws configure sso`, then "
            "`aws sso login`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for the target account",
        ), None
    account = str(identity["Account"])
    return Finding(Status.OK, name, f"account {account} as {identity['Arn']}"), account


@dataclasses.dataclass(frozen=True)
class BootstrapNeed:
    """What the app's stacks in one region need of the CDK bootstrap there, and who says so."""

    version: int = MIN_BOOTSTRAP_VERSION
    parameter: str = BOOTSTRAP_PARAMETER
    source: str = "aws-cdk-lib's minimum"


def bootstrap_needs(assembly: Path, regions: Iterable[str]) -> dict[str, BootstrapNeed]:
    """Per region, the bootstrap version the synthesized app requires; the minimum without one."""
    needs = {region: BootstrapNeed() for region in regions}
    try:
        artifacts: dict[str, Any] = json.loads((assembly / "manifest.json").read_text())[
            "artifacts"
        ]
    except (OSError, ValueError, KeyError):
        return needs  # no cdk.out (or one being rewritten): the minimum
    # cdk.out is the last synth, but `cdk deploy` synthesizes with the same pinned aws-cdk-lib,
    # so its requirement is the one the deploy will meet.
    found: dict[str, BootstrapNeed] = {}
    for artifact in artifacts.values():
        region = str(artifact.get("environment", "")).rsplit("/", 1)[-1]
        if artifact.get("type") != "aws:cloudformation:stack" or region not in needs:
            continue
        # The stack's own requirement and its asset manifests' (publishing files and images).
        # The lookup role's (8) is left out: the CLI falls back to the deploy role without it.
        assets = [
            artifacts[dep]
            for dep in artifact.get("dependencies", ())
            if artifacts.get(dep, {}).get("type") == "cdk:asset-manifest"
        ]
        for item in (artifact, *assets):
            props = item.get("properties", {})
            version = props.get("requiresBootstrapStackVersion")
            if isinstance(version, int) and version > found.get(region, BootstrapNeed(0)).version:
                parameter = props.get("bootstrapStackVersionSsmParameter", BOOTSTRAP_PARAMETER)
                found[region] = BootstrapNeed(version, parameter, f"{assembly.name}/manifest.json")
    return {**needs, **found}


def check_bootstrap(
    clients: Clients, account: str, region: str, need: BootstrapNeed, *, deploying: bool
) -> tuple[Finding, bool]:
    """Whether CDK is bootstrapped in region at the version the app needs; and must it be run."""
    name = f"bootstrap {region}"
    try:
        value = clients("ssm", region).get_parameter(Name=need.parameter)["Parameter"]["Value"]
    except ClientError as err:
        code = error_code(err)
        if code != "ParameterNotFound":
            if code not in DENIED:
                raise
            return Finding(
                Status.WARNING,
                name,
                f"cannot read {need.parameter} ({code}): bootstrap state unknown",
                f"allow ssm:GetParameter on {need.parameter}, or run "
                f"`npx cdk bootstrap aws://{account}/{region}` (it is idempotent)",
            ), False
        problem = f"not bootstrapped ({need.parameter} does not exist)"
    else:
        version = int(value) if str(value).isdigit() else 0
        if version >= need.version:
            message = f"version {version} (the app needs {need.version}+, {need.source})"
            return Finding(Status.OK, name, message), False
        problem = f"bootstrap version {value} is older than the {need.version} the app needs"
    if deploying:
        return Finding(Status.NOTE, name, f"{problem}; make deploy bootstraps it now"), True
    fix = f"npx cdk bootstrap aws://{account}/{region} (`make deploy` runs it for you)"
    return Finding(Status.BLOCKER, name, problem, fix), True


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """Run a command quietly: its exit status (127: not installed) and its output."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=180, check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"`{' '.join(argv)}` gave no answer in 180 s"
    return done.returncode, (done.stdout + done.stderr).strip()


@dataclasses.dataclass(frozen=True)
class Host:
    """The machine that builds the serving image: how it runs commands, its CPU, binfmt_misc."""

    run: CommandRunner = run_command
    machine: str = dataclasses.field(default_factory=platform.machine)
    binfmt: Path = Path("/proc/sys/fs/binfmt_misc")


_CPU = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
# Per Lambda architecture: Docker's platform, the qemu binfmt_misc entry, tonistiigi/binfmt's name.
_EMULATION = {
    "arm64": ("linux/arm64", "qemu-aarch64", "arm64"),
    "x86_64": ("linux/amd64", "qemu-x86_64", "amd64"),
}


def check_docker(host: Host, architecture: str) -> list[Finding]:
    """A running engine, buildx, and emulation when the image's CPU is not the host's."""
    status, out = host.run(["docker", "info", "--format", "{{.ServerVersion}}"])
    first = out.splitlines()[0] if out else "no output"
    if status == 127:
        engine = Finding(
            Status.BLOCKER,
            "docker",
            "the docker CLI is not installed (the serving image is built locally)",
            "install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop",
        )
    elif status:
        fix = "start it: `sudo systemctl start docker`, or open Docker Desktop"
        engine = Finding(Status.BLOCKER, "docker", f"no running Docker engine ({first})", fix)
    else:
        engine = Finding(Status.OK, "docker", f"engine {first} running")
    status, out = host.run(["docker", "buildx", "version"])
    if status == 127:
        buildx = Finding(Status.BLOCKER, "docker buildx", "needs the docker CLI", engine.fix)
    elif status:
        buildx = Finding(
            Status.BLOCKER,
            "docker buildx",
            "the buildx plugin is missing",
            "install it (Debian/Ubuntu: `apt-get install docker-buildx-plugin`; Docker Desktop "
            "ships it)",
        )
    else:
        buildx = Finding(Status.OK, "docker buildx", out.splitlines()[0] if out else "present")
    ready = engine.status is Status.OK and buildx.status is Status.OK
    return [engine, buildx, _check_emulation(host, architecture, ready=ready)]


def _check_emulation(host: Host, architecture: str, *, ready: bool) -> Finding:
    """The host can run the image's CPU: natively, by a binfmt_misc entry, or per buildx."""
    cpu = _CPU.get(host.machine.lower(), host.machine)
    target, entry, binfmt_name = _EMULATION[architecture]
    name = f"{architecture} build"
    if cpu == architecture:
        return Finding(Status.OK, name, f"host is {cpu}: the image builds natively")
    if _binfmt_enabled(host.binfmt / entry):
        return Finding(Status.OK, name, f"{cpu} host emulates it ({entry} in binfmt_misc)")
    builder = "the buildx builder could not be asked"
    if ready:  # Docker Desktop emulates inside its VM, where the host's /proc cannot see
        status, out = host.run(["docker", "buildx", "inspect", "--bootstrap"])
        if status == 0 and target in _platforms(out):
            return Finding(Status.OK, name, f"{cpu} host: the buildx builder lists {target}")
        builder = f"the buildx builder does not list {target}"
    return Finding(
        Status.BLOCKER,
        name,
        f"this {cpu} host cannot build the {target} serving image: no {entry} in "
        f"{host.binfmt} and {builder}",
        f"docker run --privileged --rm tonistiigi/binfmt --install {binfmt_name}",
    )


def _binfmt_enabled(entry: Path) -> bool:
    """binfmt_misc entry files start with `enabled` or `disabled`."""
    try:
        return entry.read_text().splitlines()[:1] == ["enabled"]
    except OSError:
        return False


def _platforms(inspect_output: str) -> set[str]:
    """The platforms `docker buildx inspect` lists (`Platforms: linux/amd64, linux/arm64*`)."""
    found: set[str] = set()
    for line in inspect_output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Platforms":
            found.update(item.strip().rstrip("*") for item in value.split(","))
    return found


def check_concurrency(lambda_: Any, config: AppConfig) -> Finding:
    """The configured reservations fit the account's quota and leave 100 unreserved."""
    name = "lambda concurrency"
    limits = lambda_.get_account_settings()["AccountLimit"]
    quota = int(limits["ConcurrentExecutions"])
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    wanted = config.reserved_concurrency + config.launcher_reserved_concurrency
    account = f"account quota {quota}, {unreserved} unreserved"
    if not wanted:
        if quota <= UNRESERVED_MINIMUM:
            return Finding(
                Status.NOTE,
                name,
                f"no reservations configured ({account}); calls beyond {quota} at once throttle",
                f"for more traffic, raise {CONCURRENCY_QUOTA} in Service Quotas",
            )
        return Finding(Status.OK, name, f"no reservations configured ({account})")
    # Reservations this app's functions hold already are handed back when the deploy sets new
    # ones, so a redeploy is not counted twice. CloudFormation names them `<stack>-<id>-<suffix>`.
    held = _reserved_by(lambda_, f"{config.stack_prefix}-")
    room = unreserved + held - UNRESERVED_MINIMUM
    if held:
        account += f", {held} of the reserved held by this app now"
    if wanted <= room:
        return Finding(Status.OK, name, f"reserving {wanted} fits ({account})")
    return Finding(
        Status.BLOCKER,
        name,
        f"reserved_concurrency {config.reserved_concurrency} + launcher_reserved_concurrency "
        f"{config.launcher_reserved_concurrency} = {wanted}, but with {account} the app can "
        f"reserve at most {max(room, 0)}: Lambda keeps {UNRESERVED_MINIMUM} unreserved",
        "set both to 0 (`-c reserved_concurrency=0 -c launcher_reserved_concurrency=0`, or in "
        f"cdk.json), or request a higher {CONCURRENCY_QUOTA} in Service Quotas",
    )


def _reserved_by(lambda_: Any, prefix: str) -> int:
    """Concurrency reserved now by the functions whose names start with prefix."""
    total = 0
    for page in lambda_.get_paginator("list_functions").paginate():
        for function in page.get("Functions", []):
            if function["FunctionName"].startswith(prefix):
                answer = lambda_.get_function_concurrency(FunctionName=function["FunctionName"])
                total += int(answer.get("ReservedConcurrentExecutions", 0))
    return total


def check_spot_role(iam: Any) -> Finding:
    """Spot's service-linked role exists, or the first Spot launch will create it."""
    name = "spot service-linked role"
    try:
        iam.get_role(RoleName=SPOT_ROLE)
    except ClientError as err:
        code = error_code(err)
        create = "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"
        if code == "NoSuchEntity":
            return Finding(
                Status.NOTE,
                name,
                f"{SPOT_ROLE} does not exist yet; the launcher creates it on the first Spot "
                "launch (it may call iam:CreateServiceLinkedRole for spot.amazonaws.com)",
                f"optional, to create it now: {create}",
            )
        if code not in DENIED:
            raise
        return Finding(
            Status.WARNING,
            name,
            f"cannot read the IAM role {SPOT_ROLE} ({code}): whether it exists is unknown",
            f"allow iam:GetRole on it, or have an administrator run {create}",
        )
    return Finding(Status.OK, name, f"{SPOT_ROLE} exists")


def check_cloudfront(cloudfront: Any) -> Finding:
    """The account may use CloudFront at all (a cheap read; see the comment for the rest)."""
    # What this cannot see: a new account may have to be verified by AWS Support before its
    # first distribution, and only CreateDistribution tells (403 AccessDenied, "Your account must
    # be verified before you can add new CloudFront resources"). No read call reveals it, and
    # probing by creating a distribution would take minutes and leave one to delete.
    name = "cloudfront"
    try:
        cloudfront.list_distributions(MaxItems="1")
    except ClientError as err:
        code = error_code(err)
        if code not in DENIED:
            raise
        return Finding(
            Status.BLOCKER,
            name,
            f"CloudFront answers {code} to this caller (an IAM policy or SCP denies it)",
            "allow CloudFront for the deploying identity and account; a new account may also "
            "need AWS Support to verify it for CloudFront",
        )
    return Finding(
        Status.OK,
        name,
        "the API answers; a brand-new account may still need AWS Support to verify it at its "
        "first distribution (that shows only when one is created)",
    )


def chatbot_region(app_region: str) -> str:
    """Where to ask Chatbot: the app's region when its API is served there, else us-east-2."""
    return app_region if app_region in CHATBOT_REGIONS else CHATBOT_CONSOLE_REGION


def check_chatbot(chatbot: Any, workspace_id: str) -> Finding:
    """The Slack workspace is authorised in AWS Chatbot, which CloudFormation cannot do."""
    name = "slack workspace"
    try:
        pages = chatbot.get_paginator("describe_slack_workspaces").paginate()
        workspaces = [item for page in pages for item in page.get("SlackWorkspaces", [])]
    except ClientError as err:
        code = error_code(err)
        if code not in DENIED:
            raise
        return Finding(
            Status.WARNING,
            name,
            f"cannot list AWS Chatbot workspaces ({code}): whether {workspace_id} is authorised "
            "is unknown",
            "allow chatbot:DescribeSlackWorkspaces, or look in the AWS Chatbot console",
        )
    match = next((w for w in workspaces if w.get("SlackTeamId") == workspace_id), None)
    if match is None:
        return Finding(
            Status.BLOCKER,
            name,
            f"Slack workspace {workspace_id} is not authorised in AWS Chatbot in this account, so "
            "the Slack channel configuration would fail to create",
            f"in the AWS Chatbot console ({CHATBOT_CONSOLE_REGION}) choose Configure new client "
            "-> Slack and authorise the workspace (a Slack admin may have to approve), then deploy",
        )
    if match.get("State", "ENABLED") != "ENABLED":
        return Finding(
            Status.BLOCKER,
            name,
            f"Slack workspace {workspace_id} is {match['State']}: {match.get('StateReason', '')}",
            "ask the organisation's administrator to allow Slack in the Chatbot policy",
        )
    return Finding(
        Status.OK, name, f"{workspace_id} ({match.get('SlackTeamName', '?')}) is authorised"
    )


def check_alarm_targets(config: AppConfig) -> list[Finding]:
    """Where the alarms will go; nowhere is a loud warning, not a blocker."""
    name = "alarm destinations"
    targets = [f"Slack channel {config.slack_channel_id}"] if config.slack_channel_id else []
    if config.alarm_email:
        targets.append(f"e-mail {config.alarm_email}")
    if not targets:
        return [
            Finding(
                Status.WARNING,
                name,
                "alarms reach nobody: set slack_* or alarm_email",
                "-c slack_workspace_id=T... -c slack_channel_id=C... and/or "
                "-c alarm_email=you@example.com (or in cdk.json)",
            )
        ]
    findings = [Finding(Status.OK, name, "alarms go to " + " and ".join(targets))]
    if config.alarm_email:
        findings.append(
            Finding(
                Status.NOTE,
                "alarm e-mail",
                f"after the deploy AWS mails {config.alarm_email} a confirmation link: until it "
                "is followed the subscription is pending and receives nothing",
            )
        )
    return findings
