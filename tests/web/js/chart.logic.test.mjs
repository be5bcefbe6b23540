// Run with `node --test tests/web/js/` (tests/web/test_js.py runs it under pytest).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  ChartModel,
  acknowledgementTargets,
  describePoint,
  dispersionLabel,
  dispersionOf,
  histogram,
  individualValues,
  normalFit,
  locationLabel,
  spreadLabels,
  zonesOf,
} from "../../../static/js/chart.logic.js";

const LIMITS = {
  version: 1, center: 10, ucl: 13, lcl: 7, sigma: 1, dispersion_center: 1.128, dispersion_ucl: 3.686,
  dispersion_lcl: 0, frozen: false,
};

function point(sequence, statistic, extra = {}) {
  return {
    id: 100 + sequence, sequence, lot: 7, n: 1, statistic, dispersion: null, mean: statistic, range: null,
    sd: null, in_control: true, limits_version: 1, undersized: false,
    created_at: `2026-03-01T08:00:${String(sequence).padStart(2, "0")}Z`, ...extra,
  };
}

function chartData(points, violations = [], extra = {}) {
  return {
    characteristic: 1, chart_type: "imr", subgroup_size: 1, lsl: 6, usl: 14, target: 10, limits: LIMITS,
    zones: { sigma_1: [9, 11], sigma_2: [8, 12], sigma_3: [7, 13] }, points, violations, ...extra,
  };
}

function violation(id, sequence, extra = {}) {
  return {
    id, sequence, rule: 1, chart: "location", points: [sequence], severity: "critical",
    requires_acknowledgement: true, acknowledged_at: null, ...extra,
  };
}

describe("chart kinds", () => {
  it("names the location and dispersion charts", () => {
    assert.deepEqual(
      ["imr", "xbar_r", "xbar_s", "p", "c"].map((k) => [locationLabel(k), dispersionLabel(k)]),
      [["I", "MR"], ["X̄", "R"], ["X̄", "S"], ["p", null], ["c", null]],
    );
  });
  it("computes the dispersion statistic as the server does", () => {
    assert.equal(dispersionOf("imr", { mean: 10.5 }, 9.25), 1.25);
    assert.equal(dispersionOf("imr", { mean: 10.5 }, null), null);
    assert.equal(dispersionOf("xbar_r", { mean: 1, range: 0.4, sd: 0.2 }, 3), 0.4);
    assert.equal(dispersionOf("xbar_s", { mean: 1, range: 0.4, sd: 0.2 }, 3), 0.2);
    assert.equal(dispersionOf("p", { mean: 1 }, 3), null);
  });
});

describe("zonesOf", () => {
  it("divides sigma by the square root of n for variables", () => {
    const zones = zonesOf({ center: 10, sigma: 2, ucl: 13, lcl: 7 }, "xbar_r", 4);
    assert.deepEqual(zones, { sigma_1: [9, 11], sigma_2: [8, 12], sigma_3: [7, 13] });
  });
  it("takes the stored sigma of attribute charts as it is", () => {
    const zones = zonesOf({ center: 0.1, sigma: 0.05, ucl: 0.25, lcl: 0 }, "p", 50);
    assert.deepEqual(zones.sigma_2.map((v) => +v.toFixed(6)), [0, 0.2]);
  });
  it("falls back on the distance to the UCL, and is null without limits", () => {
    assert.deepEqual(zonesOf({ center: 10, sigma: null, ucl: 16, lcl: 4 }, "imr", 1).sigma_1, [8, 12]);
    assert.equal(zonesOf(null, "imr", 1), null);
  });
});

