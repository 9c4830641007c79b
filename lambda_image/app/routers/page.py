"""The try-it page at GET /: a form that calls POST /predict from the browser.

One self-contained HTML file (inline style and script, no external URL), read once when the
app is built. It is a page for people, not part of the API contract: it stays out of the
OpenAPI document, like /docs.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

PAGE_FILE = Path(__file__).resolve().parent.parent / "static" / "index.html"


def build_router(page_file: Path = PAGE_FILE) -> APIRouter:
    """The page route, serving `page_file` as read now."""
    page = page_file.read_bytes()
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def try_it() -> HTMLResponse:
        """The try-it page."""
        return HTMLResponse(page)

    return router
