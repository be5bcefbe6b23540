// The characteristic chart page (templates/web/chart.html): the location and dispersion charts
// with limits, zones, spec lines and violations, live over the WebSocket, with a tooltip, zoom,
// keyboard navigation and the capability summary. What is drawn comes from chart.logic.js (pure,
// tested in Node); this module owns the DOM and uPlot (static/vendor/uplot, a global script).
//
// For tests: the chart region carries data-points (samples held), data-pulsing (samples whose
// violations await acknowledgement), data-last-sequence, and the limits drawn (data-center,
// data-ucl, data-lcl, data-limits-version; data-proposed-ucl while a recalculation is previewed),
// updated on every change. Acknowledging (acknowledge.js) and changing limits (limits.js) hook in
// at the end.

import { AcknowledgeDialog } from "./acknowledge.js";
import { apiGet, apiGetAll } from "./api.js";
import { CapabilityPanel } from "./capability.js";
import { formatNumber, hourMinute } from "./format.js";
import {
  ChartModel,
  MAX_POINTS,
  describePoint,
  dispersionLabel,
  isAttributes,
  locationLabel,
} from "./chart.logic.js";
import { COLOURS, drawLineLabels, drawLines, drawMarkers, drawZones } from "./chartdraw.js";
import { LimitsPanel } from "./limits.js";
import { Live, statusBadge } from "./live.js";
import { pageData } from "./page.js";
import { fillTooltip, placeTooltip, spokenPoint } from "./tooltip.js";

const uPlot = window.uPlot;
const page = document.getElementById("chart-page");

const HEIGHTS = { location: 300, dispersion: 170 };

const config = {
  id: Number(page.dataset.characteristicId),
  name: page.dataset.name ?? "",
  unit: page.dataset.unit ?? "",
  decimals: Number.parseInt(page.dataset.decimals, 10),
  timeZone: page.dataset.timeZone || "UTC",
  ruleNames: pageData("rule-names"),
};
if (!Number.isInteger(config.decimals)) config.decimals = 2;

const el = {
  status: page.querySelector("[data-chart-status]"),
  region: page.querySelector("[data-chart]"),
  meta: page.querySelector("[data-chart-meta]"),
  plots: {
    location: page.querySelector('[data-plot="location"]'),
    dispersion: page.querySelector('[data-plot="dispersion"]'),
  },
  titles: {
    location: page.querySelector('[data-plot-title="location"]'),
    dispersion: page.querySelector('[data-plot-title="dispersion"]'),
  },
  tooltip: page.querySelector("[data-chart-tooltip]"),
  announce: page.querySelector("[data-chart-announce]"),
  ranges: [...page.querySelectorAll("[data-range]")],
  resetZoom: page.querySelector("[data-zoom-reset]"),
  acknowledge: page.querySelector("[data-acknowledge-open]"), // only for roles that may acknowledge
};

const model = new ChartModel();
const capability = new CapabilityPanel({
  root: page, characteristicId: config.id, decimals: config.decimals, colours: COLOURS,
});
const state = {
  limit: 100,
  loading: true,
  failed: false, // the last load failed: the error shows until "Try again" or a reconnect loads
  queued: [], // live messages that arrive while the chart data loads
  plots: {}, // chart -> uPlot
  zoomed: false,
  hovered: null, // sequence under the mouse or the keyboard
  keyboardIndex: null,
  syncingScale: false,
};

// --- Status: loading, empty, error ---------------------------------------------------------

function showStatus(kind, message, { retry = false } = {}) {
  el.status.hidden = kind === "ready";
  el.status.className = kind === "error" ? "notice notice--error" : kind === "empty" ? "empty" : "loading";
  el.status.replaceChildren();
  if (kind === "ready") return;
  const text = document.createElement("p");
  text.textContent = message;
  el.status.append(text);
  if (retry) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button";
    button.textContent = "Try again";
    button.addEventListener("click", () => load());
    el.status.append(button);
  }
}

function publishCounts() {
  const data = el.region.dataset;
  data.points = String(model.points.length);
  data.pulsing = String(model.pulsingCount());
  data.lastSequence = String(model.lastSequence ?? "");
  data.limitsVersion = model.limits ? String(model.limits.version ?? "") : "";
  for (const key of ["center", "ucl", "lcl"]) data[key] = model.limits ? String(model.limits[key]) : "";
  data.proposedUcl = model.proposed ? String(model.proposed.ucl) : "";
  if (el.acknowledge) el.acknowledge.disabled = model.pulsingCount() === 0;
}

