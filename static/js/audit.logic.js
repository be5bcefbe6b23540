// An audit entry's before and after as rows of fields, and values in words, without the DOM:
// audit.js shows them; tests run them in Node (`node --test tests/web/js/`).

import { formatTime } from "./format.js";

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;
// Fields that hold a user's id (audit_fields stores foreign keys by id).
const USER_FIELDS = /(^|_)(by|user)$/;

// SPC abbreviations stay in capitals in field labels.
const ABBREVIATIONS = new Set(["usl", "lsl", "ucl", "lcl", "sd", "mr", "cp", "cpk", "pp", "ppk", "ewma", "cusum", "id"]);

/** "acknowledged_at" → "Acknowledged at"; "ucl" → "UCL". */
export function fieldLabel(name) {
  const words = String(name).split("_").filter(Boolean).map((w) => (ABBREVIATIONS.has(w) ? w.toUpperCase() : w));
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * A stored value as words: times in the plant's zone, yes/no, people and other references by name
 * (`references`: {field: {id: name}}), "—" for none.
 */
export function formatValue(value, { field = "", timeZone = "UTC", userNames = {}, references = {} } = {}) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") {
    if (USER_FIELDS.test(field) && userNames[value]) return `${userNames[value]} (user ${value})`;
    const name = references[field]?.[value];
    return name ? `${name} (${value})` : String(value);
  }
  if (typeof value === "string") return ISO_TIME.test(value) ? formatTime(value, timeZone) : value;
  if (Array.isArray(value) && value.every((v) => typeof v !== "object" || v === null)) {
    return value.length ? value.map((v) => formatValue(v)).join(", ") : "none";
  }
  return JSON.stringify(value);
}

function same(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * The fields of an entry: [{field, before, after, changed}], in the order the entry stores them
 * (before's fields first). A creation has no before, a deletion no after: every field counts as
 * changed then. `unchanged` counts the fields an update left as they were (not in `rows`).
 */
export function auditChanges(before, after) {
  const names = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])];
  const rows = [];
  let unchanged = 0;
  for (const field of names) {
    const was = before ? before[field] : undefined;
    const is = after ? after[field] : undefined;
    const changed = !before || !after || !same(was, is);
    if (changed) rows.push({ field, before: was, after: is, changed });
    else unchanged += 1;
  }
  return { rows, unchanged };
}

/** The cursor of an API page link (its `cursor` query parameter), or null. */
export function cursorOf(link) {
  if (!link) return null;
  try {
    return new URL(link, "http://localhost").searchParams.get("cursor");
  } catch {
    return null;
  }
}
