// The plant overview, live: the server renders every card (templates/web/overview.html); this
// keeps them current from ws/samples/ and, after a reconnect, renders the page again.

import { apiGet } from "./api.js";
import { Live, statusBadge } from "./live.js";

// The same words and icons as apps/web/selectors.py (STATE_LABELS, STATE_ICONS), most urgent first.
const STATES = {
  unacknowledged: { label: "Unacknowledged violation", icon: "⚠" },
  out_of_spec: { label: "Out of spec", icon: "✕" },
  offline: { label: "Data source offline", icon: "⊘" },
  no_data: { label: "No data yet", icon: "–" },
  in_control: { label: "In control", icon: "✓" },
};

const root = document.querySelector("[data-overview]");
const errorBox = document.querySelector("[data-overview-error]");
const timeFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: document.body.dataset.timeZone || undefined,
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

function numberOrNull(text) {
  return text === undefined || text === "" ? null : Number(text);
}

function cards() {
  return new Map([...root.querySelectorAll("[data-characteristic-id]")].map((card) => [Number(card.dataset.characteristicId), card]));
}

function field(card, name) {
  return card.querySelector(`[data-field="${name}"]`);
}

function format(value, decimals, unit = "") {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  const text = Number(value).toFixed(decimals);
  return unit ? `${text} ${unit}` : text;
}

function stateOf(card) {
  const d = card.dataset;
  if (d.unacknowledged === "true") return "unacknowledged";
  const value = numberOrNull(d.lastValue);
  const lsl = numberOrNull(d.lsl);
  const usl = numberOrNull(d.usl);
  if (value !== null && ((lsl !== null && value < lsl) || (usl !== null && value > usl))) return "out_of_spec";
  if (d.offline === "true") return "offline";
  if (value === null) return "no_data";
  return "in_control";
}

function showState(card) {
  const state = stateOf(card);
  card.dataset.state = state;
  const badge = field(card, "state");
  badge.className = `state state--${state}`;
  field(card, "state-icon").textContent = STATES[state].icon;
  field(card, "state-label").textContent = STATES[state].label;
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
  field(card, "last-value").textContent = format(sample.mean, Number(card.dataset.decimals), card.dataset.unit);
  const time = field(card, "last-at");
  time.dateTime = sample.created_at;
  time.textContent = timeFormat.format(new Date(sample.created_at));
  showState(card);
}

function onViolation(card, violation) {
  // A violation needs acknowledging when its rule is one of the characteristic's acknowledge rules.
  const rules = card.dataset.acknowledgeRules.split(",").filter(Boolean).map(Number);
  if (!rules.includes(violation.rule)) return;
  card.dataset.unacknowledged = "true";
  showState(card);
}

async function recheckAcknowledgements(card, id) {
  try {
    const page = await apiGet(
      `/api/v1/violations/?characteristic=${id}&acknowledged=false&requires_acknowledgement=true&page_size=1`,
    );
    card.dataset.unacknowledged = page.count > 0 ? "true" : "false";
    showState(card);
  } catch (error) {
    showError(`Could not check the violations still to acknowledge: ${error.message}`);
  }
}

function onStatistics(card, statistics) {
  if (statistics.scope !== "product") return;
  field(card, "cpk").textContent = format(statistics.cpk, 2);
}

function onMessage({ type, payload }) {
  const card = cards().get(payload.characteristic);
  if (!card) return;
  if (type === "sample") onSample(card, payload);
  else if (type === "violation") onViolation(card, payload);
  else if (type === "ack_update") recheckAcknowledgements(card, payload.characteristic);
  else if (type === "statistics_update") onStatistics(card, payload);
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
