// The audit log: the server renders the filters and puts the matching API query on the page
// (templates/web/audit.html); this loads that page of GET /api/v1/audit/ (newest first) and shows
// each entry in the API's words: who by name, the action, the record, and its fields before and
// after (references by what they name), with a link to the record's whole history.

import { apiGet } from "./api.js";
import { formatTime } from "./format.js";
import { cursorOf } from "./audit.logic.js";
import { element, statusShow } from "./page.js";

const root = document.querySelector("[data-audit]");
const timeZone = document.body.dataset.timeZone || "UTC";
const statusBox = root.querySelector("[data-list-status]");
const list = root.querySelector("[data-entries]");
const pager = root.querySelector("[data-pager]");

function showStatus(message, options) {
  statusShow(statusBox, message, options);
}

function objectText(entry) {
  return `${entry.object_type_label} ${entry.object_repr || entry.object_id}`;
}

function historyLink(entry) {
  const params = new URLSearchParams({ object_type: entry.object_type, object_id: entry.object_id });
  return element("a", { className: "audit-entry__history", text: "History of this record", attrs: { href: `${window.location.pathname}?${params}` } });
}

function diffTable(entry) {
  const rows = entry.changes;
  if (!rows.length) return [element("p", { className: "cell-note", text: "No field changed." })];
  const table = element("table", { className: "diff-table" }, [
    element("caption", { className: "visually-hidden", text: `Fields changed: ${objectText(entry)}` }),
    element("thead", {}, [
      element("tr", {}, [
        element("th", { text: "Field", attrs: { scope: "col" } }),
        element("th", { text: "Before", attrs: { scope: "col" } }),
        element("th", { text: "After", attrs: { scope: "col" } }),
      ]),
    ]),
    element(
      "tbody",
      {},
      rows.map((row) =>
        element("tr", { attrs: { "data-diff-field": row.field } }, [
          element("th", { text: row.label, attrs: { scope: "row" } }),
          element("td", { className: "diff-before", text: row.before || "—" }),
          element("td", { className: "diff-after", text: row.after || "—" }),
        ]),
      ),
    ),
  ]);
  return [table];
}

function entryItem(entry) {
  const action = entry.action_label;
  const heading = element("h2", { className: "audit-entry__title" }, [
    element("span", { className: `audit-action audit-action--${entry.action}`, text: action }),
    ` ${objectText(entry)}`,
  ]);
  const meta = element("p", { className: "audit-entry__meta" }, [
    element("time", { text: formatTime(entry.at, timeZone), attrs: { datetime: entry.at } }),
    ` · ${entry.user_name}`,
    entry.source ? ` · through ${entry.source}` : "",
    ` · entry ${entry.seq} · `,
    historyLink(entry),
  ]);
  const item = element("li", {
    className: "audit-entry",
    attrs: { "data-audit-id": entry.id, "data-action": entry.action, "data-object-type": entry.object_type, "data-object-id": entry.object_id },
  }, [heading, meta]);
  if (entry.reason) item.append(element("p", { className: "audit-entry__reason", text: `Why: ${entry.reason}` }));
  item.append(...diffTable(entry));
  return item;
}

function pageLink(cursor, label, rel) {
  const params = new URLSearchParams(window.location.search);
  params.set("cursor", cursor);
  return element("a", { className: "button button--quiet", text: label, attrs: { href: `${window.location.pathname}?${params}`, rel } });
}

function showPager(data) {
  const newer = cursorOf(data.previous);
  const older = cursorOf(data.next);
  pager.replaceChildren();
  if (newer) pager.append(pageLink(newer, "← Newer entries", "prev"));
  if (older) pager.append(pageLink(older, "Older entries →", "next"));
  pager.hidden = !newer && !older;
}

function emptyState() {
  const box = element("div", { className: "empty" });
  if (root.dataset.filtered === "true") {
    box.append(element("p", { text: "No audit entries match these filters." }), element("p", {}, [element("a", { text: "Clear the filters", attrs: { href: window.location.pathname } })]));
  } else {
    box.append(element("p", { text: "Nothing has been audited yet: no configuration, limits or acknowledgement has changed." }));
  }
  return box;
}

async function load() {
  let data;
  try {
    data = await apiGet(`/api/v1/audit/?${root.dataset.apiQuery}`);
  } catch (error) {
    showStatus(`The audit log could not be loaded: ${error.message}`, { error: true });
    return;
  }
  list.replaceChildren(...data.results.map(entryItem));
  if (data.results.length) {
    showStatus("");
    list.hidden = false;
  } else {
    statusBox.hidden = true;
    statusBox.after(emptyState());
  }
  showPager(data);
}

load();
