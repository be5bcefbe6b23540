// The chart page's capability summary: Cp, Cpk, Pp, Ppk of the characteristic (its product
// statistics) and a histogram of the individual values on the chart (not subgroup means) with the
// fitted normal curve, against LSL/USL (a uPlot bars chart).

import { ApiError, apiGet } from "./api.js";
import { formatNumber } from "./format.js";
import { histogram, individualValues, isAttributes, locationLabel, normalFit } from "./chart.logic.js";

const uPlot = window.uPlot;
const HEIGHT = 170;
const REFRESH_AFTER_MS = 1000; // statistics updates come in bursts: one fetch per burst

export class CapabilityPanel {
  constructor({ root, characteristicId, decimals, colours }) {
    this.id = characteristicId;
    this.decimals = decimals;
    this.colours = colours;
    this.indices = root.querySelector("[data-capability]");
    this.note = root.querySelector("[data-capability-note]");
    this.target = root.querySelector("[data-histogram]");
    this.title = root.querySelector("[data-histogram-title]");
    this.plot = null;
    this.range = [0, 1];
    this.spec = { lsl: null, usl: null };
    this.timer = null;
  }

  /** Fetch again soon (after a `statistics_update` of the product or a catch-up). */
  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), REFRESH_AFTER_MS);
  }

  async refresh() {
    let stats = null;
    let note = "";
    try {
      stats = await apiGet(`/api/v1/product-statistics/${this.id}/`);
    } catch (error) {
      note = error instanceof ApiError && error.status === 404
        ? "No statistics yet: they follow the first samples."
        : `The capability could not be loaded: ${error.message}`;
    }
    for (const key of ["cp", "cpk", "pp", "ppk"]) {
      const cell = this.indices.querySelector(`[data-index="${key}"]`);
      const interval = stats?.intervals?.[key];
      cell.textContent = formatNumber(stats?.[key] ?? null, this.decimals);
      // The 95 % confidence interval beside the index: how far a few values can be trusted.
      const range = interval ? `${formatNumber(interval[0], this.decimals)}–${formatNumber(interval[1], this.decimals)}` : "";
      cell.dataset.interval = range;
      cell.title = range ? `95 % confidence interval ${range}` : "";
      if (range) cell.append(Object.assign(document.createElement("small"), { className: "capability__interval", textContent: ` (${range})` }));
    }
    // Too few values: the indices are shown greyed, and the note says why (AIAG: 100 values or 25 subgroups).
    this.indices.dataset.trusted = stats && stats.trusted === false ? "false" : "true";
    if (stats) {
      const values = `${stats.n} values`;
      if (stats.trusted === false) note = `Not yet trustworthy: ${stats.trust_note}.`;
      else note = stats.cpk === null && stats.ppk === null
        ? `${values}; the indices need spec limits and a spread.`
        : `Over ${values} (all lots); 95 % confidence intervals in brackets.`;
    }
    this.note.textContent = note;
  }

  /** The histogram of the model's points: attribute charts their plotted statistic; variables
   * charts every individual value, with the normal curve fitted to them. */
  draw(model) {
    const attributes = isAttributes(model.kind);
    this.spec = attributes ? { lsl: null, usl: null } : { lsl: model.spec.lsl, usl: model.spec.usl };
    const values = attributes ? model.points.map((p) => p.statistic) : individualValues(model.points);
    const bins = histogram(values, this.spec);
    this.fit = attributes ? null : normalFit(values, bins.width);
    const count = values.length;
    const fitted = this.fit
      ? `, normal fit (mean ${formatNumber(this.fit.mean, this.decimals)}, s ${formatNumber(this.fit.sd, this.decimals + 1)})`
      : "";
    this.title.textContent = attributes
      ? `Histogram of the ${count} shown ${locationLabel(model.kind)} values`
      : `Histogram of the ${count} individual values shown${fitted}, against LSL/USL`;
    if (!bins.counts.length) {
      this.plot?.destroy();
      this.plot = null;
      const empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = "No values to count yet.";
      this.target.replaceChildren(empty);
      return;
    }
    const data = [bins.counts.map((_, i) => bins.edges[i] + bins.width / 2), bins.counts];
    this.range = [bins.edges[0], bins.edges[bins.edges.length - 1]];
    if (this.plot) {
      this.plot.setData(data, true);
      return;
    }
    this.target.replaceChildren();
    this.plot = new uPlot(this.options(), data, this.target);
  }

  options() {
    const colours = this.colours;
    return {
      width: Math.min(520, Math.max(260, this.target.clientWidth || 400)),
      height: HEIGHT,
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: false, range: () => [...this.range] },
        // Room for the fitted curve's peak as well as the tallest bar.
        y: { range: (u, min, max) => [0, Math.max(1, max, this.fit ? this.fit.at(this.fit.mean) : 0) * 1.1] },
      },
      axes: [
        { stroke: colours.axis, grid: { show: false }, values: (u, splits) => splits.map((v) => formatNumber(v, this.decimals)) },
        {
          stroke: colours.axis, grid: { stroke: colours.grid }, size: 40,
          values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : "")),
        },
      ],
      series: [
        {},
        {
          label: "Count", fill: colours.bar, stroke: colours["in-control"], points: { show: false },
          paths: uPlot.paths.bars({ size: [0.95, Infinity] }),
        },
      ],
      hooks: { draw: [(u) => this.drawFit(u), (u) => this.drawSpecLines(u)] },
    };
  }

  /** The fitted normal curve over the bars (expected counts per bin). */
  drawFit(u) {
    if (!this.fit) return;
    const { ctx } = u;
    const [low, high] = this.range;
    const steps = 120;
    ctx.save();
    ctx.strokeStyle = this.colours.center;
    ctx.lineWidth = 2 * uPlot.pxRatio;
    ctx.beginPath();
    for (let i = 0; i <= steps; i += 1) {
      const x = low + ((high - low) * i) / steps;
      const px = u.valToPos(x, "x", true);
      const py = u.valToPos(this.fit.at(x), "y", true);
      if (i === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    }
    ctx.stroke();
    ctx.restore();
  }

  drawSpecLines(u) {
    const { ctx, bbox } = u;
    const ratio = uPlot.pxRatio;
    ctx.save();
    ctx.font = `${12 * ratio}px system-ui, sans-serif`;
    ctx.strokeStyle = this.colours.spec;
    ctx.fillStyle = this.colours.spec;
    ctx.lineWidth = 1.5 * ratio;
    ctx.setLineDash([8 * ratio, 4 * ratio]);
    for (const [label, value] of [["LSL", this.spec.lsl], ["USL", this.spec.usl]]) {
      if (value === null || value === undefined) continue;
      const x = Math.round(u.valToPos(value, "x", true));
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
      ctx.textAlign = label === "LSL" ? "left" : "right";
      ctx.fillText(label, x + (label === "LSL" ? 4 : -4) * ratio, bbox.top + 14 * ratio);
    }
    ctx.restore();
  }
}
