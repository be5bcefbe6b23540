// What the characteristic chart shows, without the DOM: the points and their states, violations,
// limits, zones and histogram bins. chart.js draws it; tests run it in Node
// (`node --test tests/web/js/`), so nothing here may touch `window` or `document`.

import { formatNumber, formatTime } from "./format.js";

export const MAX_POINTS = 5000; // the chart page's largest range (apps/calculations/selectors.MAX_CHART_POINTS)

const LOCATION_LABELS = {
  imr: "I", xbar_r: "X̄", xbar_s: "X̄", p: "p", np: "np", c: "c", u: "u", ewma: "EWMA", cusum: "CUSUM",
};
const DISPERSION_LABELS = { imr: "MR", xbar_r: "R", xbar_s: "S" };
const ATTRIBUTE_KINDS = new Set(["p", "np", "c", "u"]);

/** A Nelson rule's name from `ruleNames`, the names the server renders into the page (the
 * `rule-names` data block, apps/web/filters.py RULE_NAMES); "a pattern" for one it does not name. */
export function ruleName(ruleNames, rule) {
  return ruleNames?.[rule] ?? "a pattern";
}

export function locationLabel(kind) {
  return LOCATION_LABELS[kind] ?? kind;
}

/** MR, R or S; null for charts without a dispersion chart (attributes, EWMA, CUSUM). */
export function dispersionLabel(kind) {
  return DISPERSION_LABELS[kind] ?? null;
}

export function isAttributes(kind) {
  return ATTRIBUTE_KINDS.has(kind);
}

/** The dispersion statistic of a sample, as the server's window.dispersion_statistic computes it. */
export function dispersionOf(kind, sample, previousStatistic) {
  if (kind === "imr") {
    return previousStatistic === null || previousStatistic === undefined
      ? null
      : Math.abs(sample.mean - previousStatistic);
  }
  if (kind === "xbar_r") return sample.range ?? null;
  if (kind === "xbar_s") return sample.sd ?? null;
  return null;
}

/** Zone lines at 1, 2 and 3 σ of the plotted statistic (as selectors.chart_data makes them). */
export function zonesOf(limits, kind, subgroupSize) {
  if (!limits || !Number.isFinite(limits.center)) return null;
  let sigma;
  if (Number.isFinite(limits.sigma) && limits.sigma > 0) {
    sigma = ATTRIBUTE_KINDS.has(kind) ? limits.sigma : limits.sigma / Math.sqrt(subgroupSize || 1);
  } else if (Number.isFinite(limits.ucl)) {
    sigma = (limits.ucl - limits.center) / 3;
  } else {
    return null;
  }
  const zone = (k) => [limits.center - k * sigma, limits.center + k * sigma];
  return { sigma_1: zone(1), sigma_2: zone(2), sigma_3: zone(3) };
}

/** Needs acknowledging: its rule asks for it and nobody has yet. */
export function awaitingAcknowledgement(violation) {
  return violation.requires_acknowledgement !== false && !violation.acknowledged_at;
}

/** What acknowledging these violations posts: the events they belong to (one acknowledgement
 * covers an event's every point, now and later), and the ids of those that belong to none. */
export function acknowledgementTargets(violations) {
  const events = [...new Set(violations.map((v) => v.event).filter((e) => e !== null && e !== undefined))];
  const alone = violations.filter((v) => v.event === null || v.event === undefined).map((v) => v.id);
  return { events, violations: alone };
}

/**
 * The chart's data: points in sequence order (at most `max`), their violations, the limits,
 * zones and spec limits. Every change returns whether the chart must be redrawn.
 */
export class ChartModel {
  constructor({ kind, subgroupSize = 1, lsl = null, usl = null, target = null, max = MAX_POINTS } = {}) {
    this.kind = kind;
    this.subgroupSize = subgroupSize;
    this.spec = { lsl, usl, target };
    this.max = max;
    this.points = [];
    this.limits = null;
    this.proposed = null; // limits a recalculation would set (a preview), drawn beside the current
    this.zones = null;
    this.violations = new Map(); // id -> violation
    // Violations of samples not held yet (a catch-up can bring them before their sample).
    this.early = new Map();
  }

