// A tester's worklist (templates/web/worklist.html): the items assigned to them, by lot, with a
// form per test still due (GET /api/v1/me/items/). A value is checked as it is typed (outside the
// plausible range: an error that blocks sending; outside spec: a warning). Sending stores the
// entry on the device first (worklist.logic.js PendingStore) and posts it with its idempotency key,
// so a failed post waits and is retried (now, on `online`, every 30 s) and a retry never makes a
// second observation. After 202 the page follows the observation until it is confirmed or
// rejected.

import { apiGet, apiGetAll, apiPost } from "./api.js";
import { formatNumber } from "./format.js";
import {
  PendingStore,
  checkValue,
  newIdempotencyKey,
  observationBody,
  observationUrl,
  sameOriginPath,
  shouldRetry,
} from "./worklist.logic.js";

const POST_TIMEOUT_MS = 15_000;
const RETRY_EVERY_MS = 30_000;
const FOLLOW_FOR = 120; // status reads per observation (1 s apart, growing to 10 s: ~15 minutes)

const root = document.querySelector("[data-worklist]");
const lotsBox = root.querySelector("[data-worklist-lots]");
const loading = root.querySelector("[data-worklist-loading]");
const empty = root.querySelector("[data-worklist-empty]");
const errorBox = root.querySelector("[data-worklist-error]");
const announcer = root.querySelector("[data-worklist-announce]");
const outbox = root.querySelector("[data-outbox]");
const store = new PendingStore(window.localStorage, root.dataset.userId);

// One entry form per (item, test) on the page, and what each shows (kept across a reload of the list).
const rows = new Map();
const rowStates = new Map();
const inFlight = new Set();
const followed = new Set();

const rowKey = (item, test) => `${item}:${test}`;

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function announce(message) {
  announcer.textContent = message;
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function limitsText(test) {
  const { decimals, unit } = test;
  const parts = [`${test.replicates} ${test.replicates === 1 ? "value" : "values"}`];
  if (unit) parts.unshift(`Unit: ${unit}`);
  const span = (low, high) =>
    `${low === null ? "…" : formatNumber(low, decimals)} to ${high === null ? "…" : formatNumber(high, decimals, unit)}`;
  if (test.lsl !== null || test.usl !== null) parts.push(`Spec ${span(test.lsl, test.usl)}`);
  if (test.plausible_min !== null || test.plausible_max !== null) {
    parts.push(`Possible ${span(test.plausible_min, test.plausible_max)}`);
  }
  return parts.join(" · ");
}

// --- One test's form ---------------------------------------------------------------------------

function showFeedback(input, verdict) {
  const box = document.getElementById(input.getAttribute("aria-describedby").split(" ")[0]);
  box.textContent = verdict.message;
  box.dataset.level = verdict.level;
  if (verdict.level === "error") input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

function buildForm(item, lot, test) {
  const id = `entry-${item.id}-${test.test}`;
  const help = test.instructions ? `${id}-help` : null;
  const inputs = [];
  const values = el("div", { class: "entry__values" });
  for (let index = 0; index < test.replicates; index += 1) {
    const inputId = `${id}-v${index + 1}`;
    const name = test.replicates === 1 ? "Value" : `Value ${index + 1} of ${test.replicates}`;
    const input = el("input", {
      id: inputId,
      name: `value-${index + 1}`,
      type: "text",
      inputmode: test.kind === "variable" ? "decimal" : "numeric",
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": [`${inputId}-feedback`, help].filter(Boolean).join(" "),
    });
    input.addEventListener("input", () => showFeedback(input, checkValue(input.value, test)));
    inputs.push(input);
    values.append(
      el(
        "div",
        { class: "entry__value" },
        el("label", { for: inputId, text: test.unit ? `${name} (${test.unit})` : name }),
        input,
        el("p", { class: "entry__feedback", id: `${inputId}-feedback`, "aria-live": "polite" }),
      ),
    );
  }
  const form = el(
    "form",
    { class: "entry", novalidate: true, "data-item": item.id, "data-test": test.test, "data-state": "due" },
    el(
      "fieldset",
      {},
      el("legend", {}, el("span", { class: "entry__name", text: test.name }), el("span", { class: "entry__code", text: ` ${test.code}` })),
      el("p", { class: "entry__limits", text: limitsText(test) }),
      help ? el("p", { class: "entry__help", id: help, text: test.instructions }) : null,
      values,
      el("p", { class: "entry__error", "data-form-error": true, role: "alert", hidden: true }),
      el(
        "div",
        { class: "entry__actions" },
        el("button", { type: "submit", class: "button", text: "Send" }),
        el("p", { class: "entry__status", "data-entry-status": true, "aria-live": "polite" }),
      ),
    ),
  );
  const label = `Lot ${lot.number}, item ${item.serial}: ${test.code}`;
  const row = { form, inputs, test, item: item.id, label };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(row);
  });
  rows.set(rowKey(item.id, test.test), row);
  return form;
}

