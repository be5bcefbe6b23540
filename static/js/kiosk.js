// The wall screen of one line (templates/web/kiosk.html): a grid of live location charts, one per
// characteristic, each with its state at a glance. The server renders the tiles and their states
// (the overview's); this module draws the charts from chart-data, keeps them live over
// ws/samples/, catches up after a reconnect, and keeps the session alive.
//
// For tests: each tile carries data-points (samples drawn) and data-state.

import { apiGet } from "./api.js";
import { formatClock, formatNumber, hourMinute } from "./format.js";
import { ChartModel, isAttributes } from "./chart.logic.js";
import { COLOURS as CHART_COLOURS, drawMarkers } from "./chartdraw.js";
import { Live, statusBadge } from "./live.js";
import { applyHealth, applySchedule, field, numberOrNull, showCardState } from "./page.js";

const uPlot = window.uPlot;
const root = document.getElementById("kiosk");
const POINTS = 50; // readable across a room; the chart page shows more
// Re-reads this page (saves the session, notices new tiles) well within the session's idle limit.
const KEEP_ALIVE_MS = Number(root.dataset.keepAliveMs) || 10 * 60 * 1000;
// The chart page's colours; the line, axes and grid darker, for a wall screen read from afar.
const COLOURS = { ...CHART_COLOURS, line: "#4a5868", axis: "#1a1a1a", grid: "#dde1e6" };

const alertBox = root.querySelector("[data-kiosk-alert]");
const grid = root.querySelector("[data-kiosk-grid]");
const clock = root.querySelector("[data-kiosk-clock]");
const timeZone = root.dataset.timeZone || document.body.dataset.timeZone || "UTC";

// --- One tile ----------------------------------------------------------------------------------

class Tile {
  constructor(element) {
    this.element = element;
    this.id = Number(element.dataset.characteristicId);
    this.decimals = Number.parseInt(element.dataset.decimals, 10);
    if (!Number.isInteger(this.decimals)) this.decimals = 2;
    this.unit = element.dataset.unit ?? "";
    this.plotBox = element.querySelector("[data-plot]");
    this.model = new ChartModel({ max: POINTS });
    this.plot = null;
    this.loading = false;
    this.queued = []; // live messages that arrive while chart-data loads
  }

  async load() {
    this.loading = true;
    try {
      const data = await apiGet(`/api/v1/characteristics/${this.id}/chart-data/?limit=${POINTS}`);
      this.model.load(data);
    } catch (error) {
      this.loading = false;
      this.queued = [];
      this.note(`Chart not available: ${error.message}`);
      return false;
    }
    this.loading = false;
    this.queued.splice(0).forEach((message) => this.handle(message, { draw: false }));
    const last = this.model.points.at(-1);
    if (last) this.showValue(last.mean);
    this.draw();
    return true;
  }

  handle(message, { draw = true } = {}) {
    if (this.loading) {
      this.queued.push(message);
      return;
    }
    const { type, payload } = message;
    let changed = false;
    if (type === "sample") {
      changed = this.model.append(payload);
      if (changed) this.showValue(payload.mean);
    } else if (type === "violation") {
      changed = this.model.addViolation(payload);
      const rules = this.element.dataset.acknowledgeRules.split(",").filter(Boolean).map(Number);
      if (rules.includes(payload.rule) && !payload.acknowledged_at) this.setUnacknowledged(true);
    } else if (type === "ack_update" || type === "event_ack") {
      changed = type === "ack_update" ? this.model.acknowledge(payload) : this.model.acknowledgeEvent(payload);
      this.recheckAcknowledgements();
    } else if (type === "limits_update") {
      changed = this.model.setLimits(payload);
      this.element.dataset.limits = "true";
      this.showState();
    } else if (type === "health_update") {
      applyHealth(this.element, payload);
      this.showState();
    } else if (type === "schedule_update") {
      applySchedule(this.element, payload, hourMinute);
      this.showState();
    }
    if (changed && draw) this.draw();
  }

