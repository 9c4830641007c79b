"""Build and push the serving image: the Docker CLI behind a small interface, and ECR login.

Every command is an exact argv handed to an injectable runner, so tests assert the command
lines without a Docker engine. The default runner kills its child when a cancel event is set
(the Spot interruption watcher sets it), so a two-minute notice is not spent inside a build.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

# Generous ceilings; a model image build pulls the serving runtime from ECR (tens of MB).
LOGIN_TIMEOUT = 60.0
BUILD_TIMEOUT = 1800.0
PUSH_TIMEOUT = 900.0
INSPECT_TIMEOUT = 60.0
# How often a running command checks the cancel event.
_POLL_SECONDS = 0.2
# Enough of a failed command's output to see the error, not the whole build log.
_OUTPUT_TAIL = 2000
# The manifests Lambda runs: one image, Docker V2 schema 2 or OCI. An image index (what buildx
# with attestations, or a multi-platform build, pushes) is refused at UpdateFunctionCode.
SINGLE_IMAGE_MANIFESTS = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_REPO_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


class CommandError(RuntimeError):
    """A command failed, timed out or could not start; the message ends with its output."""


class CommandCancelledError(RuntimeError):
    """A command was killed because its cancel event was set."""


@dataclass(frozen=True)
class CommandResult:
    """A finished command's exit status and output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs one command to completion; raises CommandError or CommandCancelledError."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> CommandResult:
        """Run `argv`, feeding `stdin`, for at most `timeout` seconds or until `cancel` is set."""
        ...


def run_command(
    argv: Sequence[str],
    *,
    stdin: bytes | None = None,
    timeout: float,
    cancel: threading.Event | None = None,
) -> CommandResult:
    """Run `argv` (no shell), capturing its output; kill it on timeout or cancellation."""
    shown = " ".join(argv[:2])
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as err:
        raise CommandError(f"cannot run {shown}: {err.strerror or err}") from err
    deadline = time.monotonic() + timeout
    pending_input = stdin
    outputs: tuple[bytes, bytes] | None = None
    while outputs is None:
        if cancel is not None and cancel.is_set():
            _kill(process)
            raise CommandCancelledError(f"{shown} was stopped: cancelled")
        if time.monotonic() >= deadline:
            _kill(process)
            raise CommandError(f"{shown} did not finish within {timeout:g} s")
        try:
            # communicate() may be called again after a timeout without losing output; the
            # input is sent with the first call only.
            outputs = process.communicate(pending_input, timeout=_POLL_SECONDS)
        except subprocess.TimeoutExpired:
            pending_input = None
    stdout, stderr = (data.decode(errors="replace") for data in outputs)
    if process.returncode != 0:
        tail = (stderr.strip() or stdout.strip())[-_OUTPUT_TAIL:]
        raise CommandError(f"{shown} exited with {process.returncode}: {tail}")
    return CommandResult(tuple(argv), process.returncode, stdout, stderr)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill a child and reap it, closing its pipes."""
    process.kill()
    process.communicate()


class Docker(Protocol):
    """What the pipeline needs from Docker: log in, build an image, push it."""

    def login(
        self, registry: str, username: str, password: str, *, cancel: threading.Event | None = None
    ) -> None:
        """Log in to a registry host."""
        ...

    def build(
        self,
        context: Path,
        tag: str,
        platform: str,
        *,
        dockerfile: str | None = None,
        build_args: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Build `context` (with `dockerfile` in it) into the image `tag` for `platform`."""
        ...

    def push(self, tag: str, *, cancel: threading.Event | None = None) -> str:
        """Push `tag` and return the digest the registry stored (sha256:...)."""
        ...


