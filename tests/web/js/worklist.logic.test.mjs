// Run with `node --test tests/web/js/` (tests/web/test_js.py runs it under pytest).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  PendingStore,
  checkValue,
  newIdempotencyKey,
  observationBody,
  observationUrl,
  parseValue,
  sameOriginPath,
  shouldRetry,
} from "../../../static/js/worklist.logic.js";

const DIA = {
  kind: "variable", unit: "mm", decimals: 3, plausible_min: 70, plausible_max: 78, lsl: 73.9, usl: 74.1,
};

class MemoryStorage {
  constructor() { this.data = new Map(); }
  getItem(key) { return this.data.has(key) ? this.data.get(key) : null; }
  setItem(key, value) { this.data.set(key, String(value)); }
  removeItem(key) { this.data.delete(key); }
}

describe("parseValue", () => {
  it("reads a decimal point or a decimal comma", () => {
    assert.deepEqual(parseValue(" 74.02 "), { number: 74.02 });
    assert.deepEqual(parseValue("74,02"), { number: 74.02 });
    assert.deepEqual(parseValue("-0.5"), { number: -0.5 });
    assert.deepEqual(parseValue("1e2"), { number: 100 });
  });
  it("tells empty from not a number", () => {
    assert.deepEqual(parseValue(""), { empty: true });
    assert.deepEqual(parseValue("   "), { empty: true });
    for (const text of ["abc", "74.0.1", "7 4", "1,000.5", "Infinity", "1e999", "0x10"]) {
      assert.deepEqual(parseValue(text), { invalid: true }, text);
    }
  });
});

describe("checkValue", () => {
  it("is an error outside the plausible range, with the range in the message", () => {
    const verdict = checkValue("80", DIA);
    assert.equal(verdict.level, "error");
    assert.equal(verdict.message, "80.000 mm cannot be right: this test reads 70.000 to 78.000 mm. Check the value and type it again.");
    assert.equal(checkValue("69.999", DIA).level, "error");
  });
  it("is a warning outside spec but inside the plausible range", () => {
    const high = checkValue("74.2", DIA);
    assert.equal(high.level, "warning");
    assert.equal(high.message, "Above the upper spec limit (74.100 mm). If it is what you measured, send it.");
    assert.match(checkValue("73.8", DIA).message, /^Below the lower spec limit \(73\.900 mm\)/);
  });
  it("is fine within spec and on a limit", () => {
    assert.deepEqual(checkValue("74.1", DIA), { level: "ok", number: 74.1, message: "" });
    assert.equal(checkValue("78", DIA).level, "warning"); // on the plausible limit: possible, out of spec
  });
  it("is an error when the text is no number, and nothing when empty", () => {
    assert.equal(checkValue("7x", DIA).level, "error");
    assert.match(checkValue("7x", DIA).message, /“7x” is not a number/);
    assert.equal(checkValue("", DIA).level, "empty");
  });
  it("needs whole counts of 0 or more for a counting test", () => {
    const count = { kind: "defects", unit: "", decimals: 0, plausible_min: null, plausible_max: null, lsl: null, usl: null };
    assert.equal(checkValue("2.5", count).level, "error");
    assert.equal(checkValue("-1", count).level, "error");
    assert.equal(checkValue("3", count).level, "ok");
  });
  it("names one open end of the range", () => {
    const open = { ...DIA, plausible_max: null, lsl: null, usl: null };
    assert.match(checkValue("1", open).message, /this test reads at least 70\.000 mm/);
  });
});

describe("newIdempotencyKey", () => {
  it("is 128 random bits in hex, different each time", () => {
    const key = newIdempotencyKey((bytes) => bytes.fill(171));
    assert.equal(key, `web-${"ab".repeat(16)}`);
    assert.notEqual(newIdempotencyKey(), newIdempotencyKey());
    assert.ok(newIdempotencyKey().length <= 128); // the API's limit
  });
});

describe("shouldRetry", () => {
  it("retries what the server did not decide, not what it refused", () => {
    for (const status of [0, 401, 408, 429, 500, 502, 503, 504]) assert.equal(shouldRetry({ status }), true, status);
    for (const status of [400, 403, 404, 409, 413]) assert.equal(shouldRetry({ status }), false, status);
  });
});

describe("PendingStore", () => {
  it("keeps entries per user across instances (a reload)", () => {
    const storage = new MemoryStorage();
    const mine = new PendingStore(storage, 7);
    mine.add({ key: "a", values: [1] });
    mine.add({ key: "b", values: [2] });
    mine.update("a", { lastError: "offline" });
    assert.deepEqual(new PendingStore(storage, 7).list(), [{ key: "a", values: [1], lastError: "offline" }, { key: "b", values: [2] }]);
    assert.deepEqual(new PendingStore(storage, 8).list(), []);
    mine.remove("a");
    mine.remove("b");
    assert.equal(storage.getItem("openspc.worklist.pending.7"), null);
  });
  it("adding the same key twice keeps one", () => {
    const store = new PendingStore(new MemoryStorage(), 1);
    store.add({ key: "a", values: [1] });
    store.add({ key: "a", values: [1] });
    assert.equal(store.list().length, 1);
  });
  it("falls back to memory when storage refuses, and says so", () => {
    const full = { getItem: () => null, setItem: () => { throw new Error("QuotaExceededError"); }, removeItem() {} };
    const store = new PendingStore(full, 1);
    store.add({ key: "a", values: [1] });
    assert.equal(store.persistent, false);
    assert.deepEqual(store.list(), [{ key: "a", values: [1] }]);
  });
  it("reads broken stored text as nothing", () => {
    const storage = new MemoryStorage();
    storage.setItem("openspc.worklist.pending.1", "{not json");
    assert.deepEqual(new PendingStore(storage, 1).list(), []);
  });
});

describe("observationBody and sameOriginPath", () => {
  it("posts the entry with its key and time", () => {
    const entry = { key: "k", item: 1, test: 2, values: [74], observedAt: "2026-01-01T00:00:00Z", label: "x" };
    assert.deepEqual(observationBody(entry), {
      item: 1, test: 2, values: [74], observed_at: "2026-01-01T00:00:00Z", idempotency_key: "k",
    });
  });
  it("posts a retest of an invalidated result to its retest/", () => {
    assert.equal(observationUrl({ item: 1, test: 2, retestOf: null }), "/api/v1/observations/");
    assert.equal(observationUrl({ item: 1, test: 2, retestOf: 41 }), "/api/v1/observations/41/retest/");
  });
  it("keeps the path and query of an absolute status URL", () => {
    assert.equal(sameOriginPath("http://backend:8000/api/v1/observations/5/", "https://plant.example/work/"), "/api/v1/observations/5/");
    assert.equal(sameOriginPath("/api/v1/observations/?ids=1,2", "https://plant.example/work/"), "/api/v1/observations/?ids=1,2");
  });
});
