// Run with `node --test tests/web/js/` (tests/web/test_js.py runs it under pytest).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { formatClock, formatNumber, formatTime } from "../../../static/js/format.js";

describe("formatNumber", () => {
  it("uses the characteristic's decimals", () => {
    assert.equal(formatNumber(1.23456, 3), "1.235");
    assert.equal(formatNumber(2, 0), "2");
    assert.equal(formatNumber(0.1, 2), "0.10");
  });
  it("shows an em dash for nothing", () => {
    assert.equal(formatNumber(null, 2), "—");
    assert.equal(formatNumber(undefined, 2), "—");
    assert.equal(formatNumber(Number.NaN, 2), "—");
  });
  it("adds the unit to a number, never to the dash", () => {
    assert.equal(formatNumber(74.0234, 3, "mm"), "74.023 mm");
    assert.equal(formatNumber(null, 3, "mm"), "—");
  });
  it("falls back to 2 decimals when the characteristic has none that make sense", () => {
    assert.equal(formatNumber(1.23456), "1.23");
    assert.equal(formatNumber(1.23456, undefined, "mm"), "1.23 mm");
    assert.equal(formatNumber(1.23456, Number.NaN), "1.23");
  });
  it("shows an em dash for text that is not a number", () => {
    assert.equal(formatNumber("abc", 2), "—");
    assert.equal(formatNumber("", 2), "—");
    assert.equal(formatNumber("1.5", 2), "1.50");
  });
  it("does not print minus zero", () => {
    assert.equal(formatNumber(-0.0004, 2), "0.00");
    assert.equal(formatNumber(-0.5, 1), "-0.5");
  });
});

describe("formatClock", () => {
  it("shows the wall clock of the plant", () => {
    assert.equal(formatClock(new Date("2026-03-01T08:00:05Z"), "Europe/Berlin"), "09:00");
  });
});

describe("formatTime", () => {
  it("shows the plant's time zone", () => {
    assert.equal(formatTime("2026-03-01T08:00:05Z", "Europe/Berlin"), "2026-03-01 09:00:05 CET");
    assert.equal(formatTime("2026-07-01T08:00:05Z", "Europe/Berlin"), "2026-07-01 10:00:05 CEST");
    assert.equal(formatTime("2026-03-01T08:00:05Z", "UTC"), "2026-03-01 08:00:05 UTC");
  });
  it("shows an em dash for no time", () => {
    assert.equal(formatTime(null), "—");
    assert.equal(formatTime("not a time"), "—");
  });
});