describe("ChartModel", () => {
  it("maps chart data to uPlot series of both charts", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(chartData([point(1, 10), point(2, 11, { dispersion: 1 }), point(3, 9.5, { dispersion: 1.5 })]));
    assert.deepEqual(model.series(), {
      location: [[1, 2, 3], [10, 11, 9.5]],
      dispersion: [[1, 2, 3], [null, 1, 1.5]],
    });
  });

  it("draws limits and spec lines on the location chart, dispersion limits below", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(chartData([point(1, 10)]));
    assert.deepEqual(
      model.lines("location").map((l) => [l.label, l.value, l.style]),
      [["UCL", 13, "limit"], ["CL", 10, "center"], ["LCL", 7, "limit"], ["USL", 14, "spec"], ["LSL", 6, "spec"]],
    );
    assert.deepEqual(model.lines("dispersion").map((l) => [l.label, l.value]), [["UCL", 3.686], ["CL", 1.128], ["LCL", 0]]);
    assert.deepEqual(model.bands(), [{ key: "sigma_2", from: 8, to: 12 }, { key: "sigma_1", from: 9, to: 11 }]);
  });

  it("draws the spec warning band's inner edges dotted inside the spec lines", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(chartData([point(1, 10)], [], { spec_warning_margin: 0.5 }));
    assert.deepEqual(
      model.lines("location").filter((l) => l.style !== "limit" && l.style !== "center").map((l) => [l.label, l.value, l.style]),
      [["USL", 14, "spec"], ["LSL", 6, "spec"], ["warn", 13.5, "warning"], ["warn", 6.5, "warning"]],
    );
  });

  it("has no spec lines on attribute charts", () => {
    const model = new ChartModel();
    model.load(chartData([point(1, 0.1)], [], { chart_type: "p", lsl: 0, usl: 0.2 }));
    assert.deepEqual(model.lines("location").map((l) => l.label), ["UCL", "CL", "LCL"]);
  });

  it("appends a live sample with its moving range, ignoring repeats", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(chartData([point(1, 10), point(2, 11, { dispersion: 1 })]));
    const live = { id: 203, sequence: 3, lot: 7, n: 1, mean: 12.5, statistic: 12.5, in_control: true, undersized: false };
    assert.equal(model.append(live), true);
    assert.equal(model.append(live), false);
    assert.equal(model.append({ ...live, sequence: 2 }), false);
    assert.equal(model.points.length, 3);
    assert.equal(model.points[2].dispersion, 1.5);
    assert.equal(model.lastSequence, 3);
  });

  it("keeps at most `max` points and forgets the violations of dropped ones", () => {
    const model = new ChartModel({ kind: "imr", max: 3 });
    model.load(chartData([point(1, 10), point(2, 14, { in_control: false })], [violation(1, 2)]));
    for (const s of [3, 4]) model.append(point(s, 10));
    assert.deepEqual(model.points.map((p) => p.sequence), [2, 3, 4]);
    assert.equal(model.violations.size, 1);
    model.append(point(5, 10));
    assert.deepEqual(model.points.map((p) => p.sequence), [3, 4, 5]);
    assert.equal(model.violations.size, 0);
  });

  it("gives each point a state per chart", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(
      chartData(
        [point(1, 10), point(2, 14, { in_control: false }), point(3, 10, { undersized: true }), point(4, 10, { in_control: null })],
        [violation(1, 2, { chart: "dispersion" })],
      ),
    );
    const states = (chart) => model.points.map((p) => model.stateOf(p, chart));
    assert.deepEqual(states("location"), ["in-control", "in-control", "undersized", "pending"]);
    assert.deepEqual(states("dispersion"), ["in-control", "violation", "undersized", "pending"]);
    model.addViolation(violation(2, 2));
    assert.equal(model.stateOf(model.points[1], "location"), "violation");
  });

  it("gives every point's state at once, as stateOf gives each", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(
      chartData(
        [point(1, 10), point(2, 14, { in_control: false }), point(3, 10, { undersized: true }),
          point(4, 10, { in_control: null }), point(5, 16, { in_control: false })],
        [violation(1, 2, { chart: "dispersion" }), violation(2, 5)],
      ),
    );
    for (const chart of ["location", "dispersion"]) {
      assert.deepEqual(model.states(chart), model.points.map((p) => model.stateOf(p, chart)), chart);
    }
    assert.deepEqual(model.states("location"), ["in-control", "in-control", "undersized", "pending", "violation"]);
  });

  it("pulses violations awaiting acknowledgement until acknowledged", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(
      chartData(
        [point(1, 10), point(2, 14), point(3, 10), point(4, 10)],
        [
          violation(1, 2),
          violation(2, 2, { chart: "dispersion" }),
          violation(3, 3, { requires_acknowledgement: false }),
          violation(4, 4, { acknowledged_at: "2026-03-01T09:00:00Z" }),
        ],
      ),
    );
    assert.deepEqual(model.pulsing(), [{ sequence: 2, chart: "location" }, { sequence: 2, chart: "dispersion" }]);
    assert.equal(model.pulsingCount(), 1);
    model.acknowledge({ id: 1, acknowledged_at: "2026-03-01T10:00:00Z" });
    assert.deepEqual(model.pulsing(), [{ sequence: 2, chart: "dispersion" }]);
    model.acknowledge({ id: 2 });
    assert.equal(model.pulsingCount(), 0);
  });

  it("pulses a violation event once, at its latest point, until the event is acknowledged", () => {
    const model = new ChartModel({ kind: "imr" });
    const run = [9, 10, 11].map((s) => violation(s, s, { rule: 2, event: 7, severity: "warning" }));
    model.load(chartData([...Array(11).keys()].map((i) => point(i + 1, 11)), run));
    assert.deepEqual(model.pulsing(), [{ sequence: 11, chart: "location" }]);
    assert.equal(model.pulsingCount(), 1);
    assert.equal(model.acknowledgeEvent({ id: 8 }), false); // another event: nothing changes
    assert.equal(model.acknowledgeEvent({ id: 7, acknowledged_at: "2026-03-01T10:00:00Z" }), true);
    assert.equal(model.pulsingCount(), 0);
    assert.deepEqual([...model.violations.values()].map((v) => v.acknowledged_at), Array(3).fill("2026-03-01T10:00:00Z"));
  });

  it("marks the points with a value outside the spec, with or without control limits", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(chartData([point(1, 10), point(2, 15, { out_of_spec: true }), point(3, 5, { out_of_spec: true, invalidated: true })], [], { limits: null }));
    assert.deepEqual(model.outOfSpecPoints("location"), [{ sequence: 2, value: 15 }]);
    assert.deepEqual(model.outOfSpecPoints("dispersion"), []);
    const said = describePoint(model, model.pointAt(2));
    assert.deepEqual(said.rows.find(([label]) => label === "Specification"), ["Specification", "a value outside the spec limits"]);
  });

  it("acknowledges the violations of events through their events, the others as themselves", () => {
    const chosen = [violation(1, 9, { event: 7 }), violation(2, 9, { event: 7 }), violation(3, 9, { event: null }), violation(4, 9, { event: 8 })];
    assert.deepEqual(acknowledgementTargets(chosen), { events: [7, 8], violations: [3] });
  });

  it("marks a live violation on its point, and ignores one for a point it does not hold", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(chartData([point(1, 10), point(2, 10)]));
    assert.equal(model.addViolation(violation(9, 2, { rule: 5, points: [1, 2] })), true);
    assert.equal(model.addViolation(violation(10, 99)), false);
    assert.equal(model.points[1].in_control, false);
    assert.equal(model.pulsingCount(), 1);
    assert.deepEqual(model.patternAt(2), { location: [1, 2], dispersion: [] });
    assert.deepEqual(model.patternAt(1), { location: [], dispersion: [] });
  });

  it("keeps a violation that comes before its sample until the sample arrives", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(chartData([point(1, 10)]));
    assert.equal(model.addViolation(violation(5, 2)), false);
    assert.equal(model.pulsingCount(), 0);
    model.append(point(2, 14));
    assert.equal(model.stateOf(model.points[1]), "violation");
    assert.equal(model.pulsingCount(), 1);
  });

  it("redraws lines and zones from a limits update", () => {
    const model = new ChartModel({ kind: "xbar_r", subgroupSize: 4 });
    model.load(chartData([point(1, 10)], [], { chart_type: "xbar_r", subgroup_size: 4 }));
    model.setLimits({ version: 2, center: 20, ucl: 23, lcl: 17, sigma: 2, dispersion_center: 4, dispersion_ucl: 9, dispersion_lcl: 0 });
    assert.deepEqual(model.lines("location").slice(0, 3).map((l) => l.value), [23, 20, 17]);
    assert.deepEqual(model.zones.sigma_1, [19, 21]);
    assert.equal(model.limits.version, 2);
  });

  it("ranges the y axis over the values and every line", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(chartData([point(1, 10), point(2, 20)]));
    const [low, high] = model.range("location");
    assert.ok(low < 6 && high > 20, `${low}..${high}`);
    const [dLow] = model.range("dispersion");
    assert.equal(dLow, 0);
  });
});