function formError(row, message) {
  const box = row.form.querySelector("[data-form-error]");
  box.textContent = message;
  box.hidden = !message;
}

// What a row shows: due (the form), sending, waiting (kept, to be sent), sent (being checked),
// confirmed, rejected (with the reasons; the form again, to send a corrected value).
function showState(key, state, message = "") {
  rowStates.set(key, { state, message });
  const row = rows.get(key);
  if (!row) return;
  row.form.dataset.state = state;
  row.form.querySelector("[data-entry-status]").textContent = message;
  const locked = ["sending", "waiting", "sent", "confirmed"].includes(state);
  for (const input of row.inputs) input.readOnly = locked;
  row.form.querySelector("button[type=submit]").hidden = locked;
}

function fillValues(row, values) {
  row.inputs.forEach((input, index) => {
    input.value = values[index] === undefined ? "" : String(values[index]);
    showFeedback(input, checkValue(input.value, row.test));
  });
}

function submit(row) {
  const state = rowStates.get(rowKey(row.item, row.test.test))?.state ?? "due";
  if (state !== "due" && state !== "rejected") return; // already on its way
  formError(row, "");
  const verdicts = row.inputs.map((input) => checkValue(input.value, row.test));
  verdicts.forEach((verdict, index) => {
    if (verdict.level === "empty") {
      const which = row.inputs.length === 1 ? "the value" : `value ${index + 1}`;
      showFeedback(row.inputs[index], { level: "error", message: `Type ${which} before sending.` });
    } else {
      showFeedback(row.inputs[index], verdict);
    }
  });
  const wrong = verdicts.findIndex((verdict) => verdict.level === "error" || verdict.level === "empty");
  if (wrong >= 0) {
    row.inputs[wrong].focus();
    announce(`${row.label}: not sent. ${row.inputs[wrong].labels[0].textContent}: fix the value first.`);
    return;
  }
  const entry = {
    key: newIdempotencyKey(),
    item: row.item,
    test: row.test.test,
    retestOf: row.test.retest_of ?? null,
    values: verdicts.map((verdict) => verdict.number),
    observedAt: new Date().toISOString(),
    label: row.label,
    decimals: row.test.decimals,
    unit: row.test.unit,
  };
  store.add(entry); // kept before it is sent: a closed tab or a crash mid-post loses nothing
  send(entry);
}

// --- Sending, waiting, retrying -----------------------------------------------------------------

function valuesText(entry) {
  return entry.values.map((value) => formatNumber(value, entry.decimals ?? 2)).join(", ") + (entry.unit ? ` ${entry.unit}` : "");
}

function waitingReason(error) {
  if (error.status === 401) return "signed out: sign in again to send it";
  if (error.code === "timeout") return "the server did not answer in time";
  if (error.status >= 500 || error.status === 429 || error.status === 408) return `the server is busy or failed: ${error.status}`;
  return "no connection to the server";
}

async function send(entry) {
  if (inFlight.has(entry.key)) return;
  inFlight.add(entry.key);
  const key = rowKey(entry.item, entry.test);
  showState(key, "sending", "Sending…");
  try {
    const answer = await apiPost(observationUrl(entry), observationBody(entry), { timeoutMs: POST_TIMEOUT_MS });
    store.remove(entry.key);
    showState(key, "sent", "Sent. Being checked…");
    announce(`${entry.label}: sent.`);
    follow(key, sameOriginPath(answer.status_url, window.location.href));
  } catch (error) {
    if (shouldRetry(error)) {
      store.update(entry.key, { lastError: error.message });
      showState(key, "waiting", `Waiting to send (${waitingReason(error)}). It is kept on this device.`);
      announce(`${entry.label}: waiting to send.`);
    } else {
      store.remove(entry.key);
      refused(entry, error);
    }
  } finally {
    inFlight.delete(entry.key);
    renderOutbox();
  }
}

// The server refused the entry (a 4xx with its reasons): show them at the fields, do not resend.
function refused(entry, error) {
  const key = rowKey(entry.item, entry.test);
  const row = rows.get(key);
  if (!row) {
    showError(`${entry.label} (${valuesText(entry)}) was not sent: ${error.message}`);
    return;
  }
  showState(key, "due", "");
  fillValues(row, entry.values);
  const fields = error.fields || {};
  const valueMessages = [].concat(fields.values ?? []);
  if (valueMessages.length) {
    showFeedback(row.inputs[0], { level: "error", message: valueMessages.join(" ") });
  }
  const other = Object.entries(fields)
    .filter(([name]) => name !== "values")
    .map(([, messages]) => [].concat(messages).join(" "));
  formError(row, ["Not sent.", ...(other.length ? other : valueMessages.length ? [] : [error.message])].join(" "));
  row.inputs[0].focus();
  announce(`${entry.label}: not sent. ${error.message}`);
}

function flush() {
  for (const entry of store.list()) send(entry);
}

