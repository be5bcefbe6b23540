// Run with `node --test tests/web/js/` (tests/web/test_js.py runs it under pytest).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { acknowledgementText, batchOutcomes, batchSummary, selectable, statusOf } from "../../../static/js/violations.logic.js";

const AWAITING = { id: 1, requires_acknowledgement: true, acknowledged_at: null };
const INFORMATIONAL = { id: 2, requires_acknowledgement: false, acknowledged_at: null };
const DONE = {
  id: 3, requires_acknowledgement: true, acknowledged_at: "2026-11-24T09:30:00Z", acknowledged_by: 7,
  acknowledgement_reason: "no-action",
};

describe("a violation's status", () => {
  it("is awaiting, informational or acknowledged", () => {
    assert.equal(statusOf(AWAITING), "awaiting");
    assert.equal(statusOf(INFORMATIONAL), "informational");
    assert.equal(statusOf(DONE), "acknowledged");
    assert.equal(statusOf({ ...INFORMATIONAL, acknowledged_at: "2026-11-24T09:30:00Z" }), "acknowledged");
  });

  it("can be selected until someone acknowledges it", () => {
    assert.deepEqual([AWAITING, INFORMATIONAL, DONE].map(selectable), [true, true, false]);
  });

  it("names when, who and why, in the plant's time zone", () => {
    const options = { timeZone: "Europe/Berlin", userNames: { 7: "Mia" }, reasons: { "no-action": "Reviewed, no action needed" } };
    assert.equal(acknowledgementText(DONE, options), "2026-11-24 10:30:00 CET by Mia · Reviewed, no action needed");
    assert.equal(acknowledgementText(DONE), "2026-11-24 09:30:00 UTC by user 7 · no-action");
    assert.equal(acknowledgementText(AWAITING, options), "");
  });
});

describe("a batch's outcome", () => {
  it("is told row by row", () => {
    const outcomes = batchOutcomes([{ ...AWAITING, acknowledged_at: "2026-11-24T09:31:00Z" }], [DONE], { userNames: { 7: "Mia" } });
    assert.equal(outcomes[1].outcome, "acknowledged");
    assert.equal(outcomes[1].text, "Acknowledged now.");
    assert.equal(outcomes[3].outcome, "already");
    assert.equal(outcomes[3].text, "Not acknowledged again: it had been acknowledged already (2026-11-24 09:30:00 UTC by Mia · no-action).");
  });

  it("is summed up in one sentence", () => {
    assert.equal(batchSummary([AWAITING, INFORMATIONAL], []), "2 violations acknowledged.");
    assert.equal(batchSummary([AWAITING], [DONE]), "1 violation acknowledged. 1 was acknowledged already by someone else and left as it was.");
    assert.equal(batchSummary([], [DONE, DONE]), "Nothing was acknowledged. 2 were acknowledged already by someone else and left as they were.");
  });
});
