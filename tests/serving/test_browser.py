"""The try-it page in headless Chromium: fill the form, submit, read the prediction.

The app runs under uvicorn on a free localhost port, with the Content-Security-Policy that
CloudFront adds in production, and Playwright drives Debian's Chromium (/usr/bin/chromium;
`scripts/system_setup.sh` installs it, Playwright never downloads a browser). The page must
work under that policy and load nothing from anywhere else.
"""

from __future__ import annotations

import ast
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Page, expect, sync_playwright
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.model import KnnModel

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Flags that work as root, offline, in a container: no sandbox, GPU, /dev/shm, first-run or
# background traffic. The profile is a fresh temporary --user-data-dir (launch_persistent_context).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
LABELS = {
    "sepal_length": "Sepal length",
    "sepal_width": "Sepal width",
    "petal_length": "Petal length",
    "petal_width": "Petal width",
}
# Records every CSP violation the page meets, before any of its own script runs.
WATCH_CSP = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


def cloudfront_csp() -> str:
    """The policy CloudFront adds (constructs/serving/cdn.py), read without importing the CDK."""
    tree = ast.parse((ROOT / "cdk_app" / "constructs" / "serving" / "cdn.py").read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.keyword)
            and node.arg == "content_security_policy"
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise AssertionError("cdk_app/constructs/serving/cdn.py sets no content_security_policy string")


class WithPolicy:
    """The app, answering with the given Content-Security-Policy header as CloudFront does."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.header = (b"content-security-policy", policy.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, adding the header to every response."""

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_policy)


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free localhost port, in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        WithPolicy(app, cloudfront_csp()),
        lifespan="off",
        ws="none",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started serving"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@contextmanager
def chromium_page(base_url: str) -> Iterator[tuple[Page, list[str], list[str]]]:
    """A page of a fresh headless Chromium, with the URLs it requests and its script errors."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: run scripts/system_setup.sh "
            "(apt-get install chromium) before the browser test"
        )
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            requested: list[str] = []
            errors: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.add_init_script(WATCH_CSP)
            page.goto(base_url)
            yield page, requested, errors
            assert page.evaluate("window.__violations") == []
        finally:
            context.close()


def test_page_predicts_a_virginica_in_chromium(
    base_url: str, model: KnnModel, tmp_path: Path
) -> None:
    with chromium_page(base_url) as (page, requested, errors):
        expect(page).to_have_title("Iris classifier: try it")
        for name, value in VIRGINICA.items():
            page.get_by_label(LABELS[name]).fill(str(value))
        page.get_by_role("button", name="Classify").click()

        expect(page.locator("#predicted-class")).to_have_text("Virginica")
        rows = page.locator("#probabilities tbody tr")
        expected = model.predict(np.array([list(VIRGINICA.values())])).probabilities[0]
        expect(rows).to_have_count(len(model.display_names))
        for i, (name, probability) in enumerate(zip(model.display_names, expected, strict=True)):
            row = rows.nth(i)
            expect(row.locator("th")).to_have_text(name)
            assert float(row.get_attribute("data-probability") or "nan") == probability
            expect(row.locator(".probability")).to_have_text(f"{probability * 100:.1f}%")
        expect(page.locator("#model-version")).to_have_text(model.version)
        expect(page.locator("#outcome")).to_have_attribute("aria-live", "polite")

        screenshot = Path(os.environ.get("TRYIT_SCREENSHOT") or tmp_path / "tryit.png")
        page.screenshot(path=screenshot, full_page=True)
        assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert errors == []
    # The page, then its one API call: nothing else, from nowhere else.
    assert requested == [base_url, base_url + "predict"]


def test_page_shows_api_errors_readably(base_url: str) -> None:
    with chromium_page(base_url) as (page, _, errors):
        # The browser's own range check would stop the value; let the API judge it.
        page.evaluate("document.getElementById('predict-form').noValidate = true")
        page.get_by_label("Sepal length").fill("0")
        page.get_by_role("button", name="Classify").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("The API refused the request (422)")
        expect(alert.locator("li")).to_have_text("Sepal length: Input should be greater than 0")
    assert errors == []
