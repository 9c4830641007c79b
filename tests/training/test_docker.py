"""Docker commands as exact argv, ECR login via moto, the interruptible runner, the local build."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from mypy_boto3_ecr import ECRClient

from tests.training.fakes import PUSH_DIGEST, RecordingRunner
from training.instance.docker import (
    CommandCancelledError,
    CommandError,
    CommandResult,
    DockerCli,
    LocalBuild,
    context_digest,
    ecr_login,
    run_command,
)

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris-models:v2-0a1b2c3d4e5f"


def test_ecr_login_passes_the_token_on_stdin_to_the_proxy_host(
    ecr: ECRClient, runner: RecordingRunner
) -> None:
    host = ecr_login(ecr, DockerCli(run=runner))
    assert host == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    [call] = runner.calls
    assert call.argv == [
        "docker",
        "login",
        "--username",
        "AWS",
        "--password-stdin",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    ]
    # moto's token decodes to AWS:<password>; the password goes to stdin, never into argv.
    assert call.stdin == b"123456789012-auth-token"
    assert not any("auth-token" in arg for arg in call.argv)


def test_build_and_push_command_lines(runner: RecordingRunner, tmp_path: Path) -> None:
    docker = DockerCli(run=runner, executable="/usr/bin/docker")
    docker.build(tmp_path, IMAGE, "linux/amd64")
    docker.build(
        tmp_path,
        IMAGE,
        "linux/amd64",
        dockerfile="model.Dockerfile",
        build_args={"SERVING_RUNTIME": "repo@sha256:" + "ab" * 32},
    )
    digest = docker.push(IMAGE)
    assert runner.argvs == [
        ["/usr/bin/docker", "build", "--platform", "linux/amd64", "-t", IMAGE, str(tmp_path)],
        [
            "/usr/bin/docker",
            "build",
            "--platform",
            "linux/amd64",
            "-f",
            str(tmp_path / "model.Dockerfile"),
            "--build-arg",
            "SERVING_RUNTIME=repo@sha256:" + "ab" * 32,
            "-t",
            IMAGE,
            str(tmp_path),
        ],
        ["/usr/bin/docker", "push", IMAGE],
    ]
    assert digest == PUSH_DIGEST


def test_push_falls_back_to_inspect_for_the_digest() -> None:
    calls: list[list[str]] = []
    repo_digests = [
        "public.ecr.aws/lambda/python@sha256:" + "00" * 32,
        IMAGE.rsplit(":", 1)[0] + "@" + PUSH_DIGEST,
    ]

    def quiet_push(
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> CommandResult:
        calls.append(list(argv))
        stdout = json.dumps(repo_digests) if argv[1] == "inspect" else "pushed\n"
        return CommandResult(tuple(argv), 0, stdout, "")

    assert DockerCli(run=quiet_push).push(IMAGE) == PUSH_DIGEST
    assert calls[1] == ["docker", "inspect", "--format", "{{json .RepoDigests}}", IMAGE]


def test_a_push_without_any_digest_is_an_error() -> None:
    def silent(
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> CommandResult:
        return CommandResult(tuple(argv), 0, "[]" if argv[1] == "inspect" else "", "")

    with pytest.raises(CommandError, match="reported no digest"):
        DockerCli(run=silent).push(IMAGE)


# The real runner, on real child processes.


def test_run_command_feeds_stdin_and_captures_output() -> None:
    code = "import sys; sys.stdout.write(sys.stdin.read().upper())"
    result = run_command([sys.executable, "-c", code], stdin=b"secret", timeout=30)
    assert (result.returncode, result.stdout) == (0, "SECRET")


def test_run_command_reports_a_failure_with_its_output() -> None:
    code = "import sys; sys.stderr.write('denied: not authorized'); sys.exit(3)"
    with pytest.raises(CommandError, match="exited with 3: denied: not authorized"):
        run_command([sys.executable, "-c", code], timeout=30)


def test_run_command_kills_the_child_when_cancelled() -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(CommandCancelledError, match="cancelled"):
        run_command(
            [sys.executable, "-c", "import time; time.sleep(30)"], timeout=60, cancel=cancel
        )
    assert time.monotonic() - started < 5


def test_run_command_kills_the_child_at_its_timeout() -> None:
    with pytest.raises(CommandError, match=r"did not finish within 0\.5 s"):
        run_command([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)


def test_run_command_reports_a_missing_executable() -> None:
    with pytest.raises(CommandError, match="cannot run /nonexistent/docker"):
        run_command(["/nonexistent/docker", "version"], timeout=5)


# The local stand-in.


def test_local_build_copies_the_context_and_digests_its_files(
    build_context: Path, tmp_path: Path
) -> None:
    build = LocalBuild(tmp_path / "out")
    with pytest.raises(CommandError, match="was not built"):
        build.push(IMAGE)
    build.login("registry.example", "AWS", "password")
    build.build(build_context, IMAGE, "linux/arm64")
    copy = tmp_path / "out" / IMAGE.replace("/", "_").replace(":", "_")
    dockerfile = "model.Dockerfile"
    assert (copy / dockerfile).read_bytes() == (build_context / dockerfile).read_bytes()
    digest = build.push(IMAGE)
    assert digest == context_digest(build_context)
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    (build_context / dockerfile).write_text("# changed\n")
    assert context_digest(build_context) != digest
    assert build.logins == ["registry.example"]
