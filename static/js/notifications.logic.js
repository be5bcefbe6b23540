// What the inbox shows of a notification, without the DOM (tested in Node:
// tests/web/js/notifications.logic.test.mjs). A notification is the API's (GET /api/v1/notifications/)
// or the WebSocket's `notification` payload: {id, event, title, message, link, data, read,
// created_at}; `data` is the event's, with the characteristic and lot ids where it has them.

// The event a notification came from, in words and an icon (never colour alone), and its tone
// for the CSS: alarm, ok, info.
const KINDS = {
  "violation.created": { label: "Violation", icon: "⚠", tone: "alarm" },
  "violation.acknowledged": { label: "Acknowledged", icon: "✓", tone: "ok" },
  "violation_event.updated": { label: "Violation", icon: "⚠", tone: "alarm" },
  "violation_event.acknowledged": { label: "Acknowledged", icon: "✓", tone: "ok" },
  "alarms.folded": { label: "More alarms", icon: "⋯", tone: "alarm" },
  "data.rejected": { label: "Data rejected", icon: "⛔", tone: "alarm" },
  "statistics.updated": { label: "Results", icon: "Σ", tone: "info" },
  "limits.changed": { label: "Control limits", icon: "↕", tone: "info" },
  "lot.disposition": { label: "Lot disposition", icon: "⚑", tone: "info" },
};
const OTHER = { label: "Notice", icon: "•", tone: "info" };

export function eventKind(event) {
  return KINDS[event] ?? OTHER;
}

export const MAX_BADGE = 99;

/** The navigation badge's figure: "0" … "99", then "99+". */
export function badgeText(count) {
  const n = Number.isInteger(count) && count > 0 ? count : 0;
  return n > MAX_BADGE ? `${MAX_BADGE}+` : String(n);
}

function positiveId(value) {
  const id = Number(value);
  return Number.isInteger(id) && id > 0 ? id : null;
}

/**
 * Where to look, most useful first: the characteristic's chart page, the lot's page (when the
 * site has one: `lotUrl` like "/lots/{id}/"), else the record the notification names in the API.
 * [{href, label}]; empty when it names nothing.
 */
export function pageLinks(notification, { lotUrl = "" } = {}) {
  const data = notification?.data ?? {};
  const links = [];
  const characteristic = positiveId(data.characteristic);
  const lot = positiveId(data.lot);
  if (characteristic !== null) links.push({ href: `/charts/${characteristic}/`, label: "Open the chart" });
  if (lot !== null && lotUrl.includes("{id}")) {
    const number = data.number ? ` ${data.number}` : "";
    links.push({ href: lotUrl.replace("{id}", String(lot)), label: `Open lot${number}` });
  }
  if (links.length === 0 && typeof notification?.link === "string" && notification.link.startsWith("/")) {
    links.push({ href: notification.link, label: "Open the record" });
  }
  return links;
}

function newestFirst(a, b) {
  const at = Date.parse(a.created_at) || 0;
  const bt = Date.parse(b.created_at) || 0;
  return bt - at || b.id - a.id;
}

/**
 * `held` with `incoming` merged in, newest first. A notification already held is replaced (the
 * server pushes a coalesced one again under its id with new figures), but one read stays read:
 * the server only ever updates unread ones, so an unread copy is older than the "mark read".
 */
export function mergeNotifications(held, incoming) {
  const byId = new Map(held.map((n) => [n.id, n]));
  for (const fresh of incoming) {
    if (!fresh || !Number.isInteger(fresh.id)) continue;
    const old = byId.get(fresh.id);
    const merged = { ...old, ...fresh };
    if (old?.read && !fresh.read) Object.assign(merged, { read: true, read_at: old.read_at ?? null });
    byId.set(fresh.id, merged);
  }
  return [...byId.values()].sort(newestFirst);
}

/** How many of `notifications` are unread. */
export function unreadCount(notifications) {
  return notifications.filter((n) => !n.read).length;
}
