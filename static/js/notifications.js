// The inbox (templates/web/notifications.html): the user's notifications from the API, newest
// first, unread ones marked; mark one or all read; each links to its chart (or lot). New ones
// arrive over the navigation badge's connection (notify.js) and are added at the top, no reload.

import { apiGet, apiPost } from "./api.js";
import { formatTime } from "./format.js";
import { statusBadge } from "./live.js";
import { eventKind, mergeNotifications, pageLinks, unreadCount } from "./notifications.logic.js";
import { feed, liveStatus, refreshUnread } from "./notify.js";

const API = "/api/v1/notifications/";
const PAGE_SIZE = 50;
const ARRIVAL_MS = 1600; // notifications.css: notification-arrive

const root = document.querySelector("[data-inbox]");
const el = {
  list: root.querySelector("[data-notifications]"),
  status: root.querySelector("[data-inbox-status]"),
  error: root.querySelector("[data-inbox-error]"),
  empty: root.querySelector("[data-inbox-empty]"),
  emptyAll: root.querySelector("[data-empty-all]"),
  emptyUnread: root.querySelector("[data-empty-unread]"),
  more: root.querySelector("[data-load-more]"),
  readAll: root.querySelector("[data-read-all]"),
  announce: root.querySelector("[data-inbox-announce]"),
  filters: [...root.querySelectorAll("[data-filter]")],
  badge: document.querySelector("[data-unread-badge]"),
};
const timeZone = document.body.dataset.timeZone || "UTC";
const lotUrl = root.dataset.lotUrl || "";

let filter = "all";
let held = []; // what the list shows, newest first
let next = null; // the API's URL of the next older page
let loaded = false;
let generation = 0; // a later load (another filter) makes an earlier one's answer stale
const arrivedLive = new Set(); // ids that just came in live: highlighted

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = !message;
}

function announce(message) {
  el.announce.textContent = "";
  // A fresh text node each time, so a screen reader reads a repeated message again.
  window.setTimeout(() => {
    el.announce.textContent = message;
  }, 50);
}

function firstPageUrl() {
  return `${API}?page_size=${PAGE_SIZE}${filter === "unread" ? "&unread=true" : ""}`;
}

// --- Rendering ------------------------------------------------------------------------------

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

function item(notification) {
  const kind = eventKind(notification.event);
  const li = node("li", `notification notification--${kind.tone}`);
  li.dataset.notificationId = String(notification.id);
  li.dataset.read = notification.read ? "true" : "false";
  li.tabIndex = -1; // focus lands here when the control that had it goes away
  if (arrivedLive.has(notification.id)) li.classList.add("notification--arrived");

  const head = node("div", "notification-head");
  const badge = node("span", `notification-kind notification-kind--${kind.tone}`);
  badge.append(node("span", "", kind.icon), ` ${kind.label}`);
  badge.firstChild.setAttribute("aria-hidden", "true");
  head.append(badge);
  if (!notification.read) head.append(node("span", "notification-new", "New"));
  const time = node("time", "notification-time", formatTime(notification.created_at, timeZone));
  time.dateTime = notification.created_at ?? "";
  head.append(time);

  const links = pageLinks(notification, { lotUrl });
  const title = node("h2", "notification-title");
  if (links.length > 0) {
    const link = node("a", "", notification.title);
    link.href = links[0].href;
    link.dataset.action = "open";
    title.append(link);
  } else {
    title.textContent = notification.title;
  }

  li.append(head, title);
  if (notification.message) li.append(node("p", "notification-message", notification.message));

  const actions = node("div", "notification-actions");
  for (const extra of links.slice(1)) {
    const link = node("a", "", extra.label);
    link.href = extra.href;
    link.dataset.action = "open-extra";
    actions.append(link);
  }
  if (!notification.read) {
    const button = node("button", "button button--quiet", "Mark read");
    button.type = "button";
    button.dataset.action = "read";
    button.setAttribute("aria-label", `Mark read: ${notification.title}`);
    actions.append(button);
  }
  if (actions.childElementCount > 0) li.append(actions);
  return li;
}

function focusedControl() {
  const active = document.activeElement;
  const li = active?.closest?.("[data-notification-id]");
  if (!li || !el.list.contains(li)) return null;
  return { id: li.dataset.notificationId, action: active.dataset.action ?? null };
}

function restoreFocus(focus) {
  if (!focus) return;
  const li = el.list.querySelector(`[data-notification-id="${focus.id}"]`);
  if (!li) return;
  const target =
    (focus.action && li.querySelector(`[data-action="${focus.action}"]`)) ||
    li.querySelector('[data-action="open"]') ||
    li;
  target.focus();
}

function serverUnread() {
  return Number(el.badge?.dataset.unreadCount ?? 0);
}

function render() {
  const focus = focusedControl();
  el.list.replaceChildren(...held.map(item));
  el.list.hidden = held.length === 0;
  el.list.dataset.count = String(held.length);
  el.empty.hidden = !loaded || held.length > 0;
  el.emptyAll.hidden = filter !== "all";
  el.emptyUnread.hidden = filter !== "unread";
  el.more.hidden = !next;
  updateReadAll();
  restoreFocus(focus);
}

