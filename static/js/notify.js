// The user's notifications, live on every page: one connection to ws/notifications/ keeps the
// unread badge in the navigation (templates/web/unread_badge.html) current. The inbox page
// (notifications.js) listens to the same connection instead of opening its own:
//
//   import { feed, refreshUnread } from "./notify.js";
//   feed.addEventListener("notification", (event) => show(event.detail));  // the notification
//   feed.addEventListener("reconnect", () => catchUp());   // arrivals while away were not replayed
//   feed.addEventListener("status", (event) => badge(event.detail));       // live | reconnecting | offline
//
// The count shown is always the server's: it pushes the user's unread count (`unread`) after every
// change (a notification stored or updated, one marked read, in any tab), so no page asks for it
// while connected. A page asks once (GET …/unread-count/) when its connection is (re)established,
// for what changed while it was away. A notification pushed again (coalesced results, a growing
// event, updated under the same id) never counts twice.

import { apiGet } from "./api.js";
import { Live } from "./live.js";
import { badgeText } from "./notifications.logic.js";

const COUNT_URL = "/api/v1/notifications/unread-count/";

export const feed = new EventTarget();
export let liveStatus = "connecting";

const badge = document.querySelector("[data-unread-badge]");

export function showUnread(count) {
  if (!badge || !Number.isInteger(count) || count < 0) return;
  badge.dataset.unreadCount = String(count);
  badge.querySelector("[data-unread-text]").textContent = badgeText(count);
  badge.hidden = count === 0;
}

export async function refreshUnread() {
  try {
    const answer = await apiGet(COUNT_URL);
    showUnread(answer.unread);
  } catch {
    // The badge keeps its last count; the next arrival or reconnect tries again.
  }
}

function notificationsUrl() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws/notifications/`;
}

function emit(type, detail) {
  feed.dispatchEvent(new CustomEvent(type, { detail }));
}

export const live = new Live({
  url: notificationsUrl(),
  onMessage: ({ type, payload }) => {
    if (!payload) return;
    if (type === "unread") showUnread(payload.unread);
    else if (type === "notification") emit("notification", payload);
  },
  onStatus: (status) => {
    liveStatus = status;
    // Connected (first time or again): what arrived before, or while away, is counted now.
    if (status === "live") refreshUnread();
    emit("status", status);
  },
  onReconnect: () => emit("reconnect"),
});
