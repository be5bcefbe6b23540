"""Must show: a quality specialist starts a QA run from the QA runs page; the run page shows its
events as they come and stays responsive while they stream (frame gaps and a click's time to the
next frame are measured and printed); at the end it shows the verdict, one row per operation and
each failure with its curl reproducer.

A real daphne serves the pages and the API, a real Celery worker runs the pipeline, and the target
is bench/qa_run.py's local server (in a thread), a little slowed so the run lasts while we watch."""

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
from playwright.sync_api import BrowserContext, expect

from apps.qa_runs.models import QaPackageRun
from apps.qa_runs.services import qa_package_create
from bench.qa_run import Target, spec
from tests.support.browser import signed_in
from tests.support.daphne import Daphne
from tests.support.workers import CeleryWorkers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

OPERATIONS = 40

# Frame gaps (requestAnimationFrame) for `ms`, and the time from a click to the frame after it.
MEASURE = """async (ms) => {
  const gaps = [];
  let last = performance.now();
  const end = last + ms;
  await new Promise((done) => {
    const frame = (now) => {
      gaps.push(now - last);
      last = now;
      now < end ? requestAnimationFrame(frame) : done();
    };
    requestAnimationFrame(frame);
  });
  const clicks = [];
  for (let i = 0; i < 5; i += 1) {
    const heading = document.querySelector("#events-title");
    const clicked = await new Promise((done) => {
      const onClick = () => {
        const t0 = performance.now();
        requestAnimationFrame(() => done(performance.now() - t0));
      };
      heading.addEventListener("click", onClick, { once: true });
      const t = performance.now();
      heading.click();
      clicks.push(performance.now() - t);
    });
    clicks.push(clicked);
    await new Promise((r) => setTimeout(r, 150));
  }
  gaps.sort((a, b) => a - b);
  return {
    frames: gaps.length, p50: gaps[Math.floor(gaps.length / 2)], p95: gaps[Math.floor(gaps.length * 0.95)],
    max: gaps[gaps.length - 1], click_to_frame_max: Math.max(...clicks),
  };
}"""


class SlowTarget(Target):
    def do_GET(self) -> None:
        time.sleep(0.08)
        super().do_GET()

    def do_POST(self) -> None:
        time.sleep(0.08)
        super().do_POST()


@pytest.fixture(autouse=True)
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the server and worker start: they read QA_TARGET_ALLOWLIST from the environment."""
    monkeypatch.setenv("QA_TARGET_ALLOWLIST", "127.0.0.0/8")


@pytest.fixture
def target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowTarget)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(240)
def test_a_run_started_from_the_page_streams_its_events_and_ends_with_its_results(
    quality_specialist, target: str, server: Daphne, worker: CeleryWorkers, context: BrowserContext,
    screenshot, page_errors,
):  # fmt: skip
    package = qa_package_create(
        name="bench target", target_base_url=target, spec_text=json.dumps(spec(OPERATIONS)), concurrency=2
    )
    page = signed_in(context, quality_specialist, path="/qa/")
    page.get_by_role("button", name="Start a run").click()
    expect(page).to_have_url(re.compile(r"/qa/runs/[0-9a-f-]{36}/$"))
    run = QaPackageRun.objects.get(package=package)
    expect(page.locator('[data-event="EXECUTION_STARTED"]')).to_have_count(1, timeout=30_000)
    shown_before = page.locator("[data-event]").count()
    screenshot(page, "streaming")
    timings = page.evaluate(MEASURE, 3000)
    print(f"\nrun page while events stream: {json.dumps(timings)}")
    shown_after = page.locator("[data-event]").count()
    assert shown_after > shown_before, "no new event appeared while the run went on"
    assert timings["p95"] < 250, timings
    assert timings["click_to_frame_max"] < 250, timings

    expect(page.locator('[data-event="COMPLETE"]')).to_have_count(1, timeout=120_000)
    run.refresh_from_db()
    assert run.status == "COMPLETE"
    expect(page.locator("[data-run-status]")).to_have_text("Complete")
    expect(page.locator("[data-run-verdict]")).to_have_text(re.compile(r"^Pass|^Fail"))
    events = page.locator("[data-event]")
    expect(events).to_have_count(run.last_sequence)
    expect(page.locator("[data-operations] tbody tr")).to_have_count(OPERATIONS)
    failed = run.scenarios.filter(passed=False).count()
    expect(page.locator("[data-failure]")).to_have_count(failed)
    if failed:
        expect(page.locator("[data-curl]").first).to_contain_text("curl")
    screenshot(page, "complete")
    assert page_errors == []


@pytest.mark.timeout(120)
def test_starting_a_run_that_may_write_asks_first_naming_the_target(
    quality_specialist, target: str, server: Daphne, worker: CeleryWorkers, context: BrowserContext,
    screenshot, page_errors,
):  # fmt: skip
    """A package that allows unsafe methods: Start opens a dialog naming the target; Cancel starts
    nothing; "Start the run anyway" starts it (the API requires that confirmation)."""
    package = qa_package_create(
        name="writes", target_base_url=target, spec_text=json.dumps(spec(2)), allow_unsafe_methods=True
    )
    page = context.new_page()  # on a slow network: the page's text is there well before its script
    context.new_cdp_session(page).send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 700, "downloadThroughput": -1, "uploadThroughput": -1})  # fmt: skip
    signed_in(context, quality_specialist, path="/qa/", page=page)
    expect(page.locator(f'[data-package-id="{package.pk}"] [data-methods]')).to_contain_text("writes too")
    page.get_by_role("button", name="Start a run").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(target)
    screenshot(page, "unsafe-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert not QaPackageRun.objects.filter(package=package).exists()

    page.get_by_role("button", name="Start a run").click()
    page.get_by_role("dialog").get_by_role("button", name="Start the run anyway").click()
    expect(page).to_have_url(re.compile(r"/qa/runs/[0-9a-f-]{36}/$"))
    expect(page.locator('[data-event="COMPLETE"]')).to_have_count(1, timeout=60_000)
    run = QaPackageRun.objects.get(package=package)
    assert run.scenarios_skipped == 0  # its writes were sent: they were confirmed
    assert page_errors == []