  // --- State ---

  showValue(mean) {
    this.element.dataset.lastValue = String(mean);
    const text = formatNumber(mean, this.decimals);
    field(this.element, "last-value").textContent = this.unit && text !== "—" ? `${text} ${this.unit}` : text;
    this.showState();
  }

  setUnacknowledged(value) {
    this.element.dataset.unacknowledged = String(value);
    this.showState();
  }

  async recheckAcknowledgements() {
    try {
      const page = await apiGet(
        `/api/v1/violations/?characteristic=${this.id}&acknowledged=false&requires_acknowledgement=true&page_size=1`,
      );
      this.setUnacknowledged(page.count > 0);
    } catch (error) {
      showAlert(`Could not check the violations still to acknowledge: ${error.message}`);
    }
  }

  showState() {
    showCardState(this.element, "kiosk-state");
  }

  // --- Drawing ---

  note(text) {
    this.plot?.destroy();
    this.plot = null;
    const paragraph = document.createElement("p");
    paragraph.className = "kiosk-tile__note";
    paragraph.dataset.field = "note";
    paragraph.textContent = text;
    this.plotBox.replaceChildren(paragraph);
  }

  draw() {
    this.element.dataset.points = String(this.model.points.length);
    if (!this.model.points.length) {
      this.note("No samples yet.");
      return;
    }
    const data = this.model.series().location;
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    this.plotBox.replaceChildren();
    this.plot = new uPlot(this.options(), data, this.plotBox);
  }

  size() {
    return { width: Math.max(120, this.plotBox.clientWidth), height: Math.max(60, this.plotBox.clientHeight) };
  }

  resize() {
    if (this.plot) this.plot.setSize(this.size());
  }

  options() {
    const fontSize = Math.round(Number.parseFloat(getComputedStyle(root).fontSize) * 0.8);
    const font = `${fontSize}px system-ui, sans-serif`;
    const decimals = this.model.kind === "p" || this.model.kind === "u" ? Math.max(this.decimals, 3) : this.decimals;
    return {
      ...this.size(),
      legend: { show: false },
      cursor: { show: false },
      select: { show: false },
      scales: {
        x: { time: false, range: (u, min, max) => [min - 1, max + 1] }, // the last point whole, ring and all
        y: { range: () => this.model.range("location") },
      },
      axes: [
        { show: false },
        {
          stroke: COLOURS.axis, font, size: fontSize * 4.5, grid: { stroke: COLOURS.grid },
          values: (u, splits) => splits.map((v) => formatNumber(v, decimals)),
        },
      ],
      series: [{}, { stroke: COLOURS.line, width: 2, points: { show: false } }],
      hooks: {
        drawAxes: [(u) => this.drawLines(u)],
        draw: [(u) => this.drawMarkers(u)],
      },
    };
  }

  drawLines(u) {
    const { ctx, bbox } = u;
    const ratio = uPlot.pxRatio;
    ctx.save();
    for (const line of this.model.lines("location")) {
      if (isAttributes(this.model.kind) && line.style === "spec") continue;
      const y = Math.round(u.valToPos(line.value, "y", true));
      if (y < bbox.top || y > bbox.top + bbox.height) continue;
      ctx.strokeStyle = COLOURS[line.style];
      ctx.lineWidth = 2 * ratio;
      ctx.setLineDash(line.style === "spec" ? [8 * ratio, 4 * ratio] : line.style === "limit" ? [4 * ratio, 3 * ratio] : []);
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
    }
    ctx.restore();
  }

