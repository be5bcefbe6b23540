// Run with `node --test tests/web/js/` (tests/web/test_js.py runs it under pytest): the pure parts of
// acknowledging from the chart and recalculating limits (acknowledge.js, limits.js, chart.logic.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { acknowledgementError, violationText } from "../../../static/js/acknowledge.js";
import { ApiError } from "../../../static/js/api.js";
import { ChartModel } from "../../../static/js/chart.logic.js";
import { basisText, comparisonRows, recalculationBody, signatureBody, zonedMidnight } from "../../../static/js/limits.js";

const LIMITS = { version: 1, center: 10, ucl: 13, lcl: 7, sigma: 1, dispersion_center: 1.128, dispersion_ucl: 3.686, dispersion_lcl: 0 };

function model() {
  const m = new ChartModel();
  m.load({
    chart_type: "imr", subgroup_size: 1, limits: LIMITS,
    points: [1, 2, 3].map((sequence) => ({ id: sequence, sequence, lot: 7, n: 1, statistic: 10, mean: 10, in_control: true, created_at: `2026-03-01T08:00:0${sequence}Z` })),
    violations: [
      { id: 11, sequence: 2, rule: 1, chart: "location", severity: "critical", requires_acknowledgement: true, acknowledged_at: null },
      { id: 12, sequence: 2, rule: 5, chart: "location", severity: "warning", requires_acknowledgement: true, acknowledged_at: null },
      { id: 13, sequence: 3, rule: 1, chart: "dispersion", severity: "critical", requires_acknowledgement: true, acknowledged_at: null },
      { id: 14, sequence: 3, rule: 2, chart: "location", severity: "warning", requires_acknowledgement: false, acknowledged_at: null },
    ],
  });
  return m;
}

describe("acknowledging", () => {
  it("lists only the violations that await acknowledgement at a point", () => {
    const m = model();
    assert.deepEqual(m.awaitingAt(2).map((v) => v.id), [11, 12]);
    assert.deepEqual(m.awaitingAt(3).map((v) => v.id), [13]); // 14 is informational
    assert.deepEqual(m.awaitingAt(1), []);
  });

  it("after a reconnect, violations no longer awaiting stop pulsing", () => {
    const m = model();
    assert.equal(m.pulsingCount(), 2);
    assert.equal(m.reconcileAwaiting([13], "2026-03-01T09:00:00Z"), 2);
    assert.equal(m.pulsingCount(), 1);
    assert.equal(m.violations.get(11).acknowledged_at, "2026-03-01T09:00:00Z");
    assert.equal(m.reconcileAwaiting([]), 1);
    assert.equal(m.pulsingCount(), 0);
  });

  it("names the rule and the chart", () => {
    const names = { "1": "a point beyond the control limits" }; // the page's rule-names block
    assert.equal(violationText({ rule: 1, chart: "location" }, "xbar_r", names), "Rule 1 on the X̄ chart: a point beyond the control limits");
    assert.equal(violationText({ rule: 1, chart: "dispersion" }, "imr", names), "Rule 1 on the MR chart: a point beyond the control limits");
    assert.equal(violationText({ rule: 3, chart: "location" }, "imr", names), "Rule 3 on the I chart: a pattern");
  });

  it("says in plain words why an acknowledgement failed", () => {
    assert.match(acknowledgementError(new ApiError("x", { status: 403 })), /Your role may not acknowledge/);
    const conflict = acknowledgementError(new ApiError("Violation 7 was acknowledged already, at 2026-03-01T09:00:00+00:00.", { status: 409 }));
    assert.match(conflict, /^Someone else acknowledged it first, so nothing was changed\. Violation 7 was/);
    assert.match(acknowledgementError(new ApiError("x", { status: 0 })), /could not be reached, so nothing was acknowledged/);
    assert.equal(acknowledgementError(new ApiError("bad", { status: 400, fields: { reason: ["Unknown code."] } })), "Please check: reason: Unknown code.");
  });
});

