// One QA run, live (templates/web/qa_run.html). Every 2 s, as in seed 001, it asks
// GET /api/v1/qa/runs/<plan>/events/?after=<last sequence> and appends what is new; it refreshes the
// run's figures and the per-operation table when events came, and once the run has ended (exactly
// one terminal event) it loads the failures with their curl reproducers and stops polling.

import { apiGet, apiGetAll, apiPost } from "./api.js";
import { formatTime } from "./format.js";
import { eventText, executedCount, mergeEvents, statusLabel, verdictLabel } from "./qa_run.logic.js";
import { element } from "./page.js";

const POLL_MS = 2000;
const root = document.querySelector("[data-qa-run]");
const plan = root.dataset.planId;
const base = `/api/v1/qa/runs/${plan}/`;
const timeZone = document.body.dataset.timeZone || "UTC";
const list = root.querySelector("[data-events]");
const eventsStatus = root.querySelector("[data-events-status]");
const statusBadge = root.querySelector("[data-run-status]");
const verdictBadge = root.querySelector("[data-run-verdict]");
const errorBox = root.querySelector("[data-run-error]");
const cancelButton = root.querySelector("[data-cancel]");
const operationsTable = root.querySelector("[data-operations]");
const operationsStatus = root.querySelector("[data-operations-status]");
const failuresList = root.querySelector("[data-failures]");
const failuresStatus = root.querySelector("[data-failures-status]");

let events = [];
let ended = false;

function showError(message) {
  errorBox.replaceChildren(element("p", { text: message }));
  errorBox.hidden = !message;
}

function eventItem(event) {
  const { tone, text } = eventText(event);
  const mark = { ok: "✓", fail: "✗", info: "•" }[tone];
  return element("li", { className: `qa-event qa-event--${tone}`, attrs: { "data-event": event.type, "data-sequence": String(event.sequence) } }, [
    element("span", { className: "qa-event__mark", text: mark, attrs: { "aria-hidden": "true" } }),
    element("span", { className: "qa-event__seq", text: `#${event.sequence}` }),
    element("time", { className: "qa-event__time", text: formatTime(event.created_at, timeZone).slice(11), attrs: { datetime: event.created_at } }),
    element("span", { className: "qa-event__text", text }),
  ]);
}

function showRun(run) {
  statusBadge.textContent = statusLabel(run.status);
  statusBadge.className = `qa-status qa-status--${run.status.toLowerCase()}`;
  if (run.verdict) {
    verdictBadge.textContent = verdictLabel(run.verdict);
    verdictBadge.className = `qa-verdict qa-verdict--${run.verdict.toLowerCase()}`;
    verdictBadge.hidden = false;
  }
  if (run.error) showError(run.error);
  for (const node of root.querySelectorAll("[data-figure]")) {
    const name = node.dataset.figure;
    if (name in run) node.textContent = String(run[name]);
  }
  if (cancelButton) cancelButton.hidden = run.finished || run.cancel_requested;
}

async function refreshOperations() {
  const rows = await apiGet(`${base}operations/`);
  if (!rows.length) return;
  const body = operationsTable.querySelector("tbody");
  body.replaceChildren(
    ...rows.map((row) =>
      element("tr", { attrs: { "data-operation": row.operation_id } }, [
        element("th", { attrs: { scope: "row" } }, [
          element("code", { text: `${row.method} ${row.path}` }),
          element("span", { className: "cell-note", text: row.operation_id }),
        ]),
        element("td", { text: String(row.passed), attrs: { "data-cell": "passed" } }),
        element("td", { className: row.failed ? "qa-cell--fail" : "", text: String(row.failed), attrs: { "data-cell": "failed" } }),
        element("td", { text: String(row.skipped ?? 0), attrs: { "data-cell": "skipped" } }),
        element("td", { text: String(row.pending), attrs: { "data-cell": "pending" } }),
      ]),
    ),
  );
  operationsTable.hidden = false;
  operationsStatus.hidden = true;
}

function failureItem(scenario) {
  const failedSteps = scenario.steps_run.filter((step) => !step.passed);
  return element("li", { className: "qa-failure", attrs: { "data-failure": String(scenario.id) } }, [
    element("h3", { text: scenario.name }),
    ...failedSteps.map((step) =>
      element("div", { className: "qa-failure__step" }, [
        element("p", {
          text: `Step ${step.index + 1}: ${step.request.method ?? ""} ${step.request.url ?? ""} → ${step.response_status ?? "no response"}${step.error ? ` (${step.error})` : ""}`,
        }),
        element(
          "ul",
          { className: "qa-failure__checks" },
          step.checks.filter((check) => !check.passed).map((check) => element("li", { text: `${check.name}: ${check.message ?? ""}` })),
        ),
        element("pre", { className: "qa-curl", attrs: { "data-curl": "", tabindex: "0", "aria-label": "curl command that repeats the request" } }, [element("code", { text: step.curl })]),
      ]),
    ),
  ]);
}

async function loadFailures() {
  const failures = await apiGetAll(`${base}scenarios/?passed=false&page_size=200`);
  failuresList.replaceChildren(...failures.map(failureItem));
  failuresStatus.textContent = failures.length ? `${failures.length} failed scenario${failures.length === 1 ? "" : "s"}.` : "No scenario failed.";
  failuresStatus.className = failures.length ? "list-summary" : "empty";
}

async function poll() {
  const after = events.length ? events[events.length - 1].sequence : 0;
  const answer = await apiGet(`${base}events/?after=${after}`);
  const merged = mergeEvents(events, answer.events);
  events = merged.all;
  if (merged.fresh.length) {
    const fragment = document.createDocumentFragment();
    merged.fresh.forEach((event) => fragment.append(eventItem(event)));
    list.append(fragment);
    root.querySelector('[data-figure="executed"]').textContent = String(executedCount(events));
    showRun(await apiGet(base));
    await refreshOperations();
  }
  eventsStatus.textContent = merged.ended ? `The run has ended: ${events.length} events.` : `${events.length} events so far; checking every 2 seconds.`;
  eventsStatus.className = "list-summary";
  if (merged.ended && !ended) {
    ended = true;
    await loadFailures();
  }
  return merged.ended;
}

async function loop() {
  try {
    if (await poll()) return;
  } catch (error) {
    eventsStatus.textContent = `Could not check for new events (${error.message}); trying again.`;
    eventsStatus.className = "notice notice--error";
  }
  setTimeout(loop, POLL_MS);
}

cancelButton?.addEventListener("click", async () => {
  cancelButton.disabled = true;
  try {
    const run = await apiPost(`${base}cancel/`);
    showRun(run);
  } catch (error) {
    showError(`The run could not be cancelled: ${error.message}`);
    cancelButton.disabled = false;
  }
});

loop();