// --- Loading ---------------------------------------------------------------------------------

async function load(limit = state.limit) {
  state.limit = limit;
  state.loading = true;
  el.ranges.forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.range) === limit)));
  showStatus("loading", "Loading the chart…");
  el.region.setAttribute("aria-busy", "true");
  try {
    const data = await apiGet(`/api/v1/characteristics/${config.id}/chart-data/?limit=${limit}`);
    model.load(data);
  } catch (error) {
    // Live messages wait for a successful load: points on top of nothing would mislead.
    state.loading = false;
    state.failed = true;
    state.queued = [];
    el.region.setAttribute("aria-busy", "false");
    el.region.hidden = true;
    showStatus("error", `The chart could not be loaded: ${error.message}`, { retry: true });
    capability.draw(model);
    return;
  }
  state.loading = false;
  state.failed = false;
  el.region.setAttribute("aria-busy", "false");
  const queued = state.queued.splice(0);
  queued.forEach((message) => handleMessage(message, { draw: false }));
  describeChart();
  hooks.limits?.refresh();
  state.zoomed = false;
  render();
}

function describeChart() {
  const kind = model.kind;
  const dispersion = dispersionLabel(kind);
  const name = dispersion ? `${locationLabel(kind)}-${dispersion}` : locationLabel(kind);
  const parts = [`${name} chart`, `subgroup size ${model.subgroupSize}`];
  if (config.unit) parts.push(`unit ${config.unit}`);
  if (!isAttributes(kind)) {
    if (model.spec.lsl !== null) parts.push(`LSL ${formatNumber(model.spec.lsl, config.decimals)}`);
    if (model.spec.usl !== null) parts.push(`USL ${formatNumber(model.spec.usl, config.decimals)}`);
  }
  if (model.limits) {
    parts.push(`limits v${model.limits.version}${model.limits.frozen ? " (frozen)" : ""}`);
  } else {
    parts.push("no control limits yet: points are not judged");
  }
  el.meta.textContent = parts.join(" · ");
  el.titles.location.textContent = `${locationLabel(kind)} chart`;
  el.titles.dispersion.textContent = dispersion ? `${dispersion} chart` : "";
}

// --- Drawing ---------------------------------------------------------------------------------

function render() {
  publishCounts();
  if (!model.points.length) {
    destroyPlots();
    el.region.hidden = true;
    showStatus("empty", "No samples yet — values will appear here as they arrive.");
    capability.draw(model);
    return;
  }
  showStatus("ready");
  el.region.hidden = false;
  const charts = dispersionLabel(model.kind) ? ["location", "dispersion"] : ["location"];
  el.plots.dispersion.parentElement.hidden = charts.length === 1;
  const series = model.series();
  for (const chart of charts) {
    const plot = state.plots[chart];
    if (plot) plot.series[1].width = lineWidth();
    if (plot) plot.setData(series[chart], !state.zoomed);
    else state.plots[chart] = makePlot(chart, series[chart]);
  }
  el.resetZoom.disabled = !state.zoomed;
  capability.draw(model);
}

function destroyPlots() {
  for (const plot of Object.values(state.plots)) plot.destroy();
  state.plots = {};
}

function plotWidth() {
  return Math.max(280, el.region.clientWidth || page.clientWidth || 600);
}

function plotHeight(chart) {
  return window.innerWidth < 600 ? Math.round(HEIGHTS[chart] * 0.75) : HEIGHTS[chart];
}

// Above 1 000 points the line is 1 px: a canvas draws a 1 px line of thousands of points far faster
// (tests/e2e/test_browser_chart_speed.py: p95 frame 200 ms -> 17 ms with 5 000 points, 10 new a
// second), and at that density a wider one looks the same.
function lineWidth() {
  return model.points.length > 1000 ? 1 : 1.5;
}

function valueDecimals(chart) {
  if (chart === "location" && (model.kind === "p" || model.kind === "u")) return Math.max(config.decimals, 3);
  return config.decimals;
}

