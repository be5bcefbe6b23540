// The violations list: the server renders the filters and puts the matching API query on the page
// (templates/web/violations.html); this loads that page of GET /api/v1/violations/, draws the
// rows and, for the roles that may, acknowledges the selected ones in one batch.

import { apiGet, apiPost, ApiError } from "./api.js";
import { formatTime } from "./format.js";
import { ruleName } from "./chart.logic.js";
import { element, pageData, statusShow } from "./page.js";
import { STATUSES, acknowledgementText, batchOutcomes, batchSummary, selectable, statusOf } from "./violations.logic.js";

const BATCH_URL = "/api/v1/violations/acknowledge/";

const root = document.querySelector("[data-violations]");
const timeZone = document.body.dataset.timeZone || "UTC";
const canAcknowledge = root.dataset.canAcknowledge === "true";
const pageSize = Number(root.dataset.pageSize) || 50;
const characteristics = pageData("violation-characteristics");
const userNames = pageData("violation-users");
const ruleNames = pageData("rule-names");
const statusBox = root.querySelector("[data-list-status]");
const table = root.querySelector("[data-list-table]");
const body = root.querySelector("[data-rows]");
const summary = root.querySelector("[data-summary]");
const pager = root.querySelector("[data-pager]");
const form = root.querySelector("[data-acknowledge-form]");
const selectAll = root.querySelector("[data-select-all]");

const rows = new Map(); // violation id -> {violation, row}
const reasons = {}; // code -> label
const lots = {}; // lot id -> number

function showStatus(message, options) {
  statusShow(statusBox, message, options);
}

function characteristicName(id) {
  const c = characteristics[id];
  return c ? `${c.product} / ${c.test}` : `Characteristic ${id}`;
}

function statusCell(violation) {
  const status = statusOf(violation);
  const cell = element("td", { attrs: { "data-field": "status" } });
  cell.append(
    element("span", { className: `state state--${status}`, attrs: { "data-field": "status-label" } }, [
      element("span", { text: STATUSES[status].icon, attrs: { "aria-hidden": "true" } }),
      ` ${STATUSES[status].label}`,
    ]),
  );
  if (status === "acknowledged") {
    cell.append(element("p", { className: "cell-note", text: acknowledgementText(violation, { timeZone, userNames, reasons }) }));
    if (violation.acknowledgement_comment) {
      cell.append(element("p", { className: "cell-note", text: `Comment: ${violation.acknowledgement_comment}` }));
    }
    if (violation.corrective_action) {
      cell.append(element("p", { className: "cell-note", text: `Corrective action: ${violation.corrective_action}` }));
    }
  }
  return cell;
}

function pointText(violation) {
  const points = violation.points ?? [];
  const pattern = points.length > 1 ? ` (pattern #${points[0]}–#${points[points.length - 1]}, ${points.length} points)` : "";
  return `#${violation.sequence}${pattern}`;
}

function lotText(lotId) {
  return lots[lotId] ? `Lot ${lots[lotId]}` : `Lot ${lotId}`;
}

function rowFor(violation) {
  const row = element("tr", { attrs: { "data-violation-id": violation.id, "data-status": statusOf(violation) } });
  const name = characteristicName(violation.characteristic);
  if (canAcknowledge) {
    const box = element("input", {
      attrs: { type: "checkbox", "data-select": violation.id, "aria-label": `Select violation ${violation.id}: rule ${violation.rule} on ${name}, point #${violation.sequence}` },
    });
    box.disabled = !selectable(violation);
    row.append(element("td", { className: "data-table__select" }, [box]));
  }
  const c = characteristics[violation.characteristic];
  const link = element("a", { text: name, attrs: { href: `/charts/${violation.characteristic}/` } });
  row.append(
    element("td", {}, [element("time", { text: formatTime(violation.created_at, timeZone), attrs: { datetime: violation.created_at } })]),
    element("td", {}, [link, ...(c ? [element("span", { className: "cell-note", text: c.name })] : [])]),
    element("td", {}, [
      element("strong", { text: `Rule ${violation.rule}` }),
      element("span", {
        className: "cell-note",
        text: `${ruleName(ruleNames, violation.rule)}${violation.chart === "dispersion" ? " (dispersion chart)" : ""}`,
      }),
    ]),
    element("td", {}, [
      element("span", { className: `severity severity--${violation.severity}` }, [
        element("span", { text: violation.severity === "critical" ? "✕" : "!", attrs: { "aria-hidden": "true" } }),
        violation.severity === "critical" ? " Critical" : " Warning",
      ]),
    ]),
    element("td", {}, [
      element("span", { text: pointText(violation) }),
      element("span", { className: "cell-note", text: lotText(violation.lot), attrs: { "data-lot": violation.lot } }),
    ]),
    statusCell(violation),
  );
  return row;
}