  /** Replace everything with a chart-data response. */
  load(data) {
    this.kind = data.chart_type ?? this.kind;
    this.subgroupSize = data.subgroup_size ?? this.subgroupSize;
    this.spec = {
      lsl: data.lsl ?? null, usl: data.usl ?? null, target: data.target ?? null, margin: data.spec_warning_margin ?? null,
    };
    this.limits = data.limits ?? null;
    this.zones = data.zones ?? zonesOf(this.limits, this.kind, this.subgroupSize);
    this.points = (data.points ?? []).slice(-this.max).map((p) => ({ ...p }));
    this.violations = new Map((data.violations ?? []).map((v) => [v.id, { ...v }]));
    this.early = new Map();
  }

  get lastSequence() {
    return this.points.length ? this.points[this.points.length - 1].sequence : null;
  }

  get lastCreatedAt() {
    return this.points.length ? this.points[this.points.length - 1].created_at : null;
  }

  /** Add a sample (a WebSocket `sample` payload or a catch-up row); false if it is not new. */
  append(sample) {
    const last = this.points[this.points.length - 1];
    if (last && sample.sequence <= last.sequence) return false;
    // As the server's window: the moving range is taken from the previous point held.
    const previous = last ? last.statistic : null;
    const dispersion = sample.dispersion !== undefined ? sample.dispersion : dispersionOf(this.kind, sample, previous);
    this.points.push({
      id: sample.id, sequence: sample.sequence, lot: sample.lot, n: sample.n, statistic: sample.statistic,
      values: sample.values ?? null,
      dispersion, mean: sample.mean, range: sample.range ?? null, sd: sample.sd ?? null,
      in_control: sample.in_control ?? null, limits_version: sample.limits_version ?? null,
      undersized: Boolean(sample.undersized), invalidated: Boolean(sample.invalidated),
      invalidation_reason: sample.invalidation_reason ?? "", created_at: sample.created_at,
    });
    for (const [id, v] of this.early) {
      if (v.sequence === sample.sequence) {
        this.early.delete(id);
        this.addViolation(v);
      }
    }
    if (this.points.length > this.max) {
      const dropped = this.points.splice(0, this.points.length - this.max);
      const gone = new Set(dropped.map((p) => p.sequence));
      for (const [id, v] of this.violations) if (gone.has(v.sequence)) this.violations.delete(id);
    }
    return true;
  }

  /** A new violation (or one seen again); its point turns out of control. False if its point is
   * not held (one of a sample still to come is kept until the sample arrives). */
  addViolation(violation) {
    const point = this.pointAt(violation.sequence);
    if (!point) {
      if (this.lastSequence === null || violation.sequence > this.lastSequence) this.early.set(violation.id, violation);
      return false;
    }
    const known = this.violations.get(violation.id);
    this.violations.set(violation.id, { ...known, ...violation });
    point.in_control = false;
    return true;
  }

  /** An `ack_update`: the violation stops awaiting acknowledgement. */
  acknowledge(update) {
    const violation = this.violations.get(update.id);
    if (!violation) return false;
    violation.acknowledged_at = update.acknowledged_at ?? new Date().toISOString();
    violation.acknowledged_by_name = update.acknowledged_by_name;
    return true;
  }

  /** An `event_ack`: every violation of the event stops awaiting acknowledgement (those it gathers
   * later arrive acknowledged). */
  acknowledgeEvent(update) {
    let changed = false;
    for (const violation of this.violations.values()) {
      if (violation.event !== update.id || violation.acknowledged_at) continue;
      violation.acknowledged_at = update.acknowledged_at ?? new Date().toISOString();
      violation.acknowledged_by_name = update.acknowledged_by_name;
      changed = true;
    }
    return changed;
  }

  /** A `limits_update` payload (or a limits object): new lines and zones. */
  setLimits(limits) {
    this.limits = { ...limits };
    this.zones = zonesOf(this.limits, this.kind, this.subgroupSize);
    return true;
  }

  /** Show (or, with null, stop showing) limits a recalculation would set. */
  propose(limits) {
    this.proposed = limits ? { ...limits } : null;
    return true;
  }

  /** After a reconnect: `awaitingIds` are the held violations that still await acknowledgement
   * (GET /violations/?acknowledged=false); any other held one that awaits here was acknowledged
   * while the page was away. Returns how many stopped awaiting. */
  reconcileAwaiting(awaitingIds, at = new Date().toISOString()) {
    const still = new Set(awaitingIds);
    let changed = 0;
    for (const violation of this.violations.values()) {
      if (awaitingAcknowledgement(violation) && !still.has(violation.id)) {
        violation.acknowledged_at = at;
        changed += 1;
      }
    }
    return changed;
  }

