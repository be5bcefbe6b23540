// The state at a glance of the overview's cards and the wall screen's tiles (static/js/page.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { STATES, applyHealth, applySchedule, cardState, numberOrNull } from "../../../static/js/page.js";

const card = (extra = {}) => ({ unacknowledged: "false", lastValue: "74.0", lsl: "73.9", usl: "74.1", offline: "false", ...extra });

test("the most urgent state that applies wins", () => {
  assert.equal(cardState(card()), "in_control");
  assert.equal(cardState(card({ lastValue: "74.2" })), "out_of_spec");
  assert.equal(cardState(card({ lastValue: "73.8" })), "out_of_spec");
  assert.equal(cardState(card({ lastValue: "74.2", unacknowledged: "true" })), "unacknowledged");
  assert.equal(cardState(card({ offline: "true" })), "offline");
  assert.equal(cardState(card({ lastValue: "74.2", offline: "true" })), "out_of_spec");
  assert.equal(cardState(card({ lastValue: "" })), "no_data");
  assert.equal(cardState(card({ lastValue: "", offline: "true" })), "offline");
});

test("a card whose values are being rejected is never green, nor only out of spec", () => {
  const rejecting = "100 % rejected: outside the plausible range";
  assert.equal(cardState(card({ rejecting })), "rejecting");
  assert.equal(cardState(card({ rejecting, lastValue: "74.2" })), "rejecting");
  assert.equal(cardState(card({ rejecting, unacknowledged: "true" })), "unacknowledged");
  const element = { dataset: card({ rejecting }) };
  applyHealth(element, { state: "ok", summary: "" });
  assert.equal(cardState(element.dataset), "in_control");
  applyHealth(element, { state: "rejecting", summary: rejecting });
  assert.equal(element.dataset.rejecting, rejecting);
});

test("an overdue scheduled sample turns the card until it is taken or closed", () => {
  const utc = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const element = { dataset: card() };
  applySchedule(element, { state: "overdue", overdue_at: "2026-12-07T10:15:00Z" }, utc);
  assert.equal(element.dataset.overdue, "Sample overdue since 10:15");
  assert.equal(cardState(element.dataset), "overdue");
  assert.equal(cardState({ ...element.dataset, lastValue: "" }), "overdue"); // never "no data yet" either
  assert.equal(cardState({ ...element.dataset, lastValue: "74.2" }), "out_of_spec");
  assert.equal(cardState({ ...element.dataset, offline: "true" }), "offline");
  applySchedule(element, { state: "taken", overdue_at: "2026-12-07T10:15:00Z" }, utc);
  assert.equal(element.dataset.overdue, "");
  assert.equal(cardState(element.dataset), "in_control");
});

test("a characteristic that stopped receiving data is never green, and says since when", () => {
  const element = { dataset: card({ overdue: "Sample overdue since 10:15" }) };
  applyHealth(element, { state: "stale", summary: "Not receiving data since 10:42" });
  assert.equal(cardState(element.dataset), "stale");
  assert.equal(element.dataset.stale, "Not receiving data since 10:42");
  assert.equal(cardState({ ...element.dataset, lastValue: "" }), "stale");
  applyHealth(element, { state: "ok", summary: "" });
  assert.equal(cardState(element.dataset), "overdue");
  applyHealth(element, { state: "offline", summary: "Data source offline since 10:40" });
  assert.equal(cardState(element.dataset), "offline");
  applyHealth(element, { state: "ok", summary: "" }); // its node is back
  assert.equal(cardState(element.dataset), "overdue");
});

test("a characteristic without control limits is never in control, only out of spec or waiting", () => {
  assert.equal(cardState(card({ limits: "false" })), "no_limits");
  assert.equal(cardState(card({ limits: "false", lastValue: "74.2" })), "out_of_spec");
  assert.equal(cardState(card({ limits: "false", lastValue: "" })), "no_data");
  assert.equal(cardState(card({ limits: "true" })), "in_control");
});

test("a missing spec limit never makes a value out of spec", () => {
  assert.equal(cardState(card({ lsl: "", usl: "", lastValue: "1000" })), "in_control");
});

test("every state has words and an icon", () => {
  for (const state of ["unacknowledged", "rejecting", "out_of_spec", "offline", "stale", "overdue", "no_data", "no_limits", "in_control"]) {
    assert.ok(STATES[state].label && STATES[state].icon, state);
  }
  assert.equal(numberOrNull(""), null);
  assert.equal(numberOrNull("0"), 0);
});
