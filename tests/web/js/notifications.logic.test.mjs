// Run with `node --test tests/web/js/` (tests/web/test_js.py runs it under pytest).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  badgeText,
  eventKind,
  mergeNotifications,
  pageLinks,
  unreadCount,
} from "../../../static/js/notifications.logic.js";

function notification(id, extra = {}) {
  return {
    id, event: "violation.created", title: `Rule 1 violation ${id}`, message: "", link: `/api/v1/violations/${id}/`,
    data: { characteristic: 3, lot: 7 }, read: false, read_at: null,
    created_at: `2026-03-01T08:00:${String(id).padStart(2, "0")}Z`, ...extra,
  };
}

describe("badgeText", () => {
  it("counts up to 99, then says 99+", () => {
    assert.equal(badgeText(0), "0");
    assert.equal(badgeText(7), "7");
    assert.equal(badgeText(99), "99");
    assert.equal(badgeText(100), "99+");
  });
  it("reads anything else as none", () => {
    assert.equal(badgeText(-2), "0");
    assert.equal(badgeText(undefined), "0");
    assert.equal(badgeText(2.5), "0");
  });
});

describe("eventKind", () => {
  it("names each event in words, with an icon and a tone", () => {
    assert.deepEqual(eventKind("violation.created"), { label: "Violation", icon: "⚠", tone: "alarm" });
    assert.equal(eventKind("violation.acknowledged").label, "Acknowledged");
    assert.equal(eventKind("statistics.updated").label, "Results");
    assert.equal(eventKind("limits.changed").label, "Control limits");
    assert.equal(eventKind("lot.disposition").label, "Lot disposition");
    assert.equal(eventKind("something.new").label, "Notice");
  });
});

describe("pageLinks", () => {
  it("links a characteristic's notification to its chart first", () => {
    assert.deepEqual(pageLinks(notification(1)), [{ href: "/charts/3/", label: "Open the chart" }]);
  });
  it("adds the lot's page when the site has one", () => {
    const links = pageLinks(notification(1, { data: { characteristic: 3, lot: 7 } }), { lotUrl: "/lots/{id}/" });
    assert.deepEqual(links.map((l) => l.href), ["/charts/3/", "/lots/7/"]);
  });
  it("links a lot's disposition to the lot, by number", () => {
    const disposition = notification(2, {
      event: "lot.disposition", link: "/api/v1/lots/7/", data: { lot: 7, number: "L-1", status: "released" },
    });
    assert.deepEqual(pageLinks(disposition, { lotUrl: "/lots/{id}/" }), [{ href: "/lots/7/", label: "Open lot L-1" }]);
  });
  it("falls back to the record in the API while there is no lot page", () => {
    const disposition = notification(2, { event: "lot.disposition", link: "/api/v1/lots/7/", data: { lot: 7 } });
    assert.deepEqual(pageLinks(disposition), [{ href: "/api/v1/lots/7/", label: "Open the record" }]);
  });
  it("links nowhere it cannot vouch for", () => {
    assert.deepEqual(pageLinks(notification(3, { data: {}, link: "" })), []);
    assert.deepEqual(pageLinks(notification(3, { data: {}, link: "https://elsewhere.example/x" })), []);
    assert.deepEqual(pageLinks(notification(3, { data: { characteristic: "3; drop" }, link: "" })), []);
  });
});

describe("mergeNotifications", () => {
  it("puts a new arrival on top, newest first", () => {
    const merged = mergeNotifications([notification(2), notification(1)], [notification(3)]);
    assert.deepEqual(merged.map((n) => n.id), [3, 2, 1]);
  });
  it("replaces one already held by id (a coalesced update) without a duplicate", () => {
    const merged = mergeNotifications([notification(2), notification(1)], [notification(2, { message: "n = 5" })]);
    assert.deepEqual(merged.map((n) => n.id), [2, 1]);
    assert.equal(merged[0].message, "n = 5");
  });
  it("keeps a read one read when an older unread copy comes in", () => {
    const read = notification(2, { read: true, read_at: "2026-03-01T09:00:00Z" });
    const [merged] = mergeNotifications([read], [notification(2)]);
    assert.equal(merged.read, true);
    assert.equal(merged.read_at, "2026-03-01T09:00:00Z");
  });
  it("takes the server's read state over a held unread copy", () => {
    const [merged] = mergeNotifications([notification(2)], [notification(2, { read: true, read_at: "x" })]);
    assert.equal(merged.read, true);
  });
  it("orders ties in time by id, and skips what has no id", () => {
    const same = "2026-03-01T08:00:00Z";
    const merged = mergeNotifications([], [notification(4, { created_at: same }), notification(5, { created_at: same }), { title: "?" }]);
    assert.deepEqual(merged.map((n) => n.id), [5, 4]);
  });
  it("leaves what it was given as it was", () => {
    const held = [notification(1)];
    mergeNotifications(held, [notification(1, { read: true })]);
    assert.equal(held[0].read, false);
  });
});

describe("unreadCount", () => {
  it("counts the unread", () => {
    assert.equal(unreadCount([notification(1), notification(2, { read: true }), notification(3)]), 2);
    assert.equal(unreadCount([]), 0);
  });
});
