"""`make preflight`: each check's pass and fail answers, against moto, Stubber or fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.stub import Stubber
from moto import mock_aws

from cdk_app.config import AppConfig
from scripts import preflight
from scripts import preflight_checks as checks
from scripts.assembly import app_context
from scripts.preflight_checks import Finding, Host, Status

ACCOUNT = "123456789012"  # moto's account
WORKSPACE = "T0ABCDEFGH"
CHANNEL = "C0ABCDEFGH"
PARAMETER = "/cdk-bootstrap/hnb659fds/version"


def config(**overrides: Any) -> AppConfig:
    """The app's config from cdk.json with overrides, as the CDK app builds it."""
    return AppConfig.from_context(app_context(overrides))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.Session()


def stubbed(service: str, region: str = "eu-west-1") -> tuple[Any, Stubber]:
    """A client whose calls a Stubber answers (for calls moto does not emulate)."""
    # Unsigned: the Stubber answers before any request is signed, so no credentials are needed.
    unsigned = Config(signature_version=UNSIGNED)
    client = cast(Any, boto3).client(service, region_name=region, config=unsigned)
    return client, Stubber(client)


def clients(session: boto3.Session | None = None, **fixed: Any) -> checks.Clients:
    """A client factory: the given clients by service name, the rest from session (moto)."""

    def make(service: str, region: str) -> Any:
        if service in fixed:
            return fixed[service]
        if session is None:
            raise AssertionError(f"no {service} client expected")
        return cast(Any, session).client(service, region_name=region)

    return make