describe("spreadLabels", () => {
  it("moves close labels apart and leaves the others", () => {
    assert.deepEqual(spreadLabels([100, 50, 105, 200], 13), [100, 50, 113, 200]);
    assert.deepEqual(spreadLabels([10, 10, 10], 5), [10, 15, 20]);
  });
});

describe("histogram", () => {
  it("counts every value once and spans the spec limits", () => {
    const values = [9.8, 10, 10.1, 10.2, 10.4, 9.9, 10.0, 10.3];
    const bins = histogram(values, { lsl: 9, usl: 11, bins: 4 });
    assert.equal(bins.counts.reduce((a, b) => a + b, 0), values.length);
    assert.equal(bins.edges[0], 9);
    assert.equal(bins.edges.at(-1), 11);
    assert.deepEqual(bins.counts, [0, 2, 6, 0]);
  });
  it("is empty without values and copes with one value", () => {
    assert.deepEqual(histogram([]).counts, []);
    assert.equal(histogram([5]).counts.reduce((a, b) => a + b, 0), 1);
  });
});

// As the server renders them into the page (apps/web/filters.py RULE_NAMES, the rule-names block):
// JSON object keys are strings.
const RULE_NAMES = { "1": "a point beyond the control limits", "2": "a run on one side of the centre line" };