function makePlot(chart, data) {
  const decimals = valueDecimals(chart);
  const options = {
    width: plotWidth(),
    height: plotHeight(chart),
    legend: { show: false },
    scales: {
      x: { time: false, range: xRange },
      y: {
        range: (u) => model.range(chart, u.scales.x.min ?? null, u.scales.x.max ?? null),
      },
    },
    axes: [
      {
        stroke: COLOURS.axis,
        grid: { stroke: COLOURS.grid },
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000],
        values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : "")),
        label: chart === "dispersion" || !dispersionLabel(model.kind) ? "Sample" : undefined,
      },
      {
        stroke: COLOURS.axis,
        grid: { stroke: COLOURS.grid },
        size: 64,
        values: (u, splits) => splits.map((v) => formatNumber(v, decimals)),
      },
    ],
    series: [
      { label: "Sample" },
      {
        label: chart === "location" ? locationLabel(model.kind) : dispersionLabel(model.kind),
        stroke: COLOURS.line,
        width: lineWidth(),
        spanGaps: true, // an invalidated point is a gap: the line joins its neighbours
        points: { show: false },
      },
    ],
    cursor: {
      sync: { key: `chart-${config.id}`, setSeries: false },
      drag: { x: true, y: false, setScale: true },
      points: { size: 12, width: 2, fill: "#fff", stroke: COLOURS.axis },
      y: false,
    },
    hooks: {
      drawClear: [(u) => chart === "location" && drawZones(u, model)],
      drawAxes: [(u) => drawLines(u, chart, model)],
      draw: [
        (u) => drawMarkers(u, chart, model),
        (u) => drawLineLabels(u, chart, model, valueDecimals(chart)),
        (u) => placeMarks(u, chart),
      ],
      setScale: [(u, key) => key === "x" && syncZoom(u, chart)],
      setCursor: [(u) => hover(u, chart)],
    },
  };
  return new uPlot(options, data, el.plots[chart]);
}

// Half a sample of room either side of the whole data, so the first and last points are whole;
// a zoom (or a synced zoom from the other chart) is taken as it is, else the charts would keep
// widening each other.
function xRange(u, min, max) {
  const xs = u.data[0];
  if (!xs.length || min > xs[0] || max < xs[xs.length - 1]) return [min, max];
  return [Math.min(min, xs[0] - 0.5), Math.max(max, xs[xs.length - 1] + 0.5)];
}

// DOM marks over the canvas: pulsing rings (CSS animation) and the hovered violation's pattern.
function placeMarks(u, chart) {
  const layer = markLayer(u);
  layer.replaceChildren();
  const min = u.scales.x.min;
  const max = u.scales.x.max;
  const add = (sequence, className) => {
    const index = model.indexOf(sequence);
    const value = index < 0 ? null : u.data[1][index];
    if (value === null || value === undefined || sequence < min || sequence > max) return;
    const mark = document.createElement("span");
    mark.className = className;
    mark.style.left = `${u.valToPos(sequence, "x")}px`;
    mark.style.top = `${u.valToPos(value, "y")}px`;
    layer.append(mark);
  };
  for (const pulse of model.pulsing()) if (pulse.chart === chart) add(pulse.sequence, "chart-mark chart-mark--pulse");
  if (state.hovered !== null) {
    for (const sequence of model.patternAt(state.hovered)[chart]) add(sequence, "chart-mark chart-mark--pattern");
  }
}

function markLayer(u) {
  let layer = u.over.querySelector(".chart-marks");
  if (!layer) {
    layer = document.createElement("div");
    layer.className = "chart-marks";
    layer.setAttribute("aria-hidden", "true");
    u.over.append(layer);
  }
  return layer;
}

// --- Zoom ------------------------------------------------------------------------------------

function syncZoom(u, chart) {
  const xs = u.data[0];
  if (!xs.length) return;
  const { min, max } = u.scales.x;
  state.zoomed = min > xs[0] + 1e-9 || max < xs[xs.length - 1] - 1e-9;
  el.resetZoom.disabled = !state.zoomed;
  if (state.syncingScale) return;
  state.syncingScale = true;
  for (const [other, plot] of Object.entries(state.plots)) {
    if (other !== chart && (plot.scales.x.min !== min || plot.scales.x.max !== max)) plot.setScale("x", { min, max });
  }
  state.syncingScale = false;
}

function resetZoom() {
  state.zoomed = false;
  const series = model.series();
  for (const [chart, plot] of Object.entries(state.plots)) plot.setData(series[chart], true);
  el.resetZoom.disabled = true;
}

// --- Tooltip and keyboard --------------------------------------------------------------------

function hover(u, chart) {
  const index = u.cursor.idx;
  const sequence = index === null || index === undefined ? null : u.data[0][index];
  if (sequence === state.hovered) return;
  state.hovered = sequence;
  if (sequence === null) {
    if (document.activeElement !== el.region) hideTooltip();
  } else {
    showTooltip(index, u);
  }
  for (const [name, plot] of Object.entries(state.plots)) placeMarks(plot, name);
}

