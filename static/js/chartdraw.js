// Canvas drawing of the characteristic chart (static/js/chart.js makes the uPlot charts and calls
// these from its hooks): zone bands, horizontal lines with their labels, the point markers, and
// the proposed limits of a recalculation preview (static/js/limits.js), dashed in their own
// colour. Everything drawn comes from a ChartModel (chart.logic.js).

import { formatNumber } from "./format.js";
import { spreadLabels } from "./chart.logic.js";

export const COLOURS = {
  line: "#5b6b80",
  "in-control": "#1a4fb4",
  violation: "#b3261e",
  undersized: "#8a5a00",
  pending: "#6b6b6b",
  invalidated: "#9e9e9e",
  center: "#1b6e3a",
  limit: "#b3261e",
  spec: "#6a1b9a",
  warning: "#6a1b9a",
  proposed: "#b45309",
  zoneOuter: "rgba(26, 79, 180, 0.07)",
  zoneInner: "rgba(26, 79, 180, 0.13)",
  axis: "#333",
  grid: "#e3e6ea",
  bar: "rgba(26, 79, 180, 0.55)",
};

function ratio() {
  return window.uPlot.pxRatio;
}

function dashOf(style) {
  const r = ratio();
  if (style === "spec") return [8 * r, 4 * r];
  if (style === "warning") return [2 * r, 4 * r];
  if (style === "limit") return [3 * r, 3 * r];
  if (style === "proposed") return [10 * r, 5 * r];
  return [];
}

/** All horizontal lines of a chart: the current ones and any proposed by a preview. */
function allLines(model, chart) {
  return [...model.lines(chart), ...model.proposedLines(chart)];
}

export function drawZones(u, model) {
  const { ctx, bbox } = u;
  ctx.save();
  for (const band of model.bands()) {
    const top = u.valToPos(band.to, "y", true);
    const bottom = u.valToPos(band.from, "y", true);
    ctx.fillStyle = band.key === "sigma_1" ? COLOURS.zoneInner : COLOURS.zoneOuter;
    const y = Math.max(bbox.top, Math.min(top, bottom));
    const end = Math.min(bbox.top + bbox.height, Math.max(top, bottom));
    if (end > y) ctx.fillRect(bbox.left, y, bbox.width, end - y);
  }
  ctx.restore();
}

export function drawLines(u, chart, model) {
  const { ctx, bbox } = u;
  ctx.save();
  for (const line of allLines(model, chart)) {
    const y = Math.round(u.valToPos(line.value, "y", true));
    if (y < bbox.top || y > bbox.top + bbox.height) continue;
    ctx.strokeStyle = COLOURS[line.style];
    ctx.lineWidth = (line.style === "proposed" ? 2 : 1.5) * ratio();
    ctx.setLineDash(dashOf(line.style));
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
  }
  ctx.restore();
}

// The lines' names and values at the right end, over the points, spread apart where lines are close.
export function drawLineLabels(u, chart, model, decimals) {
  const { ctx, bbox } = u;
  const r = ratio();
  const shown = allLines(model, chart)
    .map((line) => ({ line, y: u.valToPos(line.value, "y", true) }))
    .filter(({ y }) => y >= bbox.top && y <= bbox.top + bbox.height);
  const ys = spreadLabels(shown.map(({ y }) => y - 4 * r), 13 * r);
  ctx.save();
  ctx.font = `${12 * r}px system-ui, sans-serif`;
  ctx.textAlign = "right";
  ctx.lineJoin = "round";
  shown.forEach(({ line }, i) => {
    const text = `${line.label} ${formatNumber(line.value, decimals)}`;
    // Proposed lines are labelled at the left end, so they do not crowd the current ones.
    const proposed = line.style === "proposed";
    ctx.textAlign = proposed ? "left" : "right";
    const x = proposed ? bbox.left + 4 * r : bbox.left + bbox.width - 4 * r;
    ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
    ctx.lineWidth = 3 * r;
    ctx.strokeText(text, x, ys[i]);
    ctx.fillStyle = COLOURS[line.style];
    ctx.fillText(text, x, ys[i]);
  });
  ctx.restore();
}

// One path per state, filled and stroked once: drawing 5 000 markers one by one took most of a
// redraw. Where in-control points are closer than a marker's width the line shows them and only
// the other states get markers (those always do).
const MARKER_SPACING_PX = 5;

export function drawMarkers(u, chart, model) {
  const { ctx, bbox } = u;
  const r = ratio();
  const [xs, ys] = u.data;
  const min = u.scales.x.min;
  const max = u.scales.x.max;
  const states = model.states(chart);
  const shownCount = xs.reduce((count, x) => count + (x >= min && x <= max ? 1 : 0), 0);
  const roomy = bbox.width / r / Math.max(1, shownCount) >= MARKER_SPACING_PX;
  const paths = {};
  for (let i = 0; i < xs.length; i++) {
    if (ys[i] === null || xs[i] < min || xs[i] > max) continue;
    const pointState = states[i];
    if (!roomy && pointState === "in-control") continue;
    const x = u.valToPos(xs[i], "x", true);
    const y = u.valToPos(ys[i], "y", true);
    const path = (paths[pointState] ??= new Path2D());
    if (pointState === "violation") {
      // A diamond, so the state does not rest on colour alone.
      const size = 6 * r;
      path.moveTo(x, y - size);
      path.lineTo(x + size, y);
      path.lineTo(x, y + size);
      path.lineTo(x - size, y);
      path.closePath();
    } else {
      path.moveTo(x + 3.5 * r, y);
      path.arc(x, y, 3.5 * r, 0, 2 * Math.PI);
    }
  }
  // Values outside the spec limits: a square around the point, in the spec lines' colour, whatever
  // its control chart state (a spec alarm is not a rule's).
  for (const p of model.outOfSpecPoints(chart)) {
    if (p.sequence < min || p.sequence > max) continue;
    const x = u.valToPos(p.sequence, "x", true);
    const y = u.valToPos(p.value, "y", true);
    const size = 8 * r;
    (paths.spec ??= new Path2D()).rect(x - size, y - size, 2 * size, 2 * size);
  }
  // Invalidated points are gaps in the series (the line joins their neighbours): marked from the model.
  for (const p of model.invalidatedPoints(chart)) {
    if (p.sequence < min || p.sequence > max) continue;
    const x = u.valToPos(p.sequence, "x", true);
    const y = u.valToPos(p.value, "y", true);
    const path = (paths.invalidated ??= new Path2D());
    path.moveTo(x + 3.5 * r, y);
    path.arc(x, y, 3.5 * r, 0, 2 * Math.PI);
  }
  ctx.save();
  ctx.beginPath();
  ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
  ctx.clip();
  ctx.setLineDash([]);
  ctx.lineWidth = 1.5 * r;
  for (const pointState of ["invalidated", "in-control", "pending", "undersized", "violation"]) { // violations on top
    const path = paths[pointState];
    if (!path) continue;
    const colour = COLOURS[pointState];
    ctx.fillStyle = pointState === "violation" || pointState === "in-control" ? colour : "#fff"; // hollow: undersized, not judged, invalidated
    ctx.fill(path);
    if (pointState !== "violation") {
      ctx.strokeStyle = colour;
      ctx.stroke(path);
    }
  }
  if (paths.spec) {
    ctx.strokeStyle = COLOURS.spec;
    ctx.stroke(paths.spec);
  }
  ctx.restore();
}
