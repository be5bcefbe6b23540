// Acknowledging a violation from the chart (seed flow 3): a modal <dialog> (templates/web/chart.html,
// shown only to roles that may acknowledge) with the sample's details and the rules it broke, a
// reason code (GET /api/v1/acknowledgement-reasons/), a comment and a corrective action. The
// violations of violation events go to POST /violation-events/acknowledge/ (the events: every point
// of their patterns, now and later); one of no event to POST /violations/{id}/acknowledge/,
// several to POST /violations/acknowledge/ (all or none). The pulse stops here at once, and for everyone else through the live
// `ack_update` that the server sends after the commit.
//
//   const dialog = new AcknowledgeDialog({ dialog, model, config, onAcknowledged });
//   dialog.open(sequence, opener);   // opener gets the focus back on close
//   dialog.update(ackUpdatePayload); // someone acknowledged while the dialog is open

import { apiGet, apiPost } from "./api.js";
import { definitionRows } from "./page.js";
import { formatNumber, formatTime } from "./format.js";
import { acknowledgementTargets, dispersionLabel, locationLabel, ruleName } from "./chart.logic.js";

const SEVERITY = { critical: "critical", warning: "warning" };

/** "Rule 1 on the X̄ chart: " and the rule's name from `ruleNames` (the page's rule-names block). */
export function violationText(violation, kind, ruleNames) {
  const chart = violation.chart === "dispersion" ? dispersionLabel(kind) ?? "dispersion" : locationLabel(kind);
  return `Rule ${violation.rule} on the ${chart} chart: ${ruleName(ruleNames, violation.rule)}`;
}

