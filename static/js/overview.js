// The plant overview, live: the server renders every card (templates/web/overview.html); this
// keeps them current from ws/samples/ and, after a reconnect, renders the page again.

import { apiGet } from "./api.js";
import { Live, statusBadge } from "./live.js";
import { formatNumber, hourMinute, plantTime } from "./format.js";
import { applyHealth, applySchedule, field, numberOrNull, showCardState } from "./page.js";


const root = document.querySelector("[data-overview]");
const errorBox = document.querySelector("[data-overview-error]");

function cards() {
  return new Map([...root.querySelectorAll("[data-characteristic-id]")].map((card) => [Number(card.dataset.characteristicId), card]));
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function onSample(card, sample) {
  const last = numberOrNull(card.dataset.lastSequence);
  if (last !== null && sample.sequence <= last) return; // already shown (a catch-up overlap)
  card.dataset.lastSequence = sample.sequence;
  card.dataset.lastValue = sample.mean;
  field(card, "last-value").textContent = formatNumber(sample.mean, Number(card.dataset.decimals), card.dataset.unit);
  const time = field(card, "last-at");
  time.dateTime = sample.created_at;
  time.textContent = plantTime.format(new Date(sample.created_at));
  showCardState(card);
}

function onViolation(card, violation) {
  // A violation needs acknowledging when its rule is one of the characteristic's acknowledge rules.
  const rules = card.dataset.acknowledgeRules.split(",").filter(Boolean).map(Number);
  if (!rules.includes(violation.rule)) return;
  card.dataset.unacknowledged = "true";
  showCardState(card);
}

async function recheckAcknowledgements(card, id) {
  try {
    const page = await apiGet(
      `/api/v1/violations/?characteristic=${id}&acknowledged=false&requires_acknowledgement=true&page_size=1`,
    );
    card.dataset.unacknowledged = page.count > 0 ? "true" : "false";
    showCardState(card);
  } catch (error) {
    showError(`Could not check the violations still to acknowledge: ${error.message}`);
  }
}

function onStatistics(card, statistics) {
  if (statistics.scope !== "product") return;
  field(card, "cpk").textContent = formatNumber(statistics.cpk, 2);
}

function onMessage({ type, payload }) {
  const card = cards().get(payload.characteristic);
  if (!card) return;
  if (type === "sample") onSample(card, payload);
  else if (type === "violation") onViolation(card, payload);
  else if (type === "ack_update" || type === "event_ack") recheckAcknowledgements(card, payload.characteristic);
  else if (type === "statistics_update") onStatistics(card, payload);
  else if (type === "limits_update") {
    card.dataset.limits = "true";
    showCardState(card);
  } else if (type === "health_update") {
    applyHealth(card, payload);
    showCardState(card);
  } else if (type === "schedule_update") {
    applySchedule(card, payload, hourMinute);
    const due = field(card, "due");
    if (due) due.hidden = true; // taken, closed or overdue: no longer only due
    showCardState(card);
  }
}

// After a reconnect the events of the gap are gone: render the overview again from the server.
async function refresh() {
  try {
    const response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.querySelector("[data-overview]");
    if (!fresh) throw new Error("the page came back without the overview (signed out?)");
    root.replaceChildren(...fresh.childNodes);
    live.subscribe([...cards().keys()]);
    showError("");
  } catch (error) {
    showError(`The overview may be out of date: ${error.message}. Reload the page.`);
  }
}

const live = new Live({
  onMessage,
  onStatus: statusBadge(document.querySelector("[data-live-status]")),
  onReconnect: refresh,
  onError: (message) => showError(`Live updates: ${message}`),
});
live.subscribe([...cards().keys()]);
