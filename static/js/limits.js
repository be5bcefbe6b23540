// Recalculating and freezing control limits from the chart (seed flow 4; the panel in
// templates/web/chart.html is rendered for roles that may add control limits only). The
// baseline is the last N samples or a date range (in the plant's time zone), optionally without
// samples that have a violation. "Preview" asks POST /characteristics/{id}/recalculate-limits/
// with "preview": true (nothing is stored) and shows the current and proposed limits side by side,
// and dashed on the chart; "Confirm" sends the same body without preview, signed. Freezing goes to
// POST .../freeze-limits/, signed. Other open charts get the new limits from the live `limits_update`.
// A stored change of the limits is an electronic signature (21 CFR Part 11): the panel's signature
// fields (meaning, user name for the session's first signature, password) go with it as `signature`;
// the password is cleared after every attempt.
//
//   const panel = new LimitsPanel({ root, model, config, onPropose, onChange });
//   panel.refresh();   // after the chart's limits changed (load, live update)

import { apiPost } from "./api.js";
import { formatNumber } from "./format.js";

export const MAX_SAMPLES = 10_000;

/** Milliseconds the wall clock of `timeZone` is ahead of UTC at `instant` (ms). */
function offsetAt(instant, timeZone) {
  const format = new Intl.DateTimeFormat("en-GB", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23",
  });
  const p = Object.fromEntries(format.formatToParts(new Date(instant)).map((x) => [x.type, Number(x.value)]));
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - instant;
}

/** "2026-03-01" (a date input's value): the ISO instant of that midnight in `timeZone`; with
 * `nextDay`, of the following midnight (an end date is inclusive). Null when empty or invalid. */
export function zonedMidnight(dateText, timeZone = "UTC", { nextDay = false } = {}) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dateText ?? "");
  if (!match) return null;
  const wall = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]) + (nextDay ? 1 : 0));
  let instant = wall - offsetAt(wall, timeZone);
  instant = wall - offsetAt(instant, timeZone); // once more, across a daylight-saving change
  return new Date(instant).toISOString();
}

/** The request body from the form's values, or {error} in plain words. */
export function recalculationBody({ baseline, count, start, end, excludeOutOfControl, reason }, timeZone = "UTC") {
  if (!reason || !reason.trim()) return { error: "Say why the limits change: the reason is kept with them." };
  const body = { exclude_out_of_control: Boolean(excludeOutOfControl), reason: reason.trim() };
  if (baseline === "range") {
    const from = zonedMidnight(start, timeZone);
    const to = zonedMidnight(end, timeZone, { nextDay: true });
    if (!from && !to) return { error: "Choose the first day, the last day, or both." };
    if (from && to && from >= to) return { error: "The last day must not be before the first." };
    return { ...body, sample_count: MAX_SAMPLES, start: from, end: to };
  }
  const n = Number(count);
  if (!Number.isInteger(n) || n < 2 || n > MAX_SAMPLES) return { error: `The number of samples must be a whole number from 2 to ${MAX_SAMPLES}.` };
  return { ...body, sample_count: n };
}

/** The `signature` of a request from the signature fields, or {error} in plain words. */
export function signatureBody({ meaning, username, password }) {
  if (!password) return { error: "Enter your password to sign the change: stored limits are signed." };
  const signature = { meaning: meaning || "approved", password };
  if (username && username.trim()) signature.username = username.trim();
  return { signature };
}

const ROWS = [
  ["CL", "center"], ["UCL", "ucl"], ["LCL", "lcl"], ["σ", "sigma"],
  ["Dispersion CL", "dispersion_center"], ["Dispersion UCL", "dispersion_ucl"], ["Dispersion LCL", "dispersion_lcl"],
];

/** Table rows [line, current, proposed, change] with the characteristic's decimals; a line
 * neither version has is left out. */
export function comparisonRows(previous, proposed, decimals = 2) {
  const has = (limits, key) => limits && limits[key] !== null && limits[key] !== undefined;
  return ROWS.filter(([, key]) => has(previous, key) || has(proposed, key)).map(([label, key]) => {
    const before = has(previous, key) ? previous[key] : null;
    const after = has(proposed, key) ? proposed[key] : null;
    const change = before === null || after === null ? "—" : `${after - before >= 0 ? "+" : "−"}${formatNumber(Math.abs(after - before), decimals)}`;
    return [label, formatNumber(before, decimals), formatNumber(after, decimals), change];
  });
}