function updateReadAll() {
  el.readAll.disabled = unreadCount(held) === 0 && serverUnread() === 0;
}

// --- Loading --------------------------------------------------------------------------------

function showLoadFailure(error) {
  el.status.hidden = false;
  el.status.replaceChildren(node("span", "", `Your notifications could not be loaded: ${error.message} `));
  const retry = node("button", "button button--quiet", "Try again");
  retry.type = "button";
  retry.addEventListener("click", load);
  el.status.append(retry);
}

async function load() {
  const mine = ++generation;
  loaded = false;
  held = [];
  next = null;
  el.status.hidden = false;
  el.status.textContent = "Loading your notifications…";
  render();
  try {
    const page = await apiGet(firstPageUrl());
    if (mine !== generation) return;
    // Live arrivals during the load are kept: merged by id with the page.
    held = mergeNotifications(held, page.results);
    next = page.next;
    loaded = true;
    el.status.hidden = true;
    showError("");
    render();
  } catch (error) {
    if (mine === generation) showLoadFailure(error);
  }
}

async function loadOlder() {
  if (!next) return;
  el.more.disabled = true;
  try {
    const page = await apiGet(next);
    held = mergeNotifications(held, page.results);
    next = page.next;
    showError("");
    render();
  } catch (error) {
    showError(`Older notifications could not be loaded: ${error.message}`);
  } finally {
    el.more.disabled = false;
  }
}

// After a reconnect: what arrived (or was updated) while away is on the first page.
async function catchUp() {
  if (!loaded) return;
  try {
    const page = await apiGet(firstPageUrl());
    held = mergeNotifications(held, page.results);
    render();
  } catch (error) {
    showError(`The inbox may be out of date: ${error.message}. Reload the page.`);
  }
}

// --- Reading --------------------------------------------------------------------------------

async function markRead(id) {
  const notification = await apiPost(`${API}${id}/read/`);
  held = mergeNotifications(held, [notification]);
  render();
  if (liveStatus !== "live") refreshUnread(); // live, the server pushes the new count
}

async function markAllRead() {
  el.readAll.disabled = true;
  try {
    const answer = await apiPost(`${API}read-all/`);
    const now = new Date().toISOString();
    held = held.map((n) => (n.read ? n : { ...n, read: true, read_at: now }));
    showError("");
    announce(answer.marked === 1 ? "1 notification marked read." : `${answer.marked} notifications marked read.`);
    if (liveStatus !== "live") await refreshUnread(); // live, the server pushes the new count
  } catch (error) {
    showError(`Could not mark them read: ${error.message}`);
  }
  render();
}

el.list.addEventListener("click", async (event) => {
  const control = event.target.closest("[data-action]");
  const li = control?.closest("[data-notification-id]");
  if (!control || !li) return;
  const id = Number(li.dataset.notificationId);
  const unread = li.dataset.read !== "true";
  if (control.dataset.action === "read") {
    control.disabled = true;
    try {
      await markRead(id);
      announce("Marked read.");
    } catch (error) {
      control.disabled = false;
      showError(`Could not mark it read: ${error.message}`);
    }
    return;
  }
  // Following a link reads the notification; a new tab or window (modifier keys) leaves it be.
  const plainClick = event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
  if (control.tagName === "A" && unread && plainClick) {
    event.preventDefault();
    try {
      await markRead(id);
    } catch {
      // Reading it matters less than getting there.
    }
    window.location.assign(control.href);
  }
});

el.readAll.addEventListener("click", markAllRead);
el.more.addEventListener("click", loadOlder);
for (const button of el.filters) {
  button.addEventListener("click", () => {
    if (button.dataset.filter === filter) return;
    filter = button.dataset.filter;
    for (const other of el.filters) other.setAttribute("aria-pressed", String(other === button));
    load();
  });
}

// --- Live -----------------------------------------------------------------------------------

feed.addEventListener("notification", ({ detail: notification }) => {
  if (!Number.isInteger(notification?.id)) return;
  const known = held.some((n) => n.id === notification.id);
  held = mergeNotifications(held, [notification]);
  if (!known) {
    arrivedLive.add(notification.id);
    // Highlighted once (the CSS animation's length): a later render shows it like the others.
    window.setTimeout(() => arrivedLive.delete(notification.id), ARRIVAL_MS);
    announce(`New notification: ${notification.title}`);
  }
  render();
});
feed.addEventListener("reconnect", catchUp);

const showStatus = statusBadge(document.querySelector("[data-live-status]"));
if (liveStatus !== "connecting") showStatus(liveStatus);
feed.addEventListener("status", ({ detail }) => showStatus(detail));

// The badge's count changes when another tab reads or a notification arrives: "Mark all read"
// follows it.
if (el.badge) {
  new MutationObserver(updateReadAll).observe(el.badge, { attributes: true, attributeFilter: ["data-unread-count"] });
}

load();
