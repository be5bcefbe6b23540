// The tester worklist's pure logic (no DOM): reading a typed value, checking it against the test's
// plausible range (an error that blocks sending) and the product's spec limits (a warning), the
// idempotency key of an entry, which failures are worth retrying, and the store of entries still
// to send (localStorage, one list per user). static/js/worklist.js draws the page with it;
// tests/web/js/worklist.logic.test.mjs tests it with Node.

import { formatNumber } from "./format.js";

const NUMBER = /^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$/;

// A typed value as a number: a decimal comma is read as a point ("74,02" is 74.02). Empty text is
// `empty`; anything else that is not a plain finite number is `invalid`.
export function parseValue(text) {
  const trimmed = String(text ?? "").trim();
  if (trimmed === "") return { empty: true };
  if (!NUMBER.test(trimmed)) return { invalid: true };
  const number = Number(trimmed.replace(",", "."));
  return Number.isFinite(number) ? { number } : { invalid: true };
}

function range(low, high, decimals, unit) {
  if (low !== null && low !== undefined && high !== null && high !== undefined) {
    return `${formatNumber(low, decimals)} to ${formatNumber(high, decimals, unit)}`;
  }
  if (low !== null && low !== undefined) return `at least ${formatNumber(low, decimals, unit)}`;
  return `at most ${formatNumber(high, decimals, unit)}`;
}

const has = (limit) => limit !== null && limit !== undefined;

// The verdict on one typed value for `test` (a due test of GET /api/v1/me/items/):
// {level: "empty" | "error" | "warning" | "ok", message, number}. An error blocks sending; a
// warning (outside spec) does not: the value may be real, and the chart must show it.
export function checkValue(text, test) {
  const { decimals, unit } = test;
  const parsed = parseValue(text);
  if (parsed.empty) return { level: "empty", message: "" };
  if (parsed.invalid) {
    return { level: "error", message: `“${String(text).trim()}” is not a number. Type digits, e.g. ${formatNumber(1, decimals)}.` };
  }
  const { number } = parsed;
  if (test.kind !== "variable" && (number < 0 || !Number.isInteger(number))) {
    return { level: "error", number, message: "This test counts: type a whole number, 0 or more." };
  }
  const low = test.plausible_min;
  const high = test.plausible_max;
  if ((has(low) && number < low) || (has(high) && number > high)) {
    return {
      level: "error",
      number,
      message: `${formatNumber(number, decimals, unit)} cannot be right: this test reads ${range(low, high, decimals, unit)}. Check the value and type it again.`,
    };
  }
  if (has(test.lsl) && number < test.lsl) {
    return {
      level: "warning",
      number,
      message: `Below the lower spec limit (${formatNumber(test.lsl, decimals, unit)}). If it is what you measured, send it.`,
    };
  }
  if (has(test.usl) && number > test.usl) {
    return {
      level: "warning",
      number,
      message: `Above the upper spec limit (${formatNumber(test.usl, decimals, unit)}). If it is what you measured, send it.`,
    };
  }
  return { level: "ok", number, message: "" };
}

// A key the server keeps with the observation: the same key sent again creates nothing new.
// crypto.getRandomValues works on plain HTTP too (crypto.randomUUID needs a secure context).
export function newIdempotencyKey(random = (bytes) => globalThis.crypto.getRandomValues(bytes)) {
  const bytes = random(new Uint8Array(16));
  return `web-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// After a failed post: keep the entry and try again (the server was not reached, did not answer in
// time, or failed itself; or the session ended and a sign-in will let it through), or show what
// the server refused and do not send that again.
export function shouldRetry(error) {
  const status = error?.status ?? 0;
  return status === 0 || status === 401 || status === 408 || status === 429 || status >= 500;
}

// The entries still to send, kept in `storage` (window.localStorage) under one key per user, so a
// reload, a closed tab or a dead battery loses nothing and another user on the same device does
// not send them. When storage is unavailable (private mode, full) they live in memory, and
// `persistent` says so.
export class PendingStore {
  constructor(storage, userId) {
    this.storage = storage;
    this.key = `openspc.worklist.pending.${userId}`;
    this.memory = null;
    this.persistent = true;
  }

  list() {
    if (this.memory) return this.memory.map((entry) => ({ ...entry }));
    try {
      const parsed = JSON.parse(this.storage.getItem(this.key) || "[]");
      return Array.isArray(parsed) ? parsed : [];
    } catch {
      return [];
    }
  }

  get(key) {
    return this.list().find((entry) => entry.key === key);
  }

  save(entries) {
    if (!this.memory) {
      try {
        if (entries.length) this.storage.setItem(this.key, JSON.stringify(entries));
        else this.storage.removeItem(this.key);
        return;
      } catch {
        this.persistent = false;
      }
    }
    this.memory = entries.map((entry) => ({ ...entry }));
  }

  add(entry) {
    this.save([...this.list().filter((e) => e.key !== entry.key), entry]);
  }

  update(key, changes) {
    this.save(this.list().map((entry) => (entry.key === key ? { ...entry, ...changes } : entry)));
  }

  remove(key) {
    this.save(this.list().filter((entry) => entry.key !== key));
  }
}

// What one posted entry looks like to the API (POST /api/v1/observations/).
export function observationBody(entry) {
  return {
    item: entry.item,
    test: entry.test,
    values: entry.values,
    observed_at: entry.observedAt,
    idempotency_key: entry.key,
  };
}

// Where an entry is posted: a retest of an invalidated result goes to that result's retest/ (the new
// result is linked to it); anything else is a new observation.
export function observationUrl(entry) {
  return entry.retestOf ? `/api/v1/observations/${entry.retestOf}/retest/` : "/api/v1/observations/";
}

// A same-origin path for the status URL the API answered (it is absolute, and behind a proxy
// its host may not be the one the page was loaded from).
export function sameOriginPath(url, base) {
  const parsed = new URL(url, base);
  return parsed.pathname + parsed.search;
}