const LISTED = 8; // left-out samples named; the rest are counted

/** "From 10 samples (5 to 24), 10 left out (15 violation, …, and 2 more); σ by mrbar_d2." */
export function basisText(answer) {
  const baseline = answer.new.baseline ?? {};
  const left = answer.excluded ?? [];
  const named = left.slice(0, LISTED).map((e) => `${e.sequence}: ${e.why}`);
  if (left.length > LISTED) named.push(`and ${left.length - LISTED} more`);
  const out = left.length ? `${left.length} left out (${named.join(", ")})` : "none left out";
  return `From ${answer.samples_used} samples (${baseline.first_sequence ?? "?"} to ${baseline.last_sequence ?? "?"}), ${out}; σ by ${answer.method}.`;
}

function plainError(error) {
  if (error.status === 403 && /signed|Signing/.test(error.message ?? "")) return error.message;
  if (error.status === 403) return "Your role may not change control limits. A quality specialist can.";
  if (error.status === 409) return `${error.message}`;
  if (error.status === 0) return error.message;
  const fields = Object.values(error.fields ?? {}).flat();
  return fields.length ? fields.join(" ") : error.message;
}

export class LimitsPanel {
  constructor({ root, model, config, onPropose = () => {}, onChange = () => {} }) {
    this.root = root;
    this.model = model;
    this.config = config;
    this.onPropose = onPropose;
    this.onChange = onChange;
    this.body = null; // the body of the preview shown
    this.busy = false;
    const q = (name) => root.querySelector(`[data-limits-${name}]`);
    this.el = {
      form: q("form"), current: q("current"), error: q("error"), result: q("result"), rows: q("rows"),
      basis: q("basis"), heading: q("heading"), preview: q("preview"), confirm: q("confirm"), discard: q("discard"),
      freezeForm: q("freeze-form"), freezeReason: q("freeze-reason"), freeze: q("freeze"), done: q("done"),
      signMeaning: q("sign-meaning"), signUsername: q("sign-username"), signPassword: q("sign-password"),
    };
    this.el.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.preview();
    });
    this.el.form.addEventListener("change", () => this.syncBaseline());
    this.el.confirm.addEventListener("click", () => this.confirm());
    this.el.discard.addEventListener("click", () => this.discard());
    this.el.freezeForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.freeze();
    });
    this.syncBaseline();
  }

  url(action) {
    return `/api/v1/characteristics/${this.config.id}/${action}/`;
  }

  formValues() {
    const data = new FormData(this.el.form);
    return {
      baseline: data.get("baseline"), count: data.get("sample_count"), start: data.get("start"), end: data.get("end"),
      excludeOutOfControl: data.get("exclude_out_of_control") === "on", reason: data.get("reason"),
    };
  }

  // Only the chosen baseline's inputs are enabled, so the form reads as what will be sent.
  syncBaseline() {
    const range = this.formValues().baseline === "range";
    this.el.form.querySelector("[name=sample_count]").disabled = range;
    for (const name of ["start", "end"]) this.el.form.querySelector(`[name=${name}]`).disabled = !range;
  }

  /** After the chart's limits changed: the current version, frozen or not, and what freezing does. */
  refresh() {
    const limits = this.model.limits;
    const d = this.config.decimals;
    if (!limits) {
      this.el.current.textContent = "No control limits yet.";
    } else {
      const frozen = limits.frozen ? " They are frozen: unfreeze them before recalculating." : "";
      this.el.current.textContent = `Current limits v${limits.version}: CL ${formatNumber(limits.center, d)}, UCL ${formatNumber(limits.ucl, d)}, LCL ${formatNumber(limits.lcl, d)}.${frozen}`;
    }
    this.el.freeze.disabled = !limits || this.busy;
    this.el.freeze.textContent = limits?.frozen ? "Unfreeze limits" : "Freeze limits";
    this.el.preview.disabled = Boolean(limits?.frozen) || this.busy;
  }

  /** The signature typed in the panel, or {error}; focuses the password when it is missing. */
  signature() {
    const answer = signatureBody({
      meaning: this.el.signMeaning.value, username: this.el.signUsername.value, password: this.el.signPassword.value,
    });
    if (answer.error) {
      this.showError(answer.error);
      this.el.signPassword.focus();
    }
    return answer;
  }

  setBusy(busy) {
    this.busy = busy;
    this.root.setAttribute("aria-busy", String(busy));
    this.el.confirm.disabled = busy;
    this.refresh();
  }

  showError(message) {
    this.el.error.hidden = !message;
    this.el.error.textContent = message;
  }

  async preview() {
    const body = recalculationBody(this.formValues(), this.config.timeZone);
    if (body.error) {
      this.showError(body.error);
      return;
    }
    this.showError("");
    this.el.done.textContent = "";
    this.setBusy(true);
    this.el.preview.textContent = "Calculating…";
    let answer;
    try {
      answer = await apiPost(this.url("recalculate-limits"), { ...body, preview: true });
    } catch (error) {
      this.showError(`No preview: ${plainError(error)}`);
      return;
    } finally {
      this.el.preview.textContent = "Preview new limits";
      this.setBusy(false);
    }
    this.body = body;
    this.showComparison(answer);
    this.onPropose(answer.new);
    this.el.confirm.focus();
  }

  showComparison(answer) {
    const d = this.config.decimals;
    const before = answer.previous ? `Current (v${answer.previous.version})` : "Current (none)";
    this.el.heading.replaceChildren(
      ...["Line", before, `Proposed (v${answer.new.version})`, "Change"].map((text) => {
        const cell = document.createElement("th");
        cell.scope = "col";
        cell.textContent = text;
        return cell;
      }),
    );
    this.el.rows.replaceChildren(
      ...comparisonRows(answer.previous, answer.new, d).map(([label, ...cells]) => {
        const row = document.createElement("tr");
        const head = document.createElement("th");
        head.scope = "row";
        head.textContent = label;
        row.append(head, ...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })));
        return row;
      }),
    );
    this.el.basis.textContent = `${basisText(answer)} Nothing is changed until you confirm.`;
    this.el.result.hidden = false;
  }

  discard() {
    this.body = null;
    this.el.result.hidden = true;
    this.onPropose(null);
  }

  async confirm() {
    if (!this.body || this.busy) return;
    const signed = this.signature();
    if (signed.error) return;
    this.showError("");
    this.setBusy(true);
    let answer;
    try {
      answer = await apiPost(this.url("recalculate-limits"), { ...this.body, signature: signed.signature });
    } catch (error) {
      this.showError(`The limits were not changed: ${plainError(error)}`);
      this.setBusy(false);
      return;
    } finally {
      this.el.signPassword.value = "";
    }
    this.body = null;
    this.el.result.hidden = true;
    this.el.form.querySelector("[name=reason]").value = "";
    this.onPropose(null);
    this.onChange(answer.new);
    this.setBusy(false);
    this.el.done.textContent = `Limits v${answer.new.version} are in use.`;
  }

  async freeze() {
    const limits = this.model.limits;
    const reason = this.el.freezeReason.value.trim();
    if (!limits) return;
    if (!reason) {
      this.showError(`Say why the limits are ${limits.frozen ? "unfrozen" : "frozen"}.`);
      this.el.freezeReason.focus();
      return;
    }
    const signed = this.signature();
    if (signed.error) return;
    this.showError("");
    this.setBusy(true);
    let answer;
    try {
      answer = await apiPost(this.url("freeze-limits"), { frozen: !limits.frozen, reason, signature: signed.signature });
    } catch (error) {
      this.showError(`Nothing changed: ${plainError(error)}`);
      this.setBusy(false);
      return;
    } finally {
      this.el.signPassword.value = "";
    }
    this.el.freezeReason.value = "";
    this.onChange(answer.new);
    this.setBusy(false);
    this.el.done.textContent = `Limits v${answer.new.version} are ${answer.new.frozen ? "frozen" : "no longer frozen"}.`;
  }
}