describe("describePoint", () => {
  it("lists the values, the lot, the time and the rules broken", () => {
    const model = new ChartModel({ kind: "xbar_r" });
    model.load(
      chartData([point(1, 10.123, { n: 5, range: 0.5, sd: 0.2 })], [violation(1, 1, { rule: 2 }), violation(2, 1, { chart: "dispersion", acknowledged_at: "2026-03-01T09:00:00Z" })], { chart_type: "xbar_r" }),
    );
    const text = describePoint(model, model.points[0], { decimals: 2, unit: "mm", timeZone: "UTC", ruleNames: RULE_NAMES });
    assert.equal(text.title, "Sample 1");
    assert.deepEqual(text.rows, [
      ["Time", "2026-03-01 08:00:01 UTC"],
      ["Lot", "#7"],
      ["Mean", "10.12 mm"],
      ["n", "5"],
      ["Range", "0.50 mm"],
      ["SD", "0.20 mm"],
      ["Acknowledgement", "1 awaiting"],
    ]);
    assert.deepEqual(text.rules.map((r) => [r.text, r.awaiting]), [
      ["Rule 1 on R: a point beyond the control limits", false],
      ["Rule 2: a run on one side of the centre line", true],
    ]);
  });
  it("calls a rule the page does not name a pattern", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(chartData([point(1, 10)], [violation(1, 1, { rule: 9 })]));
    const text = describePoint(model, model.points[0], { ruleNames: RULE_NAMES });
    assert.equal(text.rules[0].text, "Rule 9: a pattern");
  });
});

describe("invalidated points", () => {
  const data = () =>
    chartData([
      point(1, 10, { dispersion: null }),
      point(2, 6.5, { invalidated: true, in_control: null, dispersion: null, invalidation_reason: "gauge dropped" }),
      point(3, 10.5, { dispersion: 0.5 }),
    ]);

  it("are a gap in the line, so the line joins their neighbours", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(data());
    assert.deepEqual(model.series().location, [[1, 2, 3], [10, null, 10.5]]);
    assert.deepEqual(model.series().dispersion, [[1, 2, 3], [null, null, 0.5]]);
  });

  it("are drawn on their own, in a state of their own, never as a violation", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(data());
    assert.deepEqual(model.states("location"), ["in-control", "invalidated", "in-control"]);
    assert.equal(model.stateOf(model.points[1]), "invalidated");
    assert.deepEqual(model.invalidatedPoints("location"), [{ sequence: 2, value: 6.5 }]);
    assert.deepEqual(model.invalidatedPoints("dispersion"), []);
  });

  it("say why in the tooltip", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(data());
    const rows = describePoint(model, model.points[1], { decimals: 1 }).rows;
    assert.deepEqual(rows.at(-1), ["Invalidated", "gauge dropped"]);
    assert.ok(!describePoint(model, model.points[0], { decimals: 1 }).rows.some(([label]) => label === "Invalidated"));
  });

  it("arrive invalidated from a live sample too", () => {
    const model = new ChartModel({ kind: "imr" });
    model.load(chartData([point(1, 10)]));
    model.append({ ...point(2, 6.5), invalidated: true, invalidation_reason: "typo" });
    assert.equal(model.points[1].invalidated, true);
    assert.equal(model.points[1].invalidation_reason, "typo");
  });
});

describe("the capability histogram counts individual values with a normal fit", () => {
  it("takes every value of a subgroup, not its mean, and leaves invalidated points out", () => {
    const points = [
      { values: [9.8, 10.2], mean: 10.0 },
      { values: [10.0, 10.4], mean: 10.2 },
      { values: [50, 50], mean: 50, invalidated: true },
      { values: null, mean: 10.1 }, // values unknown: its mean once
    ];
    assert.deepEqual(individualValues(points), [9.8, 10.2, 10.0, 10.4, 10.1]);
  });

  it("fits the normal curve to their mean and sample SD, in counts per bin", () => {
    const values = [9, 10, 11];
    const fit = normalFit(values, 0.5);
    assert.equal(fit.mean, 10);
    assert.equal(fit.sd, 1);
    // At the mean: n · width / (s · √(2π)) = 3 · 0.5 / 2.5066… = 0.5984…
    assert.ok(Math.abs(fit.at(10) - 0.598413) < 1e-6);
    assert.ok(Math.abs(fit.at(11) - 0.598413 * Math.exp(-0.5)) < 1e-6);
    assert.equal(normalFit([10], 1), null);
    assert.equal(normalFit([10, 10], 1), null);
  });
});
