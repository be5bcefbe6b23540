"""The Content-Security-Policy: every page gets it (with the WebSocket origin of its host), the
templates hold no inline script, event handler or style attribute that it would refuse, and the
API docs pages widen it only as far as ReDoc needs. tests/e2e checks it in Chromium: a browser
test fails on any violation."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db

SITE_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'", "ws://testserver", "wss://testserver"],
    "frame-ancestors": ["'none'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
}
# Downloaded as an attachment and opened from disk (apps/qa_runs/api/views.py), where no header
# applies: it carries its own <style> on purpose.
STANDALONE = {"qa_runs/report.html"}
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*\btype=\"application/json\")[^>]*>", re.I)
HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)


def policy(client: Client, path: str) -> dict[str, list[str]]:
    response = client.get(path)
    assert response.status_code == 200, path
    directives = [part.split() for part in response["Content-Security-Policy"].split(";")]
    return {name: values for name, *values in directives}


def test_a_page_gets_the_site_policy_with_its_hosts_websockets(client: Client) -> None:
    assert policy(client, "/login/") == SITE_POLICY


def test_swagger_ui_keeps_the_site_policy(client: Client) -> None:
    assert policy(client, "/api/docs/") == SITE_POLICY
    assert policy(client, "/api/docs/?script=") == SITE_POLICY  # its start script, a file


def test_redoc_alone_may_inject_styles_and_start_its_search_worker(client: Client) -> None:
    assert policy(client, "/api/redoc/") == {
        **SITE_POLICY, "style-src": ["'self'", "'unsafe-inline'"], "worker-src": ["blob:"],
    }  # fmt: skip


def test_redoc_is_served_without_anything_from_another_host(client: Client) -> None:
    html = client.get("/api/redoc/").content.decode()
    assert re.findall(r"(?:src|href)=\"((?:https?:)?//[^\"]*)\"", html) == []
    assert INLINE_SCRIPT.search(html) is None
    fonts = settings.SPECTACULAR_SETTINGS["REDOC_UI_SETTINGS"]["theme"]["typography"]
    assert "Montserrat" not in str(fonts)  # ReDoc's default, from Google Fonts


def test_no_template_has_what_the_policy_refuses() -> None:
    found = []
    root = Path(settings.BASE_DIR) / "templates"
    for template in sorted(root.rglob("*.html")):
        name = template.relative_to(root).as_posix()
        text = template.read_text()
        for pattern in (INLINE_SCRIPT, HANDLER) if name in STANDALONE else (INLINE_SCRIPT, HANDLER, STYLE):
            found += [f"{name}: {match.group(0)[:80]}" for match in pattern.finditer(text)]
    assert found == []
