// What the page scripts share: building elements, a status box, the fields of a server-rendered
// card, and a characteristic's state at a glance (the overview's cards and the wall screen's
// tiles; the same words and icons as apps/web/overview.py STATE_LABELS and STATE_ICONS, most
// urgent first). Numbers and times are written by format.js.

export const STATES = {
  unacknowledged: { label: "Unacknowledged violation", icon: "⚠" },
  rejecting: { label: "Values rejected", icon: "⛔" },
  out_of_spec: { label: "Out of spec", icon: "✕" },
  offline: { label: "Data source offline", icon: "⊘" },
  stale: { label: "Not receiving data", icon: "⌛" },
  overdue: { label: "Sample overdue", icon: "⏰" },
  no_data: { label: "No data yet", icon: "–" },
  no_limits: { label: "No limits yet", icon: "?" },
  in_control: { label: "In control", icon: "✓" },
};

export function numberOrNull(text) {
  return text === undefined || text === null || text === "" ? null : Number(text);
}

/** The state of a card from its data attributes (unacknowledged, rejecting, lastValue, lsl, usl,
 * offline, overdue). `rejecting` is the data health summary ("38 % rejected: …") while values are
 * rejected; `overdue` says since when a scheduled sample is overdue ("Sample overdue since 10:15"). */
export function cardState(d) {
  if (d.unacknowledged === "true") return "unacknowledged";
  if (d.rejecting) return "rejecting";
  const value = numberOrNull(d.lastValue);
  const lsl = numberOrNull(d.lsl);
  const usl = numberOrNull(d.usl);
  if (value !== null && ((lsl !== null && value < lsl) || (usl !== null && value > usl))) return "out_of_spec";
  if (d.offline === "true") return "offline";
  if (d.stale) return "stale";
  if (d.overdue) return "overdue";
  if (value === null) return "no_data";
  if (d.limits === "false") return "no_limits"; // nothing to be in control of yet
  return "in_control";
}

/** A `health_update` (data_health.changed): the card shows the rejection, the silence ("Not
 * receiving data since 10:42") or the dead source, or stops showing them. */
export function applyHealth(card, health) {
  card.dataset.rejecting = health.state === "rejecting" ? health.summary : "";
  card.dataset.stale = health.state === "stale" ? health.summary : "";
  if (health.state === "offline") card.dataset.offline = "true";
  else if (health.state === "ok") card.dataset.offline = "false"; // the check found its source back
}

/** A `schedule_update` (sample.overdue, .taken, .missed): the card shows the overdue sample, or
 * stops showing it once it is taken or closed. */
export function applySchedule(card, sample, timeFormat) {
  const since = timeFormat.format(new Date(sample.overdue_at));
  card.dataset.overdue = sample.state === "overdue" ? `Sample overdue since ${since}` : "";
}

/** The `[data-field=name]` inside a server-rendered card or tile. */
export function field(container, name) {
  return container.querySelector(`[data-field="${name}"]`);
}

/** Work out and show a card's state: data-state, the badge's class, its icon and words. */
export function showCardState(card, badgeClass = "state") {
  const state = cardState(card.dataset);
  card.dataset.state = state;
  field(card, "state").className = `${badgeClass} state--${state}`;
  field(card, "state-icon").textContent = STATES[state].icon;
  const said = { rejecting: card.dataset.rejecting, stale: card.dataset.stale, overdue: card.dataset.overdue };
  field(card, "state-label").textContent = said[state] || STATES[state].label;
  return state;
}

/** The data the server put into the page with `json_script` (a `<script type="application/json">`
 * block: not executed, so the Content-Security-Policy allows it). */
export function pageData(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

export function element(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs ?? {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** A list page's status box: a loading message, an error (`error`), or hidden (no message). */
export function statusShow(box, message, { error = false } = {}) {
  box.replaceChildren(element("p", { text: message }));
  box.className = error ? "notice notice--error" : "loading";
  box.hidden = !message;
}

/** <div><dt>label</dt><dd>value</dd></div> per [label, value]: the rows of a <dl>. */
export function definitionRows(rows) {
  return rows.map(([label, value]) => element("div", {}, [element("dt", { text: label }), element("dd", { text: value })]));
}