describe("recalculating limits", () => {
  it("draws proposed lines, dashed, on both charts and takes them into the scale", () => {
    const m = model();
    assert.deepEqual(m.proposedLines(), []);
    m.propose({ center: 10.5, ucl: 16, lcl: 5, dispersion_center: 1, dispersion_ucl: 4, dispersion_lcl: 0 });
    assert.deepEqual(m.proposedLines().map((l) => [l.label, l.value, l.style]), [
      ["New UCL", 16, "proposed"], ["New CL", 10.5, "proposed"], ["New LCL", 5, "proposed"],
    ]);
    assert.deepEqual(m.proposedLines("dispersion").map((l) => l.value), [4, 1, 0]);
    const [low, high] = m.range("location");
    assert.ok(low < 5 && high > 16);
    m.propose(null);
    assert.deepEqual(m.proposedLines(), []);
  });

  it("turns a plant date into the instant of its midnight, across daylight saving", () => {
    assert.equal(zonedMidnight("2026-03-01", "UTC"), "2026-03-01T00:00:00.000Z");
    assert.equal(zonedMidnight("2026-01-15", "Europe/Berlin"), "2026-01-14T23:00:00.000Z");
    assert.equal(zonedMidnight("2026-07-15", "Europe/Berlin"), "2026-07-14T22:00:00.000Z");
    assert.equal(zonedMidnight("2026-03-29", "Europe/Berlin", { nextDay: true }), "2026-03-29T22:00:00.000Z");
    assert.equal(zonedMidnight("2026-03-01", "America/Chicago"), "2026-03-01T06:00:00.000Z");
    assert.equal(zonedMidnight("", "UTC"), null);
  });

  it("builds the request body, and refuses a missing reason or a bad baseline", () => {
    const base = { baseline: "count", count: "30", excludeOutOfControl: true, reason: " phase I " };
    assert.deepEqual(recalculationBody(base), { exclude_out_of_control: true, reason: "phase I", sample_count: 30 });
    assert.match(recalculationBody({ ...base, reason: "  " }).error, /Say why/);
    assert.match(recalculationBody({ ...base, count: "1" }).error, /from 2 to 10000/);
    const range = recalculationBody({ ...base, baseline: "range", start: "2026-03-01", end: "2026-03-02" }, "UTC");
    assert.deepEqual(range, {
      exclude_out_of_control: true, reason: "phase I", sample_count: 10000,
      start: "2026-03-01T00:00:00.000Z", end: "2026-03-03T00:00:00.000Z",
    });
    assert.match(recalculationBody({ ...base, baseline: "range", start: "2026-03-05", end: "2026-03-01" }).error, /must not be before/);
    assert.match(recalculationBody({ ...base, baseline: "range" }).error, /Choose the first day/);
  });

  it("signs a stored change: the password, the meaning, and the user name when given", () => {
    assert.deepEqual(signatureBody({ meaning: "reviewed", username: " qs ", password: "pw" }), {
      signature: { meaning: "reviewed", username: "qs", password: "pw" },
    });
    assert.deepEqual(signatureBody({ meaning: "", username: "", password: "pw" }), {
      signature: { meaning: "approved", password: "pw" },
    });
    assert.match(signatureBody({ meaning: "approved", username: "qs", password: "" }).error, /Enter your password/);
  });

  it("compares the current and proposed limits line by line", () => {
    const rows = comparisonRows(LIMITS, { ...LIMITS, ucl: 12.5, center: 10.25, dispersion_center: null }, 2);
    assert.deepEqual(rows.slice(0, 3), [["CL", "10.00", "10.25", "+0.25"], ["UCL", "13.00", "12.50", "−0.50"], ["LCL", "7.00", "7.00", "+0.00"]]);
    assert.deepEqual(rows.find((r) => r[0] === "Dispersion CL"), ["Dispersion CL", "1.13", "—", "—"]);
    assert.deepEqual(comparisonRows(null, { center: 1, ucl: 2, lcl: 0, sigma: 0.3 }, 1).map((r) => r[1]), ["—", "—", "—", "—"]);
  });

  it("says what the limits come from, naming at most 8 left-out samples", () => {
    const excluded = Array.from({ length: 10 }, (_, i) => ({ sequence: 15 + i, why: "violation" }));
    const answer = { new: { baseline: { first_sequence: 5, last_sequence: 24 } }, samples_used: 10, excluded, method: "mrbar_d2" };
    assert.equal(
      basisText(answer),
      "From 10 samples (5 to 24), 10 left out (15: violation, 16: violation, 17: violation, 18: violation, " +
        "19: violation, 20: violation, 21: violation, 22: violation, and 2 more); σ by mrbar_d2.",
    );
    assert.equal(basisText({ ...answer, excluded: [] }), "From 10 samples (5 to 24), none left out; σ by mrbar_d2.");
  });
});
