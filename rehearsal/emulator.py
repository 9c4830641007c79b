"""MiniStack, the local AWS emulator the rehearsal deploys into: installed, started, stopped.

It runs from its own venv (.venv/ministack, pinned by rehearsal/requirements.txt), bound to
127.0.0.1 on a free port, and is always stopped when the `with` block ends, failed or not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
VENV = ROOT / ".venv" / "ministack"
NODE_SDK = VENV / "node"
ACCOUNT = "000000000000"
# Root credentials under AUTH=true: MiniStack treats the key `test` as the account's root.
ACCESS_KEY = "test"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class EmulatorError(RuntimeError):
    """The emulator could not be installed, started or reached; the message says which."""


def _tool(name: str) -> str:
    """The full path of a command on PATH (npm from the project venv, openssl from the system)."""
    path = shutil.which(name)
    if path is None:
        raise EmulatorError(f"{name} is not on PATH; run `make install` (npm) or install {name}")
    return path


def _stamp_matches(stamp: Path, *sources: Path) -> bool:
    """True when `stamp` holds the contents of `sources` (an install of exactly those pins)."""
    wanted = "".join(source.read_text() for source in sources)
    return stamp.is_file() and stamp.read_text() == wanted


def ensure_installed(python: str = "python3") -> None:
    """Create .venv/ministack with the pinned emulator and the Lambda runtime's Node SDK."""
    requirements = HERE / "requirements.txt"
    stamp = VENV / ".rehearsal-stamp"
    if not _stamp_matches(stamp, requirements):
        if not (VENV / "bin" / "python").is_file():
            subprocess.run([python, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [
                str(VENV / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(requirements),
            ],
            check=True,
        )
        stamp.write_text(requirements.read_text())
    sdk = HERE / "lambda_sdk"
    sdk_stamp = NODE_SDK / ".rehearsal-stamp"
    if not _stamp_matches(sdk_stamp, sdk / "package-lock.json"):
        NODE_SDK.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(sdk / name, NODE_SDK / name)
        subprocess.run(
            [_tool("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_SDK,
            check=True,
        )
        sdk_stamp.write_text((sdk / "package-lock.json").read_text())


def supported_types() -> set[str]:
    """The resource types the installed emulator's CloudFormation provisions."""
    listing = subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-c",
            "from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS as h; "
            "print(chr(10).join(h))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(listing.stdout.split())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A running emulator: where it listens and how a client trusts and signs in to it."""

    url: str
    ca_bundle: Path
    log: Path
    auth: bool

    def client_env(self, region: str) -> dict[str, str]:
        """Environment for boto3, the CDK CLI and our CLIs: every AWS call goes to the emulator."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("AWS_") and key not in ("CDK_DEFAULT_ACCOUNT",)
        }
        env.update(
            AWS_ENDPOINT_URL=self.url,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=ACCESS_KEY,
            AWS_REGION=region,
            AWS_DEFAULT_REGION=region,
            AWS_CA_BUNDLE=str(self.ca_bundle),
            NODE_EXTRA_CA_CERTS=str(self.ca_bundle),
            # No profile or config file of the machine's may redirect a call to a real account.
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
        )
        return env


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made before start so every client can trust it.

    MiniStack would make one itself as it starts, but its Node.js Lambda workers are not told
    to trust it; with ours, NODE_EXTRA_CA_CERTS and AWS_CA_BUNDLE name it from the start.
    """
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            _tool("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=rehearsal-ministack",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return cert, key


def _wait_healthy(url: str, context: ssl.SSLContext, proc: subprocess.Popen[bytes]) -> None:
    """Poll the health endpoint until it answers, the process dies, or the bound passes."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorError(f"MiniStack exited with status {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(  # noqa: S310 (our own https URL)
                f"{url}/_ministack/health", timeout=2, context=context
            ):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise EmulatorError(f"MiniStack did not answer {url} within {START_TIMEOUT_S:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the emulator's process group (its Lambda workers too), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def running(*, auth: bool, workdir: Path) -> Iterator[Endpoint]:
    """Start MiniStack on 127.0.0.1 with TLS (and IAM enforced if `auth`); stop it on exit."""
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="ministack-", dir=workdir))
    log = workdir / "ministack.log"
    cert, key = make_certificate(tmp)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "LOCALSTACK_", "MINISTACK_"))
    }
    env.update(
        GATEWAY_PORT=str(port),
        BIND_HOST="127.0.0.1",
        MINISTACK_HOST="127.0.0.1",
        LAMBDA_EXECUTOR="local",
        AUTH="true" if auth else "false",
        # The CDK bootstrap bucket's policy denies aws:SecureTransport=false.
        USE_SSL="1",
        TMPDIR=str(tmp),
        MINISTACK_SSL_CERT=str(cert),
        MINISTACK_SSL_KEY=str(key),
        # Inherited by the Lambda workers, whose SDKs then trust the emulator.
        NODE_EXTRA_CA_CERTS=str(cert),
        AWS_CA_BUNDLE=str(cert),
        S3_DATA_DIR=str(tmp / "s3"),
        # The SDK v3 clients the Node.js Lambda runtime provides (rehearsal/lambda_sdk).
        NODE_PATH=str(NODE_SDK / "node_modules"),
        LOG_LEVEL="WARNING",
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(VENV / "bin" / "ministack")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"https://127.0.0.1:{port}"
        _wait_healthy(url, ssl.create_default_context(cafile=str(cert)), proc)
        yield Endpoint(url=url, ca_bundle=cert, log=log, auth=auth)
    finally:
        _stop(proc)