  // The chart page's markers (chartdraw.js: violations are diamonds), and a ring around points
  // awaiting acknowledgement: shape as well as colour, seen from across the hall.
  drawMarkers(u) {
    drawMarkers(u, "location", this.model);
    const { ctx } = u;
    const ratio = uPlot.pxRatio;
    const [xs, ys] = u.data;
    const pulsing = new Set(this.model.pulsing().map((p) => p.sequence));
    ctx.save();
    ctx.lineWidth = 3 * ratio;
    ctx.strokeStyle = COLOURS.violation;
    for (let i = 0; i < xs.length; i++) {
      if (ys[i] === null || !pulsing.has(xs[i])) continue;
      ctx.beginPath();
      ctx.arc(u.valToPos(xs[i], "x", true), u.valToPos(ys[i], "y", true), 12 * ratio, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.restore();
  }
}

// --- The page ------------------------------------------------------------------------------------

function showAlert(message) {
  alertBox.textContent = message;
  alertBox.hidden = !message;
}

function layout(count) {
  // Columns by count, so nine charts are a 3 × 3 grid on 16:9 and 1366 × 768 alike.
  const columns = count <= 1 ? 1 : count <= 4 ? 2 : count <= 9 ? 3 : 4;
  grid.style.setProperty("--columns", String(columns));
  grid.style.setProperty("--rows", String(Math.ceil(count / columns)));
}

function tick() {
  clock.textContent = formatClock(new Date(), timeZone);
  clock.dateTime = new Date().toISOString();
}

const tiles = new Map([...grid.querySelectorAll("[data-characteristic-id]")].map((element) => {
  const tile = new Tile(element);
  return [tile.id, tile];
}));

function onMessage(message) {
  tiles.get(message.payload?.characteristic)?.handle(message);
}

// After a reconnect the events of the gap are gone: every tile reads its chart again and
// whether violations still await acknowledgement.
async function catchUp() {
  const results = await Promise.all([...tiles.values()].map(async (tile) => {
    const loaded = await tile.load();
    if (loaded) await tile.recheckAcknowledgements();
    return loaded;
  }));
  if (results.every(Boolean)) showAlert("");
}

function signedOut() {
  showAlert("This screen is signed out: the charts have stopped. Sign in again on this screen to resume.");
  const link = document.createElement("a");
  link.href = `/login/?next=${encodeURIComponent(window.location.pathname + window.location.search)}`;
  link.textContent = " Sign in";
  alertBox.append(link);
}

// Fetching the page saves the session (apps/web/views.KioskView), so the screen stays signed in;
// a different set of characteristics on the line (or a sign-out) shows up here too.
async function keepAlive() {
  try {
    const response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.redirected && new URL(response.url).pathname.startsWith("/login/")) {
      signedOut();
      return;
    }
    if (!response.ok) return; // the server is busy or restarting: try again next time
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const ids = [...fresh.querySelectorAll("[data-kiosk-grid] [data-characteristic-id]")].map((e) => Number(e.dataset.characteristicId));
    if (ids.length !== tiles.size || ids.some((id) => !tiles.has(id))) window.location.reload();
  } catch {
    // Unreachable: the live badge already says so.
  }
}

const badge = statusBadge(root.querySelector("[data-live-status]"));

function start() {
  tick();
  setInterval(tick, 10_000);
  layout(tiles.size);
  if (!uPlot) {
    showAlert("The charting library is missing: run `make vendor` on the server.");
    return;
  }
  let resizeTimer = null;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => tiles.forEach((tile) => tile.resize()), 100);
  }).observe(grid);
  // Subscribe before loading, so nothing committed in between is missed (each tile queues).
  let live = null;
  live = new Live({
    onMessage,
    onStatus: (status) => {
      badge(status);
      if (status === "reconnecting") showAlert("Connection lost: reconnecting… The charts may be out of date.");
      if (status === "offline" && live?.stopped) signedOut();
      else if (status === "offline") showAlert("Offline: the charts are not updating.");
    },
    onReconnect: () => catchUp(),
    onError: (message) => showAlert(`Live updates: ${message}`),
  });
  live.subscribe([...tiles.keys()]);
  tiles.forEach((tile) => tile.load());
  setInterval(keepAlive, KEEP_ALIVE_MS);
}

start();
