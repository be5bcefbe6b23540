// The user's notifications, live on every page: one connection to ws/notifications/ keeps the
// unread badge in the navigation (templates/web/unread_badge.html) current. The inbox page
// (notifications.js) listens to the same connection instead of opening its own:
//
//   import { feed, refreshUnread } from "./notify.js";
//   feed.addEventListener("notification", (event) => show(event.detail));  // the notification
//   feed.addEventListener("reconnect", () => catchUp());   // arrivals while away were not replayed
//   feed.addEventListener("status", (event) => badge(event.detail));       // live | reconnecting | offline
//
// The count shown is always the server's (GET …/unread-count/): a notification pushed again
// (coalesced results, updated under the same id) must not count twice.

import { apiGet } from "./api.js";
import { Live } from "./live.js";
import { badgeText } from "./notifications.logic.js";

const COUNT_URL = "/api/v1/notifications/unread-count/";
const REFRESH_DELAY_MS = 150; // a burst of arrivals costs one request

export const feed = new EventTarget();
export let liveStatus = "connecting";

const badge = document.querySelector("[data-unread-badge]");
let refreshTimer = null;

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

function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshUnread, REFRESH_DELAY_MS);
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
    if (type !== "notification" || !payload) return;
    emit("notification", payload);
    refreshSoon();
  },
  onStatus: (status) => {
    liveStatus = status;
    // Connected (first time or again): what arrived before, or while away, is counted now.
    if (status === "live") refreshSoon();
    emit("status", status);
  },
  onReconnect: () => emit("reconnect"),
});
