// The QA run page's pure helpers (static/js/qa_run.logic.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { eventText, executedCount, mergeEvents } from "../../../static/js/qa_run.logic.js";

const ev = (sequence, type, payload = {}) => ({ sequence, type, payload });

test("merging keeps each event once, in sequence order, and sees the end", () => {
  const first = mergeEvents([], [ev(2, "SPEC_FETCHED"), ev(1, "REQUESTED")]);
  assert.deepEqual(first.all.map((e) => e.sequence), [1, 2]);
  assert.equal(first.ended, false);
  // A poll that overlaps what the page holds adds only what is new.
  const second = mergeEvents(first.all, [ev(2, "SPEC_FETCHED"), ev(3, "EXECUTION_FAILED"), ev(4, "COMPLETE")]);
  assert.deepEqual(second.fresh.map((e) => e.sequence), [3, 4]);
  assert.deepEqual(second.all.map((e) => e.sequence), [1, 2, 3, 4]);
  assert.equal(second.ended, true);
  assert.equal(executedCount(second.all), 1);
});

test("events read in words, failures with their checks and a tone besides colour", () => {
  assert.deepEqual(eventText(ev(5, "AI_FAILED", { attempt: 2, operation: "listThings", reason: "timeout" })), {
    tone: "fail",
    text: "AI generation attempt 2 failed for listThings: timeout",
  });
  const failed = eventText(ev(6, "EXECUTION_FAILED", { operation: "getThing", kind: "negative", failures: ["status 200, expected 4xx"] }));
  assert.equal(failed.tone, "fail");
  assert.equal(failed.text, "Failed: getThing (negative) — status 200, expected 4xx");
  assert.equal(eventText(ev(7, "COMPLETE", { verdict: "PASS_WITH_WARNINGS" })).text, "Complete: Pass with warnings.");
  assert.equal(eventText(ev(7, "COMPLETE", { verdict: "FAIL" })).tone, "fail");
});

test("a skipped scenario reads as skipped, with the reason, and is not counted as executed", () => {
  const skipped = ev(8, "EXECUTION_SKIPPED", { operation: "createThing", kind: "positive", reason: "step 1: POST is not sent" });
  assert.deepEqual(eventText(skipped), { tone: "info", text: "Skipped: createThing (positive) — step 1: POST is not sent" });
  assert.equal(executedCount([skipped]), 0);
});