function showTooltip(index, u) {
  const point = model.points[index];
  if (!point) return;
  const text = describePoint(model, point, { decimals: config.decimals, unit: config.unit, timeZone: config.timeZone, ruleNames: config.ruleNames });
  fillTooltip(el.tooltip, text, point.in_control);
  placeTooltip(el.tooltip, el.region, u, u.data[0][index], u.data[1][index] ?? point.statistic);
  return text;
}

function hideTooltip() {
  el.tooltip.hidden = true;
}

function moveKeyboard(event) {
  const plot = state.plots.location;
  if (!plot || !model.points.length) return;
  const last = model.points.length - 1;
  const steps = { ArrowLeft: -1, ArrowRight: 1, PageUp: -10, PageDown: 10 };
  let index = state.keyboardIndex ?? last;
  if (event.key in steps) index = state.keyboardIndex === null ? last : index + steps[event.key] * (event.shiftKey ? 10 : 1);
  else if (event.key === "Home") index = 0;
  else if (event.key === "End") index = last;
  else if (event.key === "Escape") {
    state.keyboardIndex = null;
    hideTooltip();
    return;
  } else if (event.key === "Enter" && state.keyboardIndex !== null) {
    event.preventDefault();
    openAcknowledge(model.points[state.keyboardIndex]?.sequence);
    return;
  } else return;
  event.preventDefault();
  index = Math.max(0, Math.min(last, index));
  state.keyboardIndex = index;
  const point = model.points[index];
  // Bring the point into a zoomed view.
  const { min, max } = plot.scales.x;
  if (point.sequence < min || point.sequence > max) {
    const width = max - min;
    const start = Math.max(model.points[0].sequence, point.sequence - width / 2);
    plot.setScale("x", { min: start, max: start + width });
  }
  plot.setCursor({ left: plot.valToPos(point.sequence, "x"), top: plot.valToPos(point.statistic, "y") });
  const text = showTooltip(index, plot);
  if (text) el.announce.textContent = spokenPoint(text);
}

// --- Live ------------------------------------------------------------------------------------

/** A notice of the header (data health, an overdue sample): its words, or hidden without any. */
function showNotice(element, text) {
  if (!element) return;
  element.textContent = text;
  element.hidden = !text;
}

function handleMessage(message, { draw = true } = {}) {
  const payload = message.payload ?? {};
  if (payload.characteristic !== config.id || state.failed) return;
  if (state.loading) {
    state.queued.push(message);
    return;
  }
  let changed = false;
  switch (message.type) {
    case "sample":
      changed = model.append(payload);
      break;
    case "violation":
      changed = model.addViolation(payload);
      if (changed && draw) el.announce.textContent = `Sample ${payload.sequence} broke rule ${payload.rule} on the ${payload.chart} chart.`;
      break;
    case "ack_update":
      changed = model.acknowledge(payload);
      hooks.acknowledge?.update(payload);
      break;
    case "event_ack":
      changed = model.acknowledgeEvent(payload);
      break;
    case "limits_update":
      changed = applyLimits(payload, { draw });
      break;
    case "statistics_update":
      if (payload.scope === "product") capability.schedule();
      break;
    case "health_update":
      showNotice(document.querySelector("[data-chart-health]"), payload.state === "ok" ? "" : payload.summary);
      break;
    case "schedule_update":
      showNotice(
        document.querySelector("[data-chart-overdue]"),
        payload.state === "overdue" ? `⏰ Sample overdue since ${hourMinute.format(new Date(payload.overdue_at))}` : "",
      );
      break;
    default:
      break;
  }
  if (changed && draw) renderSoon();
}

// Live messages redraw at most once a frame: a burst (a catch-up, a busy line) is one redraw.
let renderPending = false;
function renderSoon() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    render();
  });
}

function applyLimits(limits, { draw = true } = {}) {
  model.setLimits(limits);
  describeChart();
  hooks.limits?.refresh();
  if (draw) rescaleY();
  return true;
}

function rescaleY() {
  for (const [chart, plot] of Object.entries(state.plots)) {
    const [min, max] = model.range(chart, plot.scales.x.min ?? null, plot.scales.x.max ?? null);
    plot.setScale("y", { min, max });
  }
}