function pageLink(page, label, rel) {
  const params = new URLSearchParams(window.location.search);
  if (page > 1) params.set("page", page);
  else params.delete("page");
  const query = params.toString();
  return element("a", { className: "button button--quiet", text: label, attrs: { href: `${window.location.pathname}${query ? `?${query}` : ""}`, rel } });
}

function showPager(page, count) {
  const pages = Math.max(1, Math.ceil(count / pageSize));
  pager.replaceChildren();
  if (pages <= 1) {
    pager.hidden = true;
    return;
  }
  if (page > 1) pager.append(pageLink(page - 1, "← Previous", "prev"));
  pager.append(element("span", { className: "pager__position", text: `Page ${page} of ${pages}` }));
  if (page < pages) pager.append(pageLink(page + 1, "Next →", "next"));
  pager.hidden = false;
}

function emptyState() {
  const filtered = root.dataset.filtered === "true";
  const box = element("div", { className: "empty" });
  if (filtered) {
    box.append(element("p", { text: "No violations match these filters." }), element("p", {}, [element("a", { text: "Clear the filters", attrs: { href: window.location.pathname } })]));
  } else {
    box.append(element("p", { text: "No violations yet: no chart you can read has broken a rule." }));
  }
  return box;
}

async function loadLots(violations) {
  const ids = [...new Set(violations.map((v) => v.lot))].filter((id) => !(id in lots));
  const found = await Promise.allSettled(ids.map((id) => apiGet(`/api/v1/lots/${id}/`)));
  for (const result of found) if (result.status === "fulfilled") lots[result.value.id] = result.value.number;
  for (const cell of body.querySelectorAll("[data-lot]")) cell.textContent = lotText(Number(cell.dataset.lot));
}

// The reason codes: labels for the acknowledged rows, and the batch form's choices.
async function loadReasons() {
  const select = form?.querySelector("[data-reason]");
  try {
    const list = await apiGet("/api/v1/acknowledgement-reasons/");
    for (const reason of list) reasons[reason.code] = reason.label;
    if (!select) return;
    select.replaceChildren(
      element("option", { text: "Choose a reason…", attrs: { value: "" } }),
      ...list.map((reason) => element("option", { text: reason.label, attrs: { value: reason.code } })),
    );
  } catch (error) {
    if (!select) return; // the rows show the codes instead
    select.replaceChildren(element("option", { text: "The reasons could not be loaded", attrs: { value: "" } }));
    showResult(`The reason codes could not be loaded: ${error.message} Reload the page to try again.`, { error: true });
  }
}

