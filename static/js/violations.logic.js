// What the violations list says about a violation and about a batch acknowledgement, without the
// DOM: violations.js shows it; tests run it in Node (`node --test tests/web/js/`).

import { formatTime } from "./format.js";

export const STATUSES = {
  awaiting: { label: "Awaiting acknowledgement", icon: "⚠" },
  acknowledged: { label: "Acknowledged", icon: "✓" },
  informational: { label: "No acknowledgement needed", icon: "ℹ" },
};

/** "awaiting", "acknowledged" or "informational" (its rule needs no acknowledgement). */
export function statusOf(violation) {
  if (violation.acknowledged_at) return "acknowledged";
  return violation.requires_acknowledgement ? "awaiting" : "informational";
}

/** Whether the batch form may select it: anything nobody has acknowledged yet. */
export function selectable(violation) {
  return !violation.acknowledged_at;
}

/** "24 Nov 2026 … by Mia Manager · Process adjusted": who acknowledged, when and why. */
export function acknowledgementText(violation, { timeZone = "UTC", userNames = {}, reasons = {} } = {}) {
  if (!violation.acknowledged_at) return "";
  const who = userNames[violation.acknowledged_by] ?? (violation.acknowledged_by ? `user ${violation.acknowledged_by}` : "");
  const reason = reasons[violation.acknowledgement_reason] ?? violation.acknowledgement_reason;
  return [formatTime(violation.acknowledged_at, timeZone) + (who ? ` by ${who}` : ""), reason]
    .filter(Boolean)
    .join(" · ");
}

/**
 * The outcome of one batch, row by row: {id: {outcome, text}} with outcome "acknowledged" or
 * "already" (someone had acknowledged it before: the batch left it as it was).
 * `acknowledged`: the violations the API acknowledged; `before`: those acknowledged already.
 */
export function batchOutcomes(acknowledged, before, options = {}) {
  const outcomes = {};
  for (const violation of acknowledged) {
    outcomes[violation.id] = { outcome: "acknowledged", text: "Acknowledged now." };
  }
  for (const violation of before) {
    outcomes[violation.id] = {
      outcome: "already",
      text: `Not acknowledged again: it had been acknowledged already (${acknowledgementText(violation, options)}).`,
    };
  }
  return outcomes;
}

/** One sentence on a whole batch, for the notice above the list. */
export function batchSummary(acknowledged, before) {
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const done = acknowledged.length
    ? `${plural(acknowledged.length, "violation", "violations")} acknowledged.`
    : "Nothing was acknowledged.";
  if (!before.length) return done;
  const already = `${plural(before.length, "was", "were")} acknowledged already by someone else and left as ${before.length === 1 ? "it was" : "they were"}.`;
  return `${done} ${already}`;
}
