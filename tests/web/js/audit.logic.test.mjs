// Run with `node --test tests/web/js/` (tests/web/test_js.py runs it under pytest).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { auditChanges, cursorOf, fieldLabel, formatValue } from "../../../static/js/audit.logic.js";

describe("an audit entry's diff", () => {
  it("lists the changed fields of an update and counts the others", () => {
    const { rows, unchanged } = auditChanges({ usl: 2.0, lsl: 1.0, rules: [1, 2] }, { usl: 2.5, lsl: 1.0, rules: [1, 2, 5] });
    assert.deepEqual(rows, [
      { field: "usl", before: 2.0, after: 2.5, changed: true },
      { field: "rules", before: [1, 2], after: [1, 2, 5], changed: true },
    ]);
    assert.equal(unchanged, 1);
  });

  it("shows every field of a creation or a deletion", () => {
    assert.deepEqual(auditChanges(null, { code: "A", active: true }).rows.map((r) => r.field), ["code", "active"]);
    assert.deepEqual(auditChanges({ code: "A" }, null), { rows: [{ field: "code", before: "A", after: undefined, changed: true }], unchanged: 0 });
    assert.deepEqual(auditChanges(null, null), { rows: [], unchanged: 0 });
  });

  it("counts a field that appears as changed", () => {
    assert.deepEqual(auditChanges({}, { comment: "" }).rows.map((r) => r.field), ["comment"]);
  });

  it("puts values in words", () => {
    const options = { timeZone: "UTC", userNames: { 4: "manager" }, references: { acknowledgement_reason: { 1: "Assignable cause" } } };
    assert.equal(formatValue(null), "—");
    assert.equal(formatValue(""), "—");
    assert.equal(formatValue(true), "yes");
    assert.equal(formatValue(false), "no");
    assert.equal(formatValue(74.125), "74.125");
    assert.equal(formatValue(4, { ...options, field: "acknowledged_by" }), "manager (user 4)");
    assert.equal(formatValue(4, { ...options, field: "sample_count" }), "4");
    assert.equal(formatValue(9, { ...options, field: "acknowledged_by" }), "9");
    assert.equal(formatValue(1, { ...options, field: "acknowledgement_reason" }), "Assignable cause (1)");
    assert.equal(formatValue("2026-11-24T03:00:28.123456+00:00", options), "2026-11-24 03:00:28 UTC");
    assert.equal(formatValue("Tool wear"), "Tool wear");
    assert.equal(formatValue([1, 2, 5]), "1, 2, 5");
    assert.equal(formatValue([]), "none");
    assert.equal(formatValue({ k: 3 }), '{"k":3}');
  });

  it("labels fields", () => {
    assert.equal(fieldLabel("acknowledged_at"), "Acknowledged at");
    assert.equal(fieldLabel("usl"), "USL");
    assert.equal(fieldLabel("dispersion_ucl"), "Dispersion UCL");
  });

  it("reads the cursor of a page link", () => {
    assert.equal(cursorOf("http://testserver/api/v1/audit/?action=acknowledge&cursor=cD0yMDI2"), "cD0yMDI2");
    assert.equal(cursorOf("/api/v1/audit/?cursor=abc%3D"), "abc=");
    assert.equal(cursorOf(null), null);
    assert.equal(cursorOf("http://testserver/api/v1/audit/"), null);
  });
});