class Runner:
    """Answers commands from a table, records them; anything else is not installed."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(tuple(argv))
        return self.answers.get(tuple(argv), (127, f"{argv[0]}: not found"))


Argv = tuple[str, ...]
INFO: Argv = ("docker", "info", "--format", "{{.ServerVersion}}")
BUILDX: Argv = ("docker", "buildx", "version")
INSPECT: Argv = ("docker", "buildx", "inspect", "--bootstrap")
DOCKER_UP: dict[Argv, tuple[int, str]] = {
    INFO: (0, "27.3.1"),
    BUILDX: (0, "github.com/docker/buildx v0.17.1 d2a4b2a"),
}


def host(answers: dict[tuple[str, ...], tuple[int, str]] | None = None, **kwargs: Any) -> Host:
    runner = Runner(DOCKER_UP if answers is None else answers)
    return Host(run=runner, **{"machine": "aarch64", **kwargs})


def bootstrap(session: boto3.Session, region: str, version: str = "21") -> None:
    session.client("ssm", region_name=region).put_parameter(
        Name=PARAMETER, Value=version, Type="String"
    )


def account_settings(stubber: Stubber, quota: int, unreserved: int) -> None:
    stubber.add_response(
        "get_account_settings",
        {
            "AccountLimit": {
                "ConcurrentExecutions": quota,
                "UnreservedConcurrentExecutions": unreserved,
            }
        },
    )


# --- 1. credentials ---------------------------------------------------------------------------


def test_credentials_name_the_account(aws: boto3.Session) -> None:
    """GetCallerIdentity needs no permission and returns Account and Arn.

    https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    """
    finding, account = checks.check_identity(clients(aws), "eu-west-1")
    assert (finding.status, account) == (Status.OK, ACCOUNT)
    assert ACCOUNT in finding.line()


def test_no_credentials_block_with_a_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without any credential source botocore raises before calling STS: a blocker with a fix.

    https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    """
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "BOTO_CONFIG"):
        monkeypatch.setenv(name, str(tmp_path / "absent"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup
    finding, account = checks.check_identity(preflight.session_clients(), "eu-west-1")
    assert (finding.status, account) == (Status.BLOCKER, None)
    assert "no usable AWS credentials" in finding.message
    assert "AWS_PROFILE" in finding.fix


def test_rejected_credentials_block() -> None:
    """Expired or unknown keys come back as a ClientError from STS: a blocker to refresh them.

    https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    """
    sts, stubber = stubbed("sts")
    stubber.add_client_error("get_caller_identity", "ExpiredToken", http_status_code=403)
    with stubber:
        finding, account = checks.check_identity(clients(sts=sts), "eu-west-1")
    assert (finding.status, account) == (Status.BLOCKER, None)
    assert "ExpiredToken" in finding.message
    assert "aws sso login" in finding.fix


def test_without_credentials_only_the_local_checks_run() -> None:
    sts, stubber = stubbed("sts")
    stubber.add_client_error("get_caller_identity", "InvalidClientTokenId", http_status_code=403)
    with stubber:
        report = preflight.run_checks(config(), clients(sts=sts), host(), Path("absent"))
    checked = [finding.check for finding in report.findings]
    assert checked[:2] == ["credentials", "aws checks"]
    assert "docker" in checked
    assert "alarm destinations" in checked
    assert not any(name.startswith("bootstrap") for name in checked)
    assert report.blocked


# --- 2. CDK bootstrap -------------------------------------------------------------------------


def test_bootstrapped_regions_pass(aws: boto3.Session) -> None:
    """The bootstrap stack records its version in SSM; `cdk bootstrap aws://ACCOUNT/REGION`.

    https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html
    https://docs.aws.amazon.com/cdk/latest/guide/ref-cli-cmd-bootstrap.html
    """
    for region in ("eu-west-1", "us-east-1"):
        bootstrap(aws, region)
        finding, needed = checks.check_bootstrap(
            clients(aws), ACCOUNT, region, checks.BootstrapNeed(), deploying=False
        )
        assert (finding.status, needed) == (Status.OK, False)
        assert "version 21" in finding.message


def test_missing_bootstrap_in_us_east_1_blocks_with_the_bootstrap_command(
    aws: boto3.Session,
) -> None:
    """A missing /cdk-bootstrap/hnb659fds/version is SSM's ParameterNotFound.

    https://docs.aws.amazon.com/botocore/latest/reference/services/ssm/client/exceptions/ParameterNotFound.html
    https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html
    """
    bootstrap(aws, "eu-west-1")
    report = preflight.run_checks(
        config(), clients(aws, **{"lambda": no_reservations()}), host(), Path("absent")
    )
    by_check = {finding.check: finding for finding in report.findings}
    assert by_check["bootstrap eu-west-1"].status is Status.OK
    missing = by_check["bootstrap us-east-1"]
    assert missing.status is Status.BLOCKER
    assert missing.fix.startswith(f"npx cdk bootstrap aws://{ACCOUNT}/us-east-1")
    assert report.blocked
    assert report.bootstrap == ("us-east-1",)


def test_an_old_bootstrap_blocks(aws: boto3.Session) -> None:
    """The CLI refuses a bootstrap older than the app's requiresBootstrapStackVersion.

    https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html
    """
    bootstrap(aws, "eu-west-1", version="5")
    finding, needed = checks.check_bootstrap(
        clients(aws), ACCOUNT, "eu-west-1", checks.BootstrapNeed(), deploying=False
    )
    assert (finding.status, needed) == (Status.BLOCKER, True)
    assert "older than the 6" in finding.message


def test_make_deploy_bootstraps_instead_of_blocking(aws: boto3.Session) -> None:
    """`make deploy` runs the bootstrap itself, so there a missing one is a note and a task.

    https://docs.aws.amazon.com/cdk/latest/guide/ref-cli-cmd-bootstrap.html
    """
    report = preflight.run_checks(
        config(),
        clients(aws, **{"lambda": no_reservations()}),
        host(),
        Path("absent"),
        deploying=True,
    )
    notes = [f for f in report.findings if f.check.startswith("bootstrap")]
    assert [f.status for f in notes] == [Status.NOTE, Status.NOTE]
    assert report.bootstrap == ("eu-west-1", "us-east-1")
    assert not report.blocked


def test_unreadable_bootstrap_parameter_warns() -> None:
    """GetParameter AccessDenied says nothing about the bootstrap: a warning, nothing run.

    https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html
    """
    ssm, stubber = stubbed("ssm")
    stubber.add_client_error("get_parameter", "AccessDeniedException", http_status_code=400)
    with stubber:
        finding, needed = checks.check_bootstrap(
            clients(ssm=ssm), ACCOUNT, "eu-west-1", checks.BootstrapNeed(), deploying=True
        )
    assert (finding.status, needed) == (Status.WARNING, False)


def write_manifest(directory: Path) -> Path:
    """A cloud assembly shaped as `cdk synth` writes it (cdk.out/manifest.json)."""
    lookup = {"arn": "lookup", "requiresBootstrapStackVersion": 99}
    artifacts = {
        "app-api.assets": {
            "type": "cdk:asset-manifest",
            "properties": {"requiresBootstrapStackVersion": 21},
        },
        "app-data": {
            "type": "aws:cloudformation:stack",
            "environment": "aws://unknown-account/eu-west-1",
            "properties": {"requiresBootstrapStackVersion": 6, "lookupRole": lookup},
        },
        "app-api": {
            "type": "aws:cloudformation:stack",
            "environment": "aws://unknown-account/eu-west-1",
            "dependencies": ["app-data", "app-api.assets"],
            "properties": {"requiresBootstrapStackVersion": 6, "lookupRole": lookup},
        },
        "app-cdn": {
            "type": "aws:cloudformation:stack",
            "environment": "aws://unknown-account/us-east-1",
            "dependencies": ["app-api"],
            "properties": {
                "requiresBootstrapStackVersion": 6,
                "bootstrapStackVersionSsmParameter": "/cdk-bootstrap/custom/version",
            },
        },
    }
    directory.mkdir()
    (directory / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    return directory


def test_required_bootstrap_version_comes_from_the_synthesized_manifest(tmp_path: Path) -> None:
    """Stacks and asset manifests carry requiresBootstrapStackVersion; the lookup role's is soft.

    https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html
    https://github.com/aws/aws-cdk/pull/18277 (lookup role: falls back to the deploy role)
    """
    needs = checks.bootstrap_needs(write_manifest(tmp_path / "cdk.out"), ["eu-west-1", "us-east-1"])
    assert needs["eu-west-1"].version == 21  # the api stack's asset manifest, not its lookup role
    assert needs["eu-west-1"].source == "cdk.out/manifest.json"
    # A dependency on a stack in another region does not lend its assets' requirement.
    assert needs["us-east-1"].version == 6
    assert needs["us-east-1"].parameter == "/cdk-bootstrap/custom/version"


def test_without_cdk_out_the_minimum_is_required(tmp_path: Path) -> None:
    needs = checks.bootstrap_needs(tmp_path / "missing", ["eu-west-1"])
    assert needs == {"eu-west-1": checks.BootstrapNeed(6, PARAMETER, "aws-cdk-lib's minimum")}


# --- 3. Docker --------------------------------------------------------------------------------
# Not AWS: Docker's multi-platform docs (emulation through QEMU in binfmt_misc, installed with
# tonistiigi/binfmt): https://docs.docker.com/build/building/multi-platform/


def test_docker_on_an_arm_host_builds_natively() -> None:
    runner = Runner(DOCKER_UP)
    findings = checks.check_docker(Host(run=runner, machine="aarch64"), "arm64")
    assert [f.status for f in findings] == [Status.OK] * 3
    assert INSPECT not in runner.calls


def test_no_docker_engine_blocks() -> None:
    down = {INFO: (1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock")}
    engine = checks.check_docker(host({**DOCKER_UP, **down}), "arm64")[0]
    assert engine.status is Status.BLOCKER
    assert "Cannot connect" in engine.message
    assert "systemctl start docker" in engine.fix


def test_no_docker_cli_blocks() -> None:
    engine, buildx, _ = checks.check_docker(host({}), "arm64")
    assert (engine.status, buildx.status) == (Status.BLOCKER, Status.BLOCKER)
    assert "not installed" in engine.message
    assert buildx.fix == engine.fix  # install Docker first, not the plugin


def test_missing_buildx_blocks() -> None:
    answers = {**DOCKER_UP, BUILDX: (1, "docker: 'buildx' is not a docker command.")}
    buildx = checks.check_docker(host(answers), "arm64")[1]
    assert buildx.status is Status.BLOCKER
    assert "docker-buildx-plugin" in buildx.fix


def test_x86_host_with_qemu_registered_passes(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\n")
    emulation = checks.check_docker(host(machine="x86_64", binfmt=tmp_path), "arm64")[2]
    assert emulation.status is Status.OK
    assert "qemu-aarch64" in emulation.message


def test_x86_host_whose_builder_lists_arm64_passes(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text("disabled\n")
    inspect = "Name: default\nPlatforms: linux/amd64, linux/amd64/v2, linux/386, linux/arm64*\n"
    answers = {**DOCKER_UP, INSPECT: (0, inspect)}
    emulation = checks.check_docker(host(answers, machine="x86_64", binfmt=tmp_path), "arm64")[2]
    assert emulation.status is Status.OK
    assert "linux/arm64" in emulation.message


def test_x86_host_without_arm64_emulation_blocks_with_the_binfmt_fix(tmp_path: Path) -> None:
    answers = {**DOCKER_UP, INSPECT: (0, "Platforms: linux/amd64, linux/386\n")}
    emulation = checks.check_docker(host(answers, machine="x86_64", binfmt=tmp_path), "arm64")[2]
    assert emulation.status is Status.BLOCKER
    assert "does not list linux/arm64" in emulation.message
    assert emulation.fix == "docker run --privileged --rm tonistiigi/binfmt --install arm64"


def test_an_x86_image_on_an_x86_host_needs_no_emulation(tmp_path: Path) -> None:
    runner = Runner(DOCKER_UP)
    emulation = checks.check_docker(Host(run=runner, machine="x86_64", binfmt=tmp_path), "x86_64")
    assert emulation[2].status is Status.OK
    assert INSPECT not in runner.calls


def test_run_command_reports_a_missing_program() -> None:
    status, out = checks.run_command(["no-such-program-preflight-test"])
    assert status == 127
    assert "not found" in out


# --- 4. Lambda concurrency --------------------------------------------------------------------


def no_reservations(quota: int = 1000) -> Any:
    lambda_, stubber = stubbed("lambda")
    account_settings(stubber, quota, quota)
    stubber.activate()
    return lambda_


def concurrency(cfg: AppConfig, quota: int, unreserved: int, held: dict[str, int]) -> Finding:
    lambda_, stubber = stubbed("lambda")
    account_settings(stubber, quota, unreserved)
    if cfg.reserved_concurrency + cfg.launcher_reserved_concurrency:
        names = [*held, "other-app-Worker-1A2B3C"]
        stubber.add_response("list_functions", {"Functions": [{"FunctionName": n} for n in names]})
        for name, reserved in held.items():
            answer = {"ReservedConcurrentExecutions": reserved} if reserved else {}
            stubber.add_response("get_function_concurrency", answer, {"FunctionName": name})
    with stubber:
        finding = checks.check_concurrency(lambda_, cfg)
        stubber.assert_no_pending_responses()
    return finding


def test_no_reservations_pass() -> None:
    """GetAccountSettings: AccountLimit.ConcurrentExecutions and UnreservedConcurrentExecutions.

    https://docs.aws.amazon.com/lambda/latest/dg/API_GetAccountSettings.html
    """
    finding = concurrency(config(), 1000, 1000, {})
    assert finding.status is Status.OK
    assert "quota 1000" in finding.message


def test_a_new_accounts_quota_blocks_any_reservation() -> None:
    """Up to the unreserved value minus 100 may be reserved; new accounts have lower quotas.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
    https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    The quota code L-B99A9384 was not found in AWS's docs (only in public code using it).
    """
    finding = concurrency(config(reserved_concurrency=1), 10, 10, {})
    assert finding.status is Status.BLOCKER
    assert "quota 10, 10 unreserved" in finding.message
    assert "at most 0" in finding.message
    assert "-c reserved_concurrency=0 -c launcher_reserved_concurrency=0" in finding.fix
    assert "L-B99A9384" in finding.fix


def test_reservations_that_leave_100_unreserved_pass() -> None:
    """https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html"""
    cfg = config(reserved_concurrency=10, launcher_reserved_concurrency=1)
    assert concurrency(cfg, 1000, 1000, {}).status is Status.OK


def test_reservations_beyond_unreserved_minus_100_block() -> None:
    """https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html"""
    cfg = config(reserved_concurrency=50, launcher_reserved_concurrency=1)
    finding = concurrency(cfg, 1000, 150, {})
    assert finding.status is Status.BLOCKER
    assert "= 51" in finding.message
    assert "at most 50" in finding.message


def test_a_redeploy_gets_the_apps_own_reservations_back() -> None:
    """The app's functions (named `<stack>-<id>-<suffix>`) hold 40 now; redeploying 40 fits.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
    https://docs.aws.amazon.com/en_us/AWSCloudFormation/latest/UserGuide/aws-properties-name.html
    """
    cfg = config(reserved_concurrency=39, launcher_reserved_concurrency=1)
    held = {"iris-ml-dev-api-ServingFunction-AbC": 39, "iris-ml-dev-pipeline-Launcher-DeF": 1}
    finding = concurrency(cfg, 150, 110, held)
    assert finding.status is Status.OK
    assert "40 of the reserved held by this app" in finding.message


def test_a_small_quota_without_reservations_is_a_note() -> None:
    """https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"""
    finding = concurrency(config(), 10, 10, {})
    assert finding.status is Status.NOTE
    assert "L-B99A9384" in finding.fix


# --- 5. Spot service-linked role --------------------------------------------------------------


def test_spot_role_present_passes(aws: boto3.Session) -> None:
    """EC2 launches Spot Instances through the AWSServiceRoleForEC2Spot service-linked role.

    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html
    """
    # Named as AWS names it; moto's create_service_linked_role would say AWSServiceRoleForspot.
    aws.client("iam").create_role(
        RoleName="AWSServiceRoleForEC2Spot",
        Path="/aws-service-role/spot.amazonaws.com/",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    assert checks.check_spot_role(aws.client("iam")).status is Status.OK


def test_missing_spot_role_is_a_note_not_a_blocker(aws: boto3.Session) -> None:
    """GetRole answers NoSuchEntity; the first API Spot request must find or create the role.

    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html
    https://docs.aws.amazon.com/botocore/latest/reference/services/iam/client/exceptions/NoSuchEntityException.html
    """
    finding = checks.check_spot_role(aws.client("iam"))
    assert finding.status is Status.NOTE
    assert "iam:CreateServiceLinkedRole" in finding.message
    assert "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com" in finding.fix


def test_unreadable_spot_role_says_so() -> None:
    """https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html"""
    iam, stubber = stubbed("iam", "us-east-1")
    stubber.add_client_error("get_role", "AccessDenied", http_status_code=403)
    with stubber:
        finding = checks.check_spot_role(iam)
    assert finding.status is Status.WARNING
    assert "cannot read" in finding.message


# --- 6. CloudFront ----------------------------------------------------------------------------


def test_usable_cloudfront_passes_and_says_what_it_cannot_see(aws: boto3.Session) -> None:
    """ListDistributions is a read that any account allowed to use CloudFront answers.

    https://docs.aws.amazon.com/cli/latest/reference/cloudfront/list-distributions.html
    Unverified new accounts fail only at CreateDistribution; AWS documents it nowhere found, the
    error is quoted in https://github.com/aws-samples/aws-cdk-examples/issues/279
    """
    finding = checks.check_cloudfront(aws.client("cloudfront", region_name="us-east-1"))
    assert finding.status is Status.OK
    assert "verify" in finding.message


def test_denied_cloudfront_blocks() -> None:
    """https://docs.aws.amazon.com/cli/latest/reference/cloudfront/list-distributions.html"""
    cloudfront, stubber = stubbed("cloudfront", "us-east-1")
    stubber.add_client_error("list_distributions", "AccessDenied", http_status_code=403)
    with stubber:
        finding = checks.check_cloudfront(cloudfront)
    assert finding.status is Status.BLOCKER
    assert "AWS Support" in finding.fix


# --- 7. Chatbot -------------------------------------------------------------------------------


def workspaces(*items: dict[str, str]) -> Any:
    chatbot, stubber = stubbed("chatbot", "eu-west-1")
    stubber.add_response("describe_slack_workspaces", {"SlackWorkspaces": list(items)})
    stubber.activate()
    return chatbot


def test_authorised_workspace_passes() -> None:
    """DescribeSlackWorkspaces lists the workspaces authorised in Chatbot, State ENABLED.

    https://docs.aws.amazon.com/cli/latest/reference/chatbot/describe-slack-workspaces.html
    https://docs.aws.amazon.com/chatbot/latest/APIReference/API_SlackWorkspace.html
    """
    chatbot = workspaces({"SlackTeamId": WORKSPACE, "SlackTeamName": "acme", "State": "ENABLED"})
    finding = checks.check_chatbot(chatbot, WORKSPACE)
    assert finding.status is Status.OK
    assert "acme" in finding.message


def test_unauthorised_workspace_blocks_with_the_console_step() -> None:
    """The workspace id exists only after the Chatbot console's authorisation flow with Slack.

    https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_chatbot.CfnSlackChannelConfiguration.html
    """
    chatbot = workspaces({"SlackTeamId": "T0OTHER000", "SlackTeamName": "other"})
    finding = checks.check_chatbot(chatbot, WORKSPACE)
    assert finding.status is Status.BLOCKER
    assert "Configure new client -> Slack" in finding.fix


def test_disabled_workspace_blocks() -> None:
    """https://docs.aws.amazon.com/chatbot/latest/APIReference/API_SlackWorkspace.html"""
    disabled = {
        "SlackTeamId": WORKSPACE,
        "SlackTeamName": "acme",
        "State": "DISABLED",
        "StateReason": "denied by the organization's chatbot policy",
    }
    finding = checks.check_chatbot(workspaces(disabled), WORKSPACE)
    assert finding.status is Status.BLOCKER
    assert "DISABLED" in finding.message


def test_chatbot_is_asked_where_its_api_is_served() -> None:
    """The API is in us-east-2, us-west-2, ap-southeast-1, eu-west-1; the console in us-east-2.

    https://docs.aws.amazon.com/cli/latest/reference/chatbot/index.html
    """
    assert checks.chatbot_region("eu-west-1") == "eu-west-1"
    assert checks.chatbot_region("us-east-1") == "us-east-2"
    assert checks.chatbot_region("ap-northeast-1") == "us-east-2"


def test_slack_workspace_is_checked_only_when_set(aws: boto3.Session) -> None:
    bootstrap(aws, "eu-west-1")
    bootstrap(aws, "us-east-1")
    quiet = clients(aws, **{"lambda": no_reservations(), "chatbot": None})
    report = preflight.run_checks(config(), quiet, host(), Path("absent"))
    slack = next(f for f in report.findings if f.check == "slack workspace")
    assert (slack.status, slack.message) == (Status.OK, "no Slack configured: nothing to check")
    chatbot = workspaces({"SlackTeamId": WORKSPACE, "SlackTeamName": "acme"})
    cfg = config(slack_workspace_id=WORKSPACE, slack_channel_id=CHANNEL)
    fixed = clients(aws, **{"lambda": no_reservations(), "chatbot": chatbot})
    report = preflight.run_checks(cfg, fixed, host(), Path("absent"))
    slack = next(f for f in report.findings if f.check == "slack workspace")
    assert slack.status is Status.OK


# --- 8. alarm destinations --------------------------------------------------------------------


def test_no_alarm_target_is_a_loud_warning() -> None:
    (finding,) = checks.check_alarm_targets(config())
    assert finding.status is Status.WARNING
    assert finding.message == "alarms reach nobody: set slack_* or alarm_email"
    assert finding.line().startswith("WARNING")


def test_an_email_target_passes_and_reminds_to_confirm_the_subscription() -> None:
    """SNS e-mail subscriptions stay pending until the link in the confirmation mail is followed.

    https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html
    https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_sns_subscriptions.EmailSubscription.html
    """
    target, reminder = checks.check_alarm_targets(config(alarm_email="ops@example.com"))
    assert target.status is Status.OK
    assert reminder.status is Status.NOTE
    assert "confirmation" in reminder.message


def test_a_slack_target_passes() -> None:
    findings = checks.check_alarm_targets(
        config(slack_workspace_id=WORKSPACE, slack_channel_id=CHANNEL)
    )
    assert [(f.status, f.message) for f in findings] == [
        (Status.OK, f"alarms go to Slack channel {CHANNEL}")
    ]


# --- the command ------------------------------------------------------------------------------


def test_unexpected_aws_errors_are_warnings_not_crashes(aws: boto3.Session) -> None:
    bootstrap(aws, "eu-west-1")
    bootstrap(aws, "us-east-1")
    cloudfront, stubber = stubbed("cloudfront", "us-east-1")
    stubber.add_client_error("list_distributions", "ServiceUnavailable", http_status_code=503)
    stubber.activate()
    fixed = {"lambda": no_reservations(), "cloudfront": cloudfront}
    report = preflight.run_checks(config(), clients(aws, **fixed), host(), Path("absent"))
    finding = next(f for f in report.findings if f.check == "cloudfront")
    assert finding.status is Status.WARNING
    assert "could not check" in finding.message


def test_main_prints_one_line_per_check_and_exits_0_when_ready(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap(aws, "eu-west-1")
    bootstrap(aws, "us-east-1")
    fixed = clients(aws, **{"lambda": no_reservations()})
    status = preflight.main(["--assembly", "absent"], clients=fixed, host=host())
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    checked = [line.split()[1].rstrip(":") for line in lines[:-1]]
    assert checked[:3] == ["credentials", "bootstrap", "bootstrap"]
    assert len(lines) == 12  # 11 checks (docker: 3) and the verdict
    assert lines[-1] == "preflight: 0 blocker(s), 1 warning(s): ready to deploy"  # no alarm target


def test_main_reads_c_overrides_as_the_cdk_app_does(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    """https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html"""
    bootstrap(aws, "eu-west-1")
    bootstrap(aws, "us-east-1")
    lambda_, stubber = stubbed("lambda")
    account_settings(stubber, 10, 10)
    stubber.add_response("list_functions", {"Functions": []})
    stubber.activate()
    argv = ["-c", "reserved_concurrency=5", "-c", "alarm_email=ops@example.com"]
    status = preflight.main(argv, clients=clients(aws, **{"lambda": lambda_}), host=host())
    out = capsys.readouterr().out
    assert status == 1
    assert "BLOCKER  lambda concurrency: reserved_concurrency 5 " in out
    assert "alarms go to e-mail ops@example.com" in out


def test_main_rejects_a_bad_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert preflight.main(["-c", "reserved_concurency=1"], clients=clients(), host=host()) == 2
    assert "'reserved_concurency' is unknown" in capsys.readouterr().err


def test_context_pairs_come_from_cdk_arguments() -> None:
    args = ["-c", "a=1", "--context", "b=2", "--context=c=3", "--hotswap", "-c"]
    assert preflight.context_pairs(args) == ["a=1", "b=2", "c=3"]