async function catchUp() {
  if (state.loading) return;
  const since = model.lastSequence;
  if (since === null || state.failed) {
    await load();
    return;
  }
  const after = model.lastCreatedAt;
  try {
    const samples = await apiGetAll(
      `/api/v1/samples/?characteristic=${config.id}&since=${since}&page_size=1000`,
      { limit: MAX_POINTS },
    );
    samples.forEach((sample) => model.append(sample));
    const violations = await apiGetAll(
      `/api/v1/violations/?characteristic=${config.id}&since=${encodeURIComponent(after)}`,
      { limit: MAX_POINTS },
    );
    violations.forEach((violation) => model.addViolation(violation));
    // Acknowledgements made while away: re-read which held violations still await one.
    const oldest = model.points[0]?.created_at;
    if (oldest && model.pulsingCount()) {
      const awaiting = await apiGetAll(
        `/api/v1/violations/?characteristic=${config.id}&acknowledged=false&created_after=${encodeURIComponent(oldest)}`,
        { limit: MAX_POINTS * 8 },
      );
      model.reconcileAwaiting(awaiting.map((v) => v.id));
    }
  } catch (error) {
    el.announce.textContent = `Catching up after the reconnect failed: ${error.message}`;
    return;
  }
  render();
  capability.schedule();
}

// --- Acknowledging and limits (acknowledge.js, limits.js; their markup only for allowed roles) --

const hooks = { acknowledge: null, limits: null };

function openAcknowledge(sequence) {
  if (!hooks.acknowledge || sequence === undefined || sequence === null) return;
  if (!hooks.acknowledge.open(sequence, el.region)) {
    el.announce.textContent = `Sample ${sequence} has no violation awaiting acknowledgement.`;
  }
}

// The keyboard-selected point if it awaits acknowledgement, else the latest one that does.
function openAcknowledgeLatest() {
  const selected = model.points[state.keyboardIndex ?? -1];
  if (selected && model.awaitingAt(selected.sequence).length) return openAcknowledge(selected.sequence);
  const pulsing = model.pulsing().map((p) => p.sequence);
  if (pulsing.length) openAcknowledge(Math.max(...pulsing));
}

function startHooks() {
  const dialog = document.querySelector("[data-ack-dialog]");
  if (dialog) {
    hooks.acknowledge = new AcknowledgeDialog({
      dialog, model, config,
      onAcknowledged: (done) => {
        el.announce.textContent = `Acknowledged ${done.length} violation${done.length === 1 ? "" : "s"}.`;
        render();
      },
    });
    el.acknowledge?.addEventListener("click", openAcknowledgeLatest);
    // A click (not the end of a drag-to-zoom) on a point that awaits acknowledgement opens it.
    let down = null;
    el.region.addEventListener("mousedown", (event) => (down = [event.clientX, event.clientY]));
    el.region.addEventListener("click", (event) => {
      const moved = down && Math.hypot(event.clientX - down[0], event.clientY - down[1]) > 4;
      if (!moved && state.hovered !== null && model.awaitingAt(state.hovered).length) openAcknowledge(state.hovered);
    });
  }
  const panel = page.querySelector("[data-limits-panel]");
  if (panel) {
    hooks.limits = new LimitsPanel({
      root: panel, model, config,
      onPropose: (limits) => {
        model.propose(limits);
        rescaleY();
        render();
      },
      onChange: (limits) => {
        applyLimits(limits);
        render();
      },
    });
  }
}

// --- Start -----------------------------------------------------------------------------------

function resize() {
  for (const [chart, plot] of Object.entries(state.plots)) plot.setSize({ width: plotWidth(), height: plotHeight(chart) });
}

function start() {
  if (!uPlot) {
    showStatus("error", "The charting library is missing: run `make vendor` on the server.");
    return;
  }
  el.ranges.forEach((button) => button.addEventListener("click", () => load(Number(button.dataset.range))));
  el.resetZoom.addEventListener("click", resetZoom);
  el.region.addEventListener("keydown", moveKeyboard);
  el.region.addEventListener("blur", () => {
    state.keyboardIndex = null;
    hideTooltip();
  });
  el.region.addEventListener("mouseleave", () => document.activeElement !== el.region && hideTooltip());
  let resizeTimer = null;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resize, 100);
  }).observe(page);
  // Subscribe before loading, so nothing committed in between is missed (load replays the queue).
  const live = new Live({
    onMessage: (message) => handleMessage(message),
    onStatus: statusBadge(document.querySelector("[data-live-status]")),
    onReconnect: () => catchUp(),
    onError: (message) => {
      el.announce.textContent = message;
    },
  });
  live.subscribe([config.id]);
  startHooks();
  load();
  capability.refresh();
}

start();