  /** The violations at a point that await acknowledgement. */
  awaitingAt(sequence) {
    return this.violationsAt(sequence).filter(awaitingAcknowledgement);
  }

  pointAt(sequence) {
    // Points are in sequence order; a binary search keeps hover and marking cheap at 1,000.
    let low = 0;
    let high = this.points.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const found = this.points[middle].sequence;
      if (found === sequence) return this.points[middle];
      if (found < sequence) low = middle + 1;
      else high = middle - 1;
    }
    return null;
  }

  indexOf(sequence) {
    const point = this.pointAt(sequence);
    return point ? this.points.indexOf(point) : -1;
  }

  /** The violations found at a point, by rule. */
  violationsAt(sequence) {
    return [...this.violations.values()]
      .filter((v) => v.sequence === sequence)
      .sort((a, b) => a.rule - b.rule || a.chart.localeCompare(b.chart));
  }

  /** "invalidated" (its result was invalidated: never judged), "violation", "undersized",
   * "in-control" or "pending" (not judged: no limits yet) on one chart. */
  stateOf(point, chart = "location") {
    if (point.invalidated) return "invalidated";
    const violations = this.violationsAt(point.sequence);
    if (violations.some((v) => v.chart === chart)) return "violation";
    if (chart === "location" && point.in_control === false && !violations.length) return "violation";
    if (point.undersized) return "undersized";
    return point.in_control === null ? "pending" : "in-control";
  }

  /** stateOf for every point, in order, from one pass over the violations (stateOf reads them
   * all for each point: 5 000 points on a redraw would be 5 000 passes). */
  states(chart = "location") {
    const onChart = new Set();
    const onAny = new Set();
    for (const v of this.violations.values()) {
      onAny.add(v.sequence);
      if (v.chart === chart) onChart.add(v.sequence);
    }
    return this.points.map((p) => {
      if (p.invalidated) return "invalidated";
      if (onChart.has(p.sequence)) return "violation";
      if (chart === "location" && p.in_control === false && !onAny.has(p.sequence)) return "violation";
      if (p.undersized) return "undersized";
      return p.in_control === null ? "pending" : "in-control";
    });
  }

  /** [{sequence, chart}] of the points whose violations await acknowledgement. */
  pulsing() {
    // One point per violation event (its latest): a run of 30 points is one alarm, not 22.
    const latest = new Map();
    for (const v of this.violations.values()) {
      if (!awaitingAcknowledgement(v) || !this.pointAt(v.sequence)) continue;
      const key = v.event ?? `violation:${v.id}`;
      const held = latest.get(key);
      if (!held || v.sequence > held.sequence) latest.set(key, v);
    }
    const seen = new Map();
    for (const v of latest.values()) seen.set(`${v.chart}:${v.sequence}`, v);
    return [...seen.values()].map((v) => ({ sequence: v.sequence, chart: v.chart }));
  }

  /** How many samples pulse (a sample with location and dispersion violations counts once). */
  pulsingCount() {
    return new Set(this.pulsing().map((p) => p.sequence)).size;
  }

  /** The sequences of the patterns completed at a point, per chart ({location: [...], dispersion: [...]}). */
  patternAt(sequence) {
    const pattern = { location: new Set(), dispersion: new Set() };
    for (const v of this.violationsAt(sequence)) for (const s of v.points ?? [sequence]) pattern[v.chart]?.add(s);
    return { location: [...pattern.location].sort((a, b) => a - b), dispersion: [...pattern.dispersion].sort((a, b) => a - b) };
  }

  /** uPlot data: [sequences, statistics] and [sequences, dispersions]. An invalidated point is a
   * gap in the line (drawn on its own by invalidatedAt), so the line joins its neighbours. */
  series() {
    const xs = this.points.map((p) => p.sequence);
    const kept = (p, value) => (p.invalidated ? null : value ?? null);
    return {
      location: [xs, this.points.map((p) => kept(p, p.statistic))],
      dispersion: [xs, this.points.map((p) => kept(p, p.dispersion))],
    };
  }

  /** The invalidated points of a chart to mark on their own: [{sequence, value}] (no dispersion: an
   * invalidated point has no moving range). */
  invalidatedPoints(chart = "location") {
    return this.points
      .filter((p) => p.invalidated)
      .map((p) => ({ sequence: p.sequence, value: chart === "location" ? p.statistic : p.dispersion ?? null }))
      .filter((p) => p.value !== null && Number.isFinite(p.value));
  }

  /** The points with a value outside the specification limits (spec alarms), on the location
   * chart: marked apart, with or without control limits. [{sequence, value}] */
  outOfSpecPoints(chart = "location") {
    if (chart !== "location") return [];
    return this.points
      .filter((p) => p.out_of_spec && !p.invalidated && Number.isFinite(p.statistic))
      .map((p) => ({ sequence: p.sequence, value: p.statistic }));
  }

  /** Horizontal lines of a chart: [{key, label, value, style}], style "center" | "limit" | "spec" |
   * "warning" (the spec warning band's inner edges). */
  lines(chart = "location") {
    const limits = this.limits;
    const lines = [];
    const add = (key, label, value, style) => {
      if (value !== null && value !== undefined && Number.isFinite(value)) lines.push({ key, label, value, style });
    };
    if (chart === "location") {
      if (limits) {
        add("ucl", "UCL", limits.ucl, "limit");
        add("center", "CL", limits.center, "center");
        add("lcl", "LCL", limits.lcl, "limit");
      }
      if (!ATTRIBUTE_KINDS.has(this.kind)) {
        add("usl", "USL", this.spec.usl, "spec");
        add("lsl", "LSL", this.spec.lsl, "spec");
        const margin = this.spec.margin;
        if (margin) {
          if (this.spec.usl !== null) add("warn-usl", "warn", this.spec.usl - margin, "warning");
          if (this.spec.lsl !== null) add("warn-lsl", "warn", this.spec.lsl + margin, "warning");
        }
      }
    } else if (limits) {
      add("ucl", "UCL", limits.dispersion_ucl, "limit");
      add("center", "CL", limits.dispersion_center, "center");
      add("lcl", "LCL", limits.dispersion_lcl, "limit");
    }
    return lines;
  }

  /** The proposed limits' lines (style "proposed"), labelled "New UCL" etc.; none without a preview. */
  proposedLines(chart = "location") {
    const proposed = this.proposed;
    if (!proposed) return [];
    const keys = chart === "location" ? ["ucl", "center", "lcl"] : ["dispersion_ucl", "dispersion_center", "dispersion_lcl"];
    const labels = ["New UCL", "New CL", "New LCL"];
    return keys
      .map((key, i) => ({ key: `proposed_${key}`, label: labels[i], value: proposed[key], style: "proposed" }))
      .filter((line) => line.value !== null && line.value !== undefined && Number.isFinite(line.value));
  }

  /** Shaded bands of the location chart: ±2σ (outer) and ±1σ (inner). */
  bands() {
    if (!this.zones) return [];
    return [
      { key: "sigma_2", from: this.zones.sigma_2[0], to: this.zones.sigma_2[1] },
      { key: "sigma_1", from: this.zones.sigma_1[0], to: this.zones.sigma_1[1] },
    ];
  }

  /** The y range of a chart: its values and lines, with a little room. */
  range(chart = "location", from = null, to = null) {
    const values = this.points
      .filter((p) => (from === null || p.sequence >= from) && (to === null || p.sequence <= to))
      .map((p) => (chart === "location" ? p.statistic : p.dispersion));
    const lines = [...this.lines(chart), ...this.proposedLines(chart)];
    const all = [...values, ...lines.map((l) => l.value)].filter((v) => v !== null && Number.isFinite(v));
    if (!all.length) return [0, 1];
    let low = Math.min(...all);
    let high = Math.max(...all);
    const pad = high > low ? (high - low) * 0.08 : Math.abs(high) * 0.1 || 1;
    low -= pad;
    high += pad;
    if (chart === "dispersion" && low < 0 && Math.min(...all) >= 0) low = 0;
    return [low, high];
  }
}

