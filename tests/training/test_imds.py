"""The IMDSv2 client against a local HTTP server that behaves like IMDS (tokens required)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from training.instance.imds import Imds, ImdsError


@dataclass
class FakeMetadataService:
    """What the emulated IMDS serves and what it saw."""

    paths: dict[str, str] = field(default_factory=dict)
    tokens_issued: int = 0
    valid_token: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)

    def issue(self) -> str:
        self.tokens_issued += 1
        self.valid_token = f"token-{self.tokens_issued}"
        return self.valid_token


def _handler(service: FakeMetadataService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            service.requests.append(("PUT", self.path))
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if self.path != "/latest/api/token" or not ttl:
                self._send(400, "")
            else:
                self._send(200, service.issue())

        def do_GET(self) -> None:
            service.requests.append(("GET", self.path))
            if self.headers.get("X-aws-ec2-metadata-token") != service.valid_token:
                self._send(401, "")
            elif self.path in service.paths:
                self._send(200, service.paths[self.path])
            else:
                self._send(404, "")

        def _send(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test output is not the place for an access log."""

    return Handler


@pytest.fixture
def service() -> Iterator[tuple[FakeMetadataService, str]]:
    fake = FakeMetadataService(
        paths={
            "/latest/meta-data/instance-id": "i-0123456789abcdef0",
            "/latest/meta-data/instance-type": "m7g.large",
            "/latest/meta-data/instance-life-cycle": "spot",
            "/latest/meta-data/tags/instance/RunId": "20261127T140501Z-1a2b3c4d",
        }
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_reads_metadata_with_one_session_token(service: tuple[FakeMetadataService, str]) -> None:
    fake, endpoint = service
    imds = Imds(endpoint)
    assert imds.instance_id() == "i-0123456789abcdef0"
    assert imds.instance_type() == "m7g.large"
    assert imds.lifecycle() == "spot"
    assert imds.tag("RunId") == "20261127T140501Z-1a2b3c4d"
    assert fake.tokens_issued == 1
    assert fake.requests[0] == ("PUT", "/latest/api/token")


def test_on_demand_lifecycle(service: tuple[FakeMetadataService, str]) -> None:
    fake, endpoint = service
    fake.paths["/latest/meta-data/instance-life-cycle"] = "on-demand"
    assert Imds(endpoint).lifecycle() == "on-demand"


def test_spot_notice_is_none_until_imds_publishes_one(
    service: tuple[FakeMetadataService, str],
) -> None:
    fake, endpoint = service
    imds = Imds(endpoint)
    assert imds.spot_instance_action() is None
    notice = {"action": "terminate", "time": "2026-11-27T14:07:01Z"}
    fake.paths["/latest/meta-data/spot/instance-action"] = json.dumps(notice)
    assert imds.spot_instance_action() == notice


def test_a_missing_tag_explains_the_launch_template_setting(
    service: tuple[FakeMetadataService, str],
) -> None:
    _, endpoint = service
    with pytest.raises(ImdsError, match="InstanceMetadataTags enabled"):
        Imds(endpoint).tag("DatasetUri")


def test_a_rejected_token_is_renewed_once(service: tuple[FakeMetadataService, str]) -> None:
    fake, endpoint = service
    imds = Imds(endpoint)
    imds.instance_id()
    fake.valid_token = "rotated"  # noqa: S105 (as after an IMDS restart: the cached token is refused)
    assert imds.instance_type() == "m7g.large"
    assert fake.tokens_issued == 2


def test_an_unreachable_imds_fails_fast_and_clearly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    with pytest.raises(ImdsError, match="cannot reach IMDS"):
        Imds(f"http://127.0.0.1:{port}", timeout=1).instance_id()