async function loadList() {
  const params = new URLSearchParams(root.dataset.apiQuery);
  const page = Number(params.get("page")) || 1;
  let data;
  try {
    data = await apiGet(`/api/v1/violations/?${params}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && page > 1) {
      showStatus(`There is no page ${page} of this list (it may have become shorter).`, { error: true });
      statusBox.append(element("p", {}, [pageLink(1, "Go to the first page", "first")]));
    } else {
      showStatus(`The violations could not be loaded: ${error.message}`, { error: true });
    }
    summary.textContent = "Violations";
    return;
  }
  const first = (page - 1) * pageSize + 1;
  summary.textContent = data.count
    ? `${data.count} ${data.count === 1 ? "violation" : "violations"}${data.count > data.results.length ? `, ${first}–${first + data.results.length - 1} shown` : ""}, newest first`
    : "No violations";
  rows.clear();
  body.replaceChildren();
  for (const violation of data.results) {
    const row = rowFor(violation);
    rows.set(violation.id, { violation, row });
    body.append(row);
  }
  if (data.results.length) {
    showStatus("");
    table.hidden = false;
  } else {
    statusBox.hidden = true;
    table.hidden = true;
    statusBox.after(emptyState());
  }
  showPager(page, data.count);
  updateSelection();
  loadLots(data.results);
}

// --- Batch acknowledgement -------------------------------------------------------------------

function boxes() {
  return [...body.querySelectorAll("input[data-select]")];
}

function selectedIds() {
  return boxes().filter((box) => box.checked && !box.disabled).map((box) => Number(box.dataset.select));
}

function updateSelection() {
  if (!canAcknowledge) return;
  const enabled = boxes().filter((box) => !box.disabled);
  const chosen = enabled.filter((box) => box.checked).length;
  selectAll.disabled = enabled.length === 0;
  selectAll.checked = enabled.length > 0 && chosen === enabled.length;
  selectAll.indeterminate = chosen > 0 && chosen < enabled.length;
  const count = form.querySelector("[data-selected-count]");
  count.textContent = chosen
    ? `${chosen} ${chosen === 1 ? "violation" : "violations"} selected.`
    : enabled.length
      ? "Select the violations to acknowledge in the list below."
      : "Nothing on this page awaits acknowledgement.";
  const submit = form.querySelector("[data-acknowledge-submit]");
  submit.disabled = chosen === 0 || form.dataset.busy === "true";
  submit.textContent = chosen ? `Acknowledge ${chosen} ${chosen === 1 ? "violation" : "violations"}` : "Acknowledge";
}

function showResult(message, { error = false, warn = false } = {}) {
  const box = form.querySelector("[data-acknowledge-result]");
  box.textContent = message;
  box.className = `notice ${error ? "notice--error" : warn ? "notice--warn" : "notice--ok"}`;
  box.hidden = !message;
}

function showFieldErrors(fields = {}) {
  for (const slot of form.querySelectorAll("[data-field-error]")) {
    const messages = fields[slot.dataset.fieldError];
    slot.textContent = messages ? [].concat(messages).join(" ") : "";
    slot.hidden = !messages;
    const input = form.elements[slot.dataset.fieldError];
    if (input) input.setAttribute("aria-invalid", messages ? "true" : "false");
  }
}

// The batch endpoint acknowledges all or none: when someone acknowledged some of them meanwhile
// (409), find which from each one's current state, and acknowledge the rest.
async function acknowledgeBatch(request) {
  try {
    const result = await apiPost(BATCH_URL, request);
    return { acknowledged: result.violations, before: [] };
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 409) throw error;
  }
  const current = await Promise.all(request.ids.map((id) => apiGet(`/api/v1/violations/${id}/`)));
  const before = current.filter((v) => v.acknowledged_at);
  const rest = current.filter((v) => !v.acknowledged_at).map((v) => v.id);
  const acknowledged = rest.length ? (await apiPost(BATCH_URL, { ...request, ids: rest })).violations : [];
  return { acknowledged, before };
}

function showOutcome(violation, outcome) {
  const entry = rows.get(violation.id);
  if (!entry) return;
  const fresh = rowFor(violation);
  fresh.dataset.outcome = outcome.outcome;
  fresh.lastElementChild.append(element("p", { className: `outcome outcome--${outcome.outcome}`, text: outcome.text, attrs: { "data-field": "outcome" } }));
  entry.row.replaceWith(fresh);
  rows.set(violation.id, { violation, row: fresh });
}

async function submit(event) {
  event.preventDefault();
  const ids = selectedIds();
  const reason = form.elements.reason.value;
  showFieldErrors({});
  if (!ids.length) return;
  if (!reason) {
    showFieldErrors({ reason: ["Choose a reason for the acknowledgement."] });
    form.elements.reason.focus();
    return;
  }
  const request = {
    ids, reason, comment: form.elements.comment.value.trim(), corrective_action: form.elements.corrective_action.value.trim(),
  };
  form.dataset.busy = "true";
  form.setAttribute("aria-busy", "true");
  showResult(`Acknowledging ${ids.length} ${ids.length === 1 ? "violation" : "violations"}…`);
  updateSelection();
  try {
    const { acknowledged, before } = await acknowledgeBatch(request);
    const outcomes = batchOutcomes(acknowledged, before, { timeZone, userNames, reasons });
    for (const violation of [...acknowledged, ...before]) showOutcome(violation, outcomes[violation.id]);
    showResult(batchSummary(acknowledged, before), { warn: before.length > 0 });
    form.elements.comment.value = "";
    form.elements.corrective_action.value = "";
  } catch (error) {
    showFieldErrors(error.fields);
    const forbidden = error instanceof ApiError && error.status === 403;
    showResult(
      forbidden ? "Your role may not acknowledge violations." : `Nothing was acknowledged: ${error.message}`,
      { error: true },
    );
  } finally {
    form.dataset.busy = "false";
    form.removeAttribute("aria-busy");
    updateSelection();
  }
}

if (canAcknowledge) {
  body.addEventListener("change", (event) => {
    if (event.target.matches("input[data-select]")) updateSelection();
  });
  selectAll.addEventListener("change", () => {
    for (const box of boxes()) if (!box.disabled) box.checked = selectAll.checked;
    updateSelection();
  });
  form.addEventListener("submit", submit);
}

await loadReasons();
await loadList();