/** Label positions (y, downwards) moved apart so that none is closer than `gap` to another;
 * returned in the order given. */
export function spreadLabels(ys, gap) {
  const order = ys.map((y, i) => [y, i]).sort((a, b) => a[0] - b[0]);
  const placed = new Array(ys.length);
  let previous = -Infinity;
  for (const [y, i] of order) {
    previous = Math.max(y, previous + gap);
    placed[i] = previous;
  }
  return placed;
}

/**
 * Bins of a histogram of `values` that also spans the spec limits: {edges, counts, width}.
 * Sturges' rule for the number of bins (5 to 30).
 */
export function histogram(values, { lsl = null, usl = null, bins = null } = {}) {
  const finite = values.filter((v) => v !== null && Number.isFinite(v));
  if (!finite.length) return { edges: [], counts: [], width: 0 };
  const bounds = [...finite, lsl, usl].filter((v) => v !== null && Number.isFinite(v));
  let low = Math.min(...bounds);
  let high = Math.max(...bounds);
  if (high === low) {
    low -= 0.5;
    high += 0.5;
  }
  const count = bins ?? Math.min(30, Math.max(5, Math.ceil(Math.log2(finite.length) + 1)));
  const width = (high - low) / count;
  const edges = Array.from({ length: count + 1 }, (_, i) => low + i * width);
  const counts = new Array(count).fill(0);
  for (const v of finite) counts[Math.min(count - 1, Math.floor((v - low) / width))] += 1;
  return { edges, counts, width };
}

