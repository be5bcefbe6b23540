"""The API docs pages in Chromium: ReDoc (/api/redoc/) and Swagger UI (/api/docs/) draw the schema
and request nothing from another host (no web fonts, no logo from a CDN), within the site's
Content-Security-Policy (the `context` fixture fails a test on any violation).

A real daphne serves the pages, the static files and the schema."""

import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.support.daphne import Daphne

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def host_of(url: str) -> str:
    """The host:port a request went to; '' for data: (nothing is fetched), blob: counts as its page's."""
    return urlsplit(url.removeprefix("blob:")).netloc


OPERATION = "Post a batch of device observations (up to 5,000)"  # the summary of one operation
TAGS = len(settings.SPECTACULAR_SETTINGS["TAGS"])  # the schema's tags (openspc/api_tags.py), each a section
SCHEMA_WITHIN_MS = 60_000  # the server makes the schema on the first request: seconds, on a busy machine


def drawn(page: Page, path: str) -> Locator:
    """An operation of the schema as the page draws it (ReDoc: its heading; Swagger UI: its row)."""
    if path == "/api/redoc/":
        return page.get_by_role("heading", name=OPERATION)
    return page.locator(".opblock-summary-description", has_text=OPERATION)


@pytest.mark.parametrize("path", ["/api/redoc/", "/api/docs/"])
def test_the_api_docs_request_nothing_from_another_host(
    server: Daphne, context: BrowserContext, path: str
) -> None:
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(path)
    if path == "/api/docs/":  # its tags start collapsed: every tag is drawn, and opens on a click
        tags = page.locator(".opblock-tag")
        expect(tags).to_have_count(TAGS, timeout=SCHEMA_WITHIN_MS)
        page.locator(".opblock-tag", has_text="Observations").first.click()
    expect(drawn(page, path)).to_be_visible(timeout=SCHEMA_WITHIN_MS)
    if path == "/api/redoc/":
        expect(page.get_by_text("API docs by Redocly")).to_be_visible()  # where ReDoc shows its logo
    expect(page).to_have_title(re.compile("OpenSPC API"))
    page.wait_for_load_state("networkidle")

    assert f"{server.origin}/api/schema/" in requested
    assert [url for url in requested if host_of(url) not in {"", urlsplit(server.origin).netloc}] == []
