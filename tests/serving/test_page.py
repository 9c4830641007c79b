"""The try-it page at GET /: served as HTML, self-contained, accessible, out of the contract."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.model import KnnModel
from app.routers.page import PAGE_FILE, build_router
from app.schemas import FEATURE_MAX, FEATURE_MIN
from tests.serving.support import FEATURES, Handler, event

ROOT = Path(__file__).resolve().parents[2]


class Page(HTMLParser):
    """The tags of a page, each as (tag, attributes)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        """Attributes of every `tag` whose attributes include `attrs`."""
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def page_html(client: TestClient) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.text


def test_page_is_html_with_the_model_version(client: TestClient, model: KnnModel) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-model-version"] == model.version
    assert response.content == PAGE_FILE.read_bytes()


def test_page_loads_nothing_from_elsewhere(client: TestClient) -> None:
    html = page_html(client)
    assert "http://" not in html
    assert "https://" not in html
    assert not re.search(r"(?i)@import|url\(|\bsrc\s*=|//[a-z0-9.-]+\.[a-z]", html)
    page = Page(html)
    # The only references: an empty inline icon and the relative link to the docs.
    refs = {a.get("href") or a.get("src") for _, a in page.tags if "href" in a or "src" in a}
    assert refs == {"data:,", "docs"}
    # Style and script are inline, which the CloudFront policy allows ('unsafe-inline').
    assert page.find("style")
    assert page.find("script")
    assert all("src" not in a for a in page.find("script"))


def test_page_form_matches_the_api_domain(client: TestClient) -> None:
    page = Page(page_html(client))
    labelled = {a["for"] for a in page.find("label")}
    for name in FEATURES:
        [field] = page.find("input", name=name)
        assert field["type"] == "number"
        assert field["id"] == name
        assert name in labelled
        assert "required" in field
        assert FEATURE_MIN < float(field["min"] or "nan") <= float(field["step"] or "nan")
        assert float(field["max"] or "nan") == FEATURE_MAX
        assert FEATURE_MIN < float(field["value"] or "nan") <= FEATURE_MAX
    assert page.find("button", type="submit")


def test_page_defaults_are_a_setosa(client: TestClient) -> None:
    page = Page(page_html(client))
    values = {name: float(page.find("input", name=name)[0]["value"] or "nan") for name in FEATURES}
    response = client.post("/predict", json={"instances": [values]})
    assert response.json()["predictions"][0]["iris_type"] == "Setosa"


def test_page_result_area_is_announced(client: TestClient) -> None:
    page = Page(page_html(client))
    [outcome] = page.find("div", id="outcome")
    assert outcome["aria-live"] == "polite"
    html = page_html(client)
    # The script calls the API relative to the page and renders text, never markup.
    assert '+ "predict"' in html
    assert "innerHTML" not in html


def test_page_is_not_in_the_contract(client: TestClient) -> None:
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_page_is_read_once_when_the_app_is_built(tmp_path: Path) -> None:
    page_file = tmp_path / "index.html"
    page_file.write_text("<p>first</p>")
    router = build_router(page_file)
    page_file.write_text("<p>second</p>")
    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as client:
        assert client.get("/").text == "<p>first</p>"


def test_page_is_inside_the_image() -> None:
    # The Dockerfile copies app/ whole; the page must live there.
    assert PAGE_FILE.is_relative_to(ROOT / "lambda_image" / "app")
    assert "COPY app/" in (ROOT / "lambda_image" / "Dockerfile").read_text()


def test_page_through_the_lambda_handler(handler: Handler, model: KnnModel) -> None:
    for request in (rest_get_root(), http_get_root()):
        response = handler(request, None)
        assert response["statusCode"] == 200
        assert response["isBase64Encoded"] is False
        assert response["body"] == PAGE_FILE.read_text()
        headers = {k.lower(): v for k, v in response["headers"].items()}
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["x-model-version"] == model.version


def rest_get_root() -> dict[str, Any]:
    """A REST (v1) GET / event, as API Gateway's root resource sends it."""
    request = copy.deepcopy(event("rest_v1_get_predict.json"))
    request.update(
        resource="/",
        path="/",
        pathParameters=None,
        queryStringParameters=None,
        multiValueQueryStringParameters=None,
    )
    request["requestContext"].update(path="/prod/", resourcePath="/")
    return request


def http_get_root() -> dict[str, Any]:
    """An HTTP API (v2) GET / event."""
    request = copy.deepcopy(event("http_v2_post_predict.json"))
    request.update(routeKey="$default", rawPath="/", body=None, isBase64Encoded=False)
    request["requestContext"]["http"].update(method="GET", path="/")
    del request["headers"]["content-type"], request["headers"]["content-length"]
    return request
