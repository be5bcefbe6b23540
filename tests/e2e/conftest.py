"""Fixtures of the browser tests: a live server (daphne) and a worker on the test database, Chromium,
a context and page per test, screenshots.

    def test_...(server, context, screenshot):
        page = signed_in(context, user)
        screenshot(page, "overview")

Tests that use `server` must be transactional (the server is another process: it sees only
committed rows): mark them `django_db(transaction=True, serialized_rollback=True)`.
"""

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.browser import (
    ASYNC_CHECKS_ON,
    CHROMIUM,
    CHROMIUM_ARGS,
    CHROMIUM_MISSING,
    TIMEOUT_MS,
    VIEWPORT,
    async_checks_on,
    csp_violations_collect,
    playwright_beside_the_orm,
    screenshot_path,
    watch,
)
from tests.support.daphne import Daphne
from tests.support.workers import CeleryWorkers

Screenshot = Callable[[Page, str], Path]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so the screenshot fixture knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for every test of this package (started once: ~1 s)."""
    if not CHROMIUM.exists():
        pytest.skip(CHROMIUM_MISSING)
    expect.set_options(timeout=TIMEOUT_MS)
    with playwright_beside_the_orm() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Daphne]:
    """daphne serving the project (pages, API, WebSockets) on the test database, over plain HTTP."""
    marker = request.node.get_closest_marker("django_db")
    if not (marker and marker.kwargs.get("transaction")):
        pytest.fail("a test with a live server must be django_db(transaction=True, serialized_rollback=True)")
    # Plain HTTP on 127.0.0.1: cookies marked Secure would not be sent back.
    insecure_cookies = {"SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0"}
    with Daphne(log_dir=tmp_path, **insecure_cookies, **ASYNC_CHECKS_ON) as web:
        yield web


@pytest.fixture
def worker(server: Daphne, tmp_path: Path) -> Iterator[CeleryWorkers]:
    """One real Celery worker (confirms observations, forms samples, publishes the live messages)."""
    with async_checks_on():
        workers = CeleryWorkers(count=1, log_dir=tmp_path)
        workers.start()
    try:
        yield workers
    finally:
        workers.stop()


@pytest.fixture
def context(browser: Browser, server: Daphne) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) with the server as base URL. A test whose pages break
    the Content-Security-Policy (openspc/settings.py) fails, whatever it asserts itself."""
    context = browser.new_context(base_url=server.origin, viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    violations: list[str] = []
    csp_violations_collect(context=context, violations=violations)
    yield context
    context.close()
    if violations:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(dict.fromkeys(violations)))


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught JavaScript errors and console errors of the pages `watched`; a test asserts on them."""
    return []


@pytest.fixture
def screenshot(
    request: pytest.FixtureRequest, context: BrowserContext, page_errors: list[str]
) -> Iterator[Screenshot]:
    """screenshot(page, step) saves var/screenshots/<test>-<step>.png. When the test fails, every
    open page of the context is saved too (<test>-failure-<n>.png), and the JavaScript errors seen
    are printed."""
    name = request.node.name

    def take(page: Page, step: str) -> Path:
        path = screenshot_path(name, step)
        page.screenshot(path=path)
        return path

    context.on("page", lambda page: watch(page, page_errors))
    yield take
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for index, page in enumerate(context.pages):
            print(f"screenshot of the failure: {take(page, f'failure-{index}')} ({page.url})")
        if page_errors:
            print("JavaScript errors:\n" + "\n".join(page_errors))


@pytest.fixture
def page(context: BrowserContext, screenshot: Screenshot) -> Page:
    """A blank page of the context (watched for JavaScript errors)."""
    return context.new_page()