class DockerCli:
    """Docker through its command line, each command run by `run`."""

    def __init__(self, *, run: CommandRunner = run_command, executable: str = "docker") -> None:
        self._run = run
        self._docker = executable

    def login(
        self, registry: str, username: str, password: str, *, cancel: threading.Event | None = None
    ) -> None:
        """`docker login --username U --password-stdin REGISTRY`: the password never in argv."""
        self._run(
            [self._docker, "login", "--username", username, "--password-stdin", registry],
            stdin=password.encode(),
            timeout=LOGIN_TIMEOUT,
            cancel=cancel,
        )

    def build(
        self,
        context: Path,
        tag: str,
        platform: str,
        *,
        dockerfile: str | None = None,
        build_args: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """`docker build --platform P [-f FILE] [--build-arg K=V]... -t TAG CONTEXT`.

        One platform, and the user data exports BUILDX_NO_DEFAULT_ATTESTATIONS=1 (which the
        legacy builder ignores and buildx honours), so the push is one image manifest.
        """
        argv = [self._docker, "build", "--platform", platform]
        if dockerfile is not None:
            argv += ["-f", str(context / dockerfile)]
        for key, value in sorted((build_args or {}).items()):
            argv += ["--build-arg", f"{key}={value}"]
        self._run([*argv, "-t", tag, str(context)], timeout=BUILD_TIMEOUT, cancel=cancel)

    def push(self, tag: str, *, cancel: threading.Event | None = None) -> str:
        """`docker push TAG`; the digest from its output, else from `docker inspect`."""
        result = self._run([self._docker, "push", tag], timeout=PUSH_TIMEOUT, cancel=cancel)
        found = _DIGEST.findall(result.stdout)
        if found:
            return str(found[-1])
        inspected = self._run(
            [self._docker, "inspect", "--format", "{{json .RepoDigests}}", tag],
            timeout=INSPECT_TIMEOUT,
            cancel=cancel,
        )
        repository = tag.rsplit(":", 1)[0]
        for entry in json.loads(inspected.stdout or "[]") or []:
            match = _REPO_DIGEST.search(entry)
            if match and entry.startswith(f"{repository}@"):
                return match[1]
        raise CommandError(f"docker push {tag} reported no digest, and docker inspect shows none")


def ecr_login(ecr: ECRClient, docker: Docker, *, cancel: threading.Event | None = None) -> str:
    """Log Docker in to the account's ECR registry with a fresh token; return the host."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = urlparse(data["proxyEndpoint"]).netloc
    docker.login(registry, username, password, cancel=cancel)
    return registry


def context_digest(context: Path) -> str:
    """A sha256 over every file's relative path and bytes: equal contexts, equal digests."""
    outer = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        outer.update(path.relative_to(context).as_posix().encode() + b"\0")
        outer.update(hashlib.sha256(path.read_bytes()).digest())
    return f"sha256:{outer.hexdigest()}"


class LocalBuild:
    """A Docker stand-in for local runs: copies the context per tag, digests its files.

    With `registry` (an ECR client, e.g. on moto) a push also stores a one-layer image
    manifest there under the tag, as Docker's push would, and returns the digest ECR gives it.
    """

    def __init__(self, out_dir: Path, *, registry: ECRClient | None = None) -> None:
        self.out_dir = out_dir
        self.logins: list[str] = []
        self._digests: dict[str, str] = {}
        self._registry = registry

    def login(
        self, registry: str, username: str, password: str, *, cancel: threading.Event | None = None
    ) -> None:
        """Remember the registry (there is nothing to log in to)."""
        self.logins.append(registry)

    def build(
        self,
        context: Path,
        tag: str,
        platform: str,
        *,
        dockerfile: str | None = None,
        build_args: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Copy `context` to `<out_dir>/<tag with / and : replaced>` and digest it."""
        target = self.out_dir / re.sub(r"[/:@]", "_", tag)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(context, target)
        self._digests[tag] = context_digest(target)

    def push(self, tag: str, *, cancel: threading.Event | None = None) -> str:
        """The digest of the copy built for `tag`."""
        if tag not in self._digests:
            raise CommandError(f"{tag} was not built")
        if self._registry is None:
            return self._digests[tag]
        repository, _, name = tag.partition("/")[2].rpartition(":")
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": self._digests[tag],
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": self._digests[tag],
                    "size": 2,
                }
            ],
        }
        pushed = self._registry.put_image(
            repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=name
        )
        return str(pushed["image"]["imageId"]["imageDigest"])