function renderOutbox() {
  const waiting = store.list().filter((entry) => !inFlight.has(entry.key));
  outbox.hidden = waiting.length === 0;
  outbox.querySelector("[data-outbox-count]").textContent = `(${waiting.length})`;
  outbox.querySelector("[data-outbox-note]").textContent = store.persistent
    ? "These values are kept on this device and sent when the connection is back."
    : "This browser does not let the page keep them: leave this page open until they are sent.";
  outbox.querySelector("[data-outbox-list]").replaceChildren(
    ...waiting.map((entry) =>
      el("li", { "data-outbox-key": entry.key }, el("strong", { text: entry.label }), ` — ${valuesText(entry)}`),
    ),
  );
}

// --- Following an observation until it is checked ------------------------------------------------

async function follow(key, path, attempt = 0) {
  if (attempt === 0) {
    if (followed.has(path)) return;
    followed.add(path);
  }
  let observation = null;
  try {
    const answer = await apiGet(path);
    observation = answer.results ? answer.results[0] : answer;
  } catch {
    observation = null; // try again: the verdict is on the server either way
  }
  if (!observation || observation.status === "received") {
    if (attempt >= FOLLOW_FOR) {
      showState(key, "sent", "Sent. The check takes long: the result shows here after a reload.");
      followed.delete(path);
      return;
    }
    window.setTimeout(() => follow(key, path, attempt + 1), Math.min(1000 + attempt * 500, 10_000));
    return;
  }
  followed.delete(path);
  if (observation.status === "confirmed") {
    showState(key, "confirmed", "✓ Confirmed.");
    announce(`${rows.get(key)?.label ?? "The value"}: confirmed.`);
  } else {
    const reasons = (observation.reasons || []).map((reason) => reason.message).join("; ");
    showState(key, "rejected", `✕ Rejected: ${reasons || "no reason given"}. Correct the value and send it again.`);
    announce(`${rows.get(key)?.label ?? "The value"}: rejected. ${reasons}`);
  }
}

// --- The list ------------------------------------------------------------------------------------

function render(items) {
  rows.clear();
  const lots = new Map();
  for (const item of items) {
    if (!item.tests_due.length) continue;
    if (!lots.has(item.lot)) {
      lots.set(item.lot, { number: item.lot_number, product: item.product_code, status: item.lot_status, items: [] });
    }
    lots.get(item.lot).items.push(item);
  }
  const sections = [...lots.entries()].map(([lotId, lot]) => {
    const titleId = `lot-${lotId}`;
    return el(
      "section",
      { class: "lot", "aria-labelledby": titleId, "data-lot": lotId },
      el(
        "h2",
        { id: titleId, class: "lot__title" },
        `Lot ${lot.number}`,
        el("span", { class: "lot__meta", text: ` ${lot.product} · ${lot.status.replace("_", " ")}` }),
      ),
      el(
        "ul",
        { class: "lot__items" },
        ...lot.items.map((item) =>
          el(
            "li",
            { class: "work-item", "data-item": item.id },
            el("h3", { class: "work-item__title", text: `Item ${item.serial}` }),
            ...item.tests_due.map((test) => buildForm(item, lot, test)),
          ),
        ),
      ),
    );
  });
  lotsBox.replaceChildren(...sections);
  empty.hidden = sections.length > 0;
  for (const [key, { state, message }] of rowStates) showState(key, state, message);
  for (const entry of store.list()) {
    const row = rows.get(rowKey(entry.item, entry.test));
    if (row) fillValues(row, entry.values);
    if (!inFlight.has(entry.key)) showState(rowKey(entry.item, entry.test), "waiting", "Waiting to send. It is kept on this device.");
  }
}

// Observations sent earlier (this page or before a reload) that are not checked yet: follow them.
async function followReceived() {
  try {
    const received = await apiGetAll("/api/v1/observations/?status=received&page_size=100", { limit: 200 });
    for (const observation of received) {
      const key = rowKey(observation.item, observation.test);
      if (!rows.has(key) || (rowStates.get(key)?.state ?? "due") !== "due") continue;
      showState(key, "sent", "Sent. Being checked…");
      follow(key, `/api/v1/observations/${observation.id}/`);
    }
  } catch {
    // Only a nicety: the list itself is right without it.
  }
}

async function load() {
  loading.hidden = lotsBox.childElementCount > 0;
  try {
    const items = await apiGetAll("/api/v1/me/items/?page_size=100");
    render(items);
    showError("");
    followReceived();
  } catch (error) {
    showError(`Your work could not be loaded: ${error.message}`);
  } finally {
    loading.hidden = true;
  }
}

root.querySelector("[data-worklist-reload]").addEventListener("click", load);
root.querySelector("[data-outbox-retry]").addEventListener("click", flush);
window.addEventListener("online", flush);
window.setInterval(() => {
  if (store.list().length) flush();
}, RETRY_EVERY_MS);

renderOutbox();
load().then(flush);