/**
 * The individual values of the points (not their means: a histogram of means flatters capability),
 * invalidated points left out; a point without its values counts its mean once.
 */
export function individualValues(points) {
  return points
    .filter((p) => !p.invalidated)
    .flatMap((p) => (Array.isArray(p.values) && p.values.length ? p.values : [p.mean]))
    .filter((v) => v !== null && Number.isFinite(v));
}

/**
 * The normal curve fitted to `values` (their mean and sample SD), as expected counts per bin of
 * `width`: {mean, sd, at(x)}; null for fewer than 2 values or no spread.
 */
export function normalFit(values, width) {
  const n = values.length;
  if (n < 2) return null;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  if (!(sd > 0)) return null;
  const scale = (n * width) / (sd * Math.sqrt(2 * Math.PI));
  return { mean, sd, at: (x) => scale * Math.exp(-0.5 * ((x - mean) / sd) ** 2) };
}

/** The tooltip's rows for a point: [[label, text]] and its rules. */
export function describePoint(model, point, { decimals = 2, unit = "", timeZone = "UTC", ruleNames = {} } = {}) {
  const kind = model.kind;
  const withUnit = (v) => formatNumber(v, decimals, unit);
  const rows = [["Time", formatTime(point.created_at, timeZone)], ["Lot", `#${point.lot}`]];
  if (isAttributes(kind)) {
    rows.push(["Count", formatNumber(point.mean, 0)], ["n", String(point.n)]);
    if (kind === "p" || kind === "u") rows.push([locationLabel(kind), formatNumber(point.statistic, Math.max(decimals, 3))]);
  } else {
    rows.push([point.n > 1 ? "Mean" : "Value", withUnit(point.mean)], ["n", String(point.n)]);
    if (kind === "imr") rows.push(["MR", withUnit(point.dispersion)]);
    if (point.n > 1 && point.range !== null) rows.push(["Range", withUnit(point.range)]);
    if (point.n > 1 && point.sd !== null) rows.push(["SD", withUnit(point.sd)]);
  }
  if (point.undersized) rows.push(["Subgroup", "undersized"]);
  if (point.invalidated) rows.push(["Invalidated", point.invalidation_reason || "yes"]);
  if (point.out_of_spec) rows.push(["Specification", "a value outside the spec limits"]);
  const dispersion = dispersionLabel(kind) ?? "dispersion";
  const rules = model.violationsAt(point.sequence).map((v) => ({
    rule: v.rule,
    chart: v.chart,
    text: `Rule ${v.rule}${v.chart === "dispersion" ? ` on ${dispersion}` : ""}: ${ruleName(ruleNames, v.rule)}`,
    awaiting: awaitingAcknowledgement(v),
  }));
  const awaiting = rules.filter((r) => r.awaiting).length;
  if (rules.length) rows.push(["Acknowledgement", awaiting ? `${awaiting} awaiting` : "done"]);
  return { title: `Sample ${point.sequence}`, rows, rules };
}