/** A failed acknowledgement in plain words (an ApiError from api.js). */
export function acknowledgementError(error) {
  switch (error.status) {
    case 0:
      return "The server could not be reached, so nothing was acknowledged. Check the connection and try again.";
    case 403:
      return "Your role may not acknowledge violations. A manager or a quality specialist can.";
    case 404:
      return "This violation is no longer there (or not visible to you). Reload the chart.";
    case 409:
      return `Someone else acknowledged it first, so nothing was changed. ${error.message}`;
    case 400: {
      const fields = Object.entries(error.fields ?? {}).map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`);
      return fields.length ? `Please check: ${fields.join("; ")}` : error.message;
    }
    default:
      return `The acknowledgement failed: ${error.message}`;
  }
}

const FOCUSABLE = 'button:not([disabled]), select:not([disabled]), textarea:not([disabled]), input:not([disabled]), [href], [tabindex]:not([tabindex="-1"])';

export class AcknowledgeDialog {
  constructor({ dialog, model, config, onAcknowledged = () => {} }) {
    this.dialog = dialog;
    this.model = model;
    this.config = config;
    this.onAcknowledged = onAcknowledged;
    this.reasons = null; // loaded once
    this.shown = []; // the violations listed
    this.opener = null;
    this.busy = false;
    const q = (name) => dialog.querySelector(`[data-ack-${name}]`);
    this.el = {
      form: q("form"), title: q("title"), details: q("details"), list: q("list"), reason: q("reason"),
      comment: q("comment"), action: q("action"), error: q("error"), submit: q("submit"), cancel: q("cancel"),
    };
    this.el.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.el.cancel.addEventListener("click", () => this.close());
    this.el.reason.addEventListener("change", () => this.showError(""));
    dialog.addEventListener("keydown", (event) => this.trapFocus(event));
    dialog.addEventListener("cancel", (event) => {
      if (this.busy) event.preventDefault(); // Esc while sending: wait for the answer
    });
    dialog.addEventListener("close", () => this.opener?.focus());
  }

  get isOpen() {
    return this.dialog.open;
  }

  /** Open for the sample at `sequence`, if it has violations awaiting acknowledgement. */
  open(sequence, opener = null) {
    const point = this.model.pointAt(sequence);
    const awaiting = this.model.awaitingAt(sequence);
    if (!point || !awaiting.length) return false;
    this.opener = opener;
    this.shown = awaiting.map((v) => ({ ...v }));
    this.el.title.textContent = `Acknowledge sample ${point.sequence}`;
    this.showDetails(point, {});
    this.showViolations();
    this.el.comment.value = "";
    this.el.action.value = "";
    this.showError("");
    this.setBusy(false);
    this.dialog.showModal();
    this.el.reason.focus();
    this.loadReasons();
    this.loadSample(point);
    return true;
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  trapFocus(event) {
    if (event.key !== "Tab") return;
    const items = [...this.dialog.querySelectorAll(FOCUSABLE)].filter((e) => !e.closest("[hidden]"));
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }

  showDetails(point, extra) {
    const { decimals, unit, timeZone } = this.config;
    const withUnit = (v) => (unit ? `${formatNumber(v, decimals)} ${unit}` : formatNumber(v, decimals));
    const values = extra.values ? extra.values.map(withUnit).join(", ") : withUnit(point.mean);
    const severities = [...new Set(this.shown.map((v) => SEVERITY[v.severity] ?? v.severity).filter(Boolean))];
    const rows = [
      ["Time", formatTime(point.created_at, timeZone)],
      ["Lot", extra.lot ? `${extra.lot} (#${point.lot})` : `#${point.lot}`],
      [point.n > 1 ? `Values (n = ${point.n}, mean ${withUnit(point.mean)})` : "Value", values],
      ["Recorded by", extra.user ?? "…"],
      ["Severity", severities.join(", ") || "—"],
    ];
    if (extra.item) rows.splice(2, 0, ["Item", extra.item]);
    this.el.details.replaceChildren(...definitionRows(rows));
  }

  // One violation is a line of text; several are checkboxes (all checked), so the user may choose.
  showViolations() {
    const several = this.shown.length > 1;
    this.el.list.replaceChildren(
      ...this.shown.map((violation) => {
        const label = document.createElement(several ? "label" : "p");
        label.className = "ack-violation";
        const text = document.createElement("span");
        const done = violation.acknowledged_at ? ` — acknowledged by ${violation.acknowledged_by_name ?? "someone else"}` : "";
        const pattern = violation.event != null && !violation.acknowledged_at ? " — with its whole pattern, as it goes on" : "";
        text.textContent = `${violationText(violation, this.model.kind, this.config.ruleNames)} (${violation.severity ?? "—"})${pattern}${done}`;
        if (several) {
          const box = document.createElement("input");
          box.type = "checkbox";
          box.value = String(violation.id);
          box.checked = !violation.acknowledged_at;
          box.disabled = Boolean(violation.acknowledged_at);
          label.append(box);
        }
        label.append(text);
        return label;
      }),
    );
  }

  async loadReasons() {
    if (!this.reasons) {
      this.el.reason.replaceChildren(new Option("Loading the reasons…", ""));
      try {
        this.reasons = await apiGet("/api/v1/acknowledgement-reasons/");
      } catch (error) {
        this.el.reason.replaceChildren(new Option("The reasons could not be loaded", ""));
        this.showError(`The reason codes could not be loaded: ${error.message} Close and try again.`);
        return;
      }
    }
    const chosen = this.el.reason.value;
    this.el.reason.replaceChildren(
      new Option("Choose a reason…", ""),
      ...this.reasons.map((r) => new Option(r.label, r.code, false, r.code === chosen)),
    );
  }

  // The subgroup's values, its lot number, item and who recorded it: a violation's detail and its
  // first observation. Not essential: on failure the chart's own figures stay.
  async loadSample(point) {
    const first = this.shown[0];
    try {
      const detail = await apiGet(`/api/v1/violations/${first.id}/`);
      const subgroup = detail.subgroup ?? {};
      const extra = { values: subgroup.values };
      const observation = subgroup.observation_ids?.[0];
      if (observation) {
        const row = await apiGet(`/api/v1/observations/${observation}/`);
        Object.assign(extra, { user: row.user ?? "—", lot: row.lot_number, item: row.item_serial });
      }
      if (this.dialog.open && this.shown[0]?.id === first.id) this.showDetails(point, { user: "—", ...extra });
    } catch {
      if (this.dialog.open) this.showDetails(point, { user: "—" });
    }
  }

  /** An `ack_update` while open: that violation is shown as done, by whom. */
  update(payload) {
    if (!this.dialog.open) return;
    const violation = this.shown.find((v) => v.id === payload.id);
    if (!violation || this.busy) return;
    violation.acknowledged_at = payload.acknowledged_at ?? new Date().toISOString();
    violation.acknowledged_by_name = payload.acknowledged_by_name;
    this.showViolations();
    if (this.shown.every((v) => v.acknowledged_at)) {
      this.showError(`${payload.acknowledged_by_name ?? "Someone else"} acknowledged this meanwhile: nothing is left to acknowledge here.`);
      this.el.submit.disabled = true;
    }
  }

  chosenIds() {
    const done = new Set(this.shown.filter((v) => v.acknowledged_at).map((v) => v.id));
    if (this.shown.length === 1) return this.shown.filter((v) => !done.has(v.id)).map((v) => v.id);
    return [...this.el.list.querySelectorAll("input[type=checkbox]")]
      .filter((box) => box.checked && !done.has(Number(box.value)))
      .map((box) => Number(box.value));
  }

  async submit() {
    if (this.busy) return;
    const ids = this.chosenIds();
    if (!ids.length) {
      this.showError("Choose at least one violation to acknowledge.");
      return;
    }
    if (!this.el.reason.value) {
      this.showError("Choose a reason: why the point was out of control, or what was found.");
      this.el.reason.focus();
      return;
    }
    const body = { reason: this.el.reason.value, comment: this.el.comment.value.trim(), corrective_action: this.el.action.value.trim() };
    this.showError("");
    this.setBusy(true);
    // A violation of an event is acknowledged through its event: its whole pattern, now and as it
    // continues (docs/alarms.md); one of none, as itself.
    const targets = acknowledgementTargets(this.shown.filter((v) => ids.includes(v.id)));
    const done = [];
    try {
      if (targets.events.length) {
        const answer = await apiPost("/api/v1/violation-events/acknowledge/", { ...body, ids: targets.events });
        for (const e of answer.events) {
          this.model.acknowledgeEvent({ id: e.id, acknowledged_at: e.acknowledged_at, acknowledged_by_name: "you" });
          done.push(...this.shown.filter((v) => v.event === e.id));
        }
      }
      if (targets.violations.length === 1) done.push(await apiPost(`/api/v1/violations/${targets.violations[0]}/acknowledge/`, body));
      else if (targets.violations.length) done.push(...(await apiPost("/api/v1/violations/acknowledge/", { ...body, ids: targets.violations })).violations);
    } catch (error) {
      this.setBusy(false);
      this.showError(acknowledgementError(error));
      return;
    }
    this.setBusy(false);
    done.forEach((v) => this.model.acknowledge({ id: v.id, acknowledged_at: v.acknowledged_at, acknowledged_by_name: "you" }));
    this.close();
    this.onAcknowledged(done);
  }

  setBusy(busy) {
    this.busy = busy;
    this.el.submit.disabled = busy;
    this.el.submit.textContent = busy ? "Acknowledging…" : "Acknowledge";
    this.dialog.setAttribute("aria-busy", String(busy));
  }

  showError(message) {
    this.el.error.hidden = !message;
    this.el.error.textContent = message;
  }
}
