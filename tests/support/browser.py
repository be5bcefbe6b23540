"""What the browser tests share: Debian's Chromium driven by Playwright, signing in through the
login form, screenshots.

The browser is the system's Chromium (/usr/bin/chromium, `apt-get install chromium`), never one
Playwright downloads: `playwright install` is not part of any set-up. Where it is missing the
browser tests skip, saying so.
"""

import contextlib
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.contrib.auth.models import AbstractBaseUser
from django.db import connections
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Playwright, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = f"Chromium is not installed ({CHROMIUM}); `apt-get install chromium` (.ci/run does)"
# Headless and quiet: nothing but the pages under test goes on the network.
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root in a container, where Chromium's sandbox cannot start
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--password-store=basic",
]
VIEWPORT = {"width": 1366, "height": 768}  # the smallest desktop the pages are designed for
TIMEOUT_MS = 10_000  # Playwright's waits (for an element, an attribute, a navigation)

PASSWORD = "pw-for-browser-tests"
SCREENSHOTS = settings.VAR_DIR / "screenshots"
# `DOCS_SCREENSHOTS=1 make test PYTEST_ARGS=tests/e2e` refreshes the docs' pictures too; off by
# default, since every run draws different times and would leave the committed ones changed.
DOCS_SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"

ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
SERIALIZED = "_test_serialized_contents"  # what Django keeps on a connection for serialized_rollback


@contextlib.contextmanager
def playwright_beside_the_orm() -> Iterator[Playwright]:
    """Playwright's sync API, started so that the tests can still use the ORM in this thread.

    From start to stop, the sync API keeps an asyncio loop marked as running in the calling thread.
    Django then takes every ORM call for one made from async code, and (1) refuses it, and (2) keeps
    its connections in storage of their own (asgiref's Local: thread-local when no loop runs,
    context-local when one does), so the connection that pytest-django prepared, with the data a
    `serialized_rollback` test restores, is not the one the tests get. So: the async check is off
    while the loop runs (the calls are synchronous all the same; the loop only drives the
    browser); the new connections get the serialized data; and they are closed before the loop
    stops, or the test database could not be dropped at the end."""
    serialized = {alias: getattr(connections[alias], SERIALIZED, None) for alias in connections}
    before = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            for alias, contents in serialized.items():
                if contents is not None:
                    setattr(connections[alias], SERIALIZED, contents)
            try:
                yield playwright
            finally:
                connections.close_all()
    finally:
        if before is None:
            del os.environ[ASYNC_UNSAFE]
        else:
            os.environ[ASYNC_UNSAFE] = before


# For the server and worker processes a test starts (they copy os.environ): there that exception
# would hide real mistakes. An empty value is "off" to Django.
ASYNC_CHECKS_ON = {ASYNC_UNSAFE: ""}


@contextlib.contextmanager
def async_checks_on() -> Iterator[None]:
    """os.environ without that exception, while processes that copy it start."""
    before = os.environ.pop(ASYNC_UNSAFE, None)
    try:
        yield
    finally:
        if before is not None:
            os.environ[ASYNC_UNSAFE] = before


@functools.cache
def _password_hash() -> str:
    # The server process checks passwords with the project's hashers, not the tests' fast MD5 one
    # (tests/conftest.py): hash once, with the default hasher, and give every signed-in user that.
    return make_password(PASSWORD, hasher=PBKDF2PasswordHasher())


def password_usable_by_server(user: AbstractBaseUser) -> str:
    """Give the user PASSWORD, stored so the server can check it; returns it."""
    user.password = _password_hash()
    user.save(update_fields=["password"])
    return PASSWORD


def sign_in(page: Page, username: str, password: str) -> None:
    """Fill in and send the login form (the page must show it)."""
    page.get_by_label(re.compile(r"^user ?name", re.IGNORECASE)).fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def signed_in(
    context: BrowserContext, user: AbstractBaseUser, *, path: str = "/", page: Page | None = None
) -> Page:
    """A page of `context` (or `page`) on `path`, reached by signing in as `user` through the login
    form, and loaded: its scripts have run, so its buttons do what they say."""
    password = password_usable_by_server(user)
    page = page or context.new_page()
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/login/"))
    sign_in(page, user.get_username(), password)
    expect(page).not_to_have_url(re.compile(r"/login/"))
    page.wait_for_load_state("load")  # the URL changes when the page starts loading, not when it is done
    return page


# An init script: every message the page's WebSockets receive goes to window.webSocketMessages, so
# a test can wait until the server has confirmed a subscription before it makes the event that the
# page should then show (the "Live" badge means connected, not yet subscribed).
WEBSOCKET_RECORDER = """
(() => {
  const Native = window.WebSocket;
  window.webSocketMessages = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        try { window.webSocketMessages.push(JSON.parse(event.data)); } catch {}
      });
    }
  };
})();
"""


def record_websocket_messages(context: BrowserContext) -> None:
    context.add_init_script(WEBSOCKET_RECORDER)


def wait_until_subscribed(page: Page, characteristic_id: int) -> None:
    """Wait for the server's `subscribed` answer naming the characteristic (record_websocket_messages)."""
    page.wait_for_function(
        """(id) => window.webSocketMessages.some(
             (m) => m.type === "subscribed" && m.characteristic_ids.includes(id))""",
        arg=characteristic_id,
    )


def wait_until_live(page: Page) -> None:
    """The page's live badge (base.html) says the WebSocket is connected."""
    expect(page.locator("[data-live-status]")).to_have_attribute("data-status", "live")


# An init script: every Content-Security-Policy violation also goes to the console. Chromium
# writes most there itself, but not all (a refused worker, an inline handler in a frame); the
# `context` fixture (conftest.py) fails a test whose pages had any.
CSP_VIOLATION_REPORTER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`Content Security Policy violation: ${event.violatedDirective} refused `
    + `${event.blockedURI || "inline"} (${event.sourceFile}:${event.lineNumber})`);
});
"""


def csp_violations_collect(*, context: BrowserContext, violations: list[str]) -> None:
    """Append to `violations` each console message about the Content-Security-Policy of every page
    the context opens from now on."""
    context.add_init_script(CSP_VIOLATION_REPORTER)

    def watch(page: Page) -> None:
        def console(message: ConsoleMessage) -> None:
            if "Content Security Policy" in message.text:
                violations.append(f"{page.url}: {message.text}")

        page.on("console", console)

    context.on("page", watch)


def screenshot_path(test_name: str, step: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', test_name)}-{step}.png"


def screenshot_for_docs(page: Page, name: str) -> None:
    """Also save the page as docs/screenshots/<name>.png, when DOCS_SCREENSHOTS is set."""
    if os.environ.get("DOCS_SCREENSHOTS"):
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=DOCS_SCREENSHOTS / f"{name}.png")


def watch(page: Page, errors: list[str]) -> None:
    def console(message: ConsoleMessage) -> None:
        # A browser asks for /favicon.ico by itself; that one is no error of the page.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{page.url}: {message.text} ({message.location.get('url')})")

    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on("console", console)
