// How every page writes numbers and times: one module, so a value reads the same on the chart,
// the worklist, a lot, the overview and the lists. No DOM beyond reading the plant's time zone
// from <body data-time-zone> when there is a document; tests run it in Node.

/** A number with the characteristic's decimals (0 to 10; 2 otherwise) and, when given, its unit;
 * an em dash when there is no number. "-0.00" reads "0.00". */
export function formatNumber(value, decimals = 2, unit = "") {
  if (value === null || value === undefined || value === "" || !Number.isFinite(Number(value))) return "—";
  const places = Number.isInteger(decimals) && decimals >= 0 && decimals <= 10 ? decimals : 2;
  const fixed = Number(value).toFixed(places);
  const text = /^-0(\.0*)?$/.test(fixed) ? fixed.slice(1) : fixed;
  return unit ? `${text} ${unit}` : text;
}

/** "2026-03-01 09:00:00 CET": a timestamp in the plant's time zone. */
export function formatTime(iso, timeZone = "UTC") {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "—";
  const format = new Intl.DateTimeFormat("en-GB", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZoneName: "short",
  });
  const part = Object.fromEntries(format.formatToParts(date).map((p) => [p.type, p.value]));
  return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}:${part.second} ${part.timeZoneName}`;
}

/** "09:00": the wall clock of `timeZone` (the wall screen's clock). */
export function formatClock(date, timeZone = "UTC") {
  return new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(date);
}

/** "02:53" in the plant's time zone (body[data-time-zone]). */
export const hourMinute = new Intl.DateTimeFormat("en-GB", {
  timeZone: (typeof document !== "undefined" && document.body.dataset.timeZone) || undefined,
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

/** "24 Nov 2026, 02:53" in the plant's time zone (body[data-time-zone]). */
export const plantTime = new Intl.DateTimeFormat("en-GB", {
  timeZone: (typeof document !== "undefined" && document.body.dataset.timeZone) || undefined,
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});
