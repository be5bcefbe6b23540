// The chart page's point tooltip (chart.js): what describePoint (chart.logic.js) says about a
// point, shown next to it inside the chart region, flipped to the left near the right edge.

import { definitionRows } from "./page.js";

export function fillTooltip(tooltip, text, inControl) {
  const title = document.createElement("strong");
  title.textContent = text.title;
  const rows = document.createElement("dl");
  rows.append(...definitionRows(text.rows));
  const children = [title, rows];
  if (text.rules.length) {
    const list = document.createElement("ul");
    list.className = "chart-tooltip__rules";
    for (const rule of text.rules) {
      const item = document.createElement("li");
      item.textContent = rule.text;
      list.append(item);
    }
    children.push(list);
  } else if (inControl === true) {
    const ok = document.createElement("p");
    ok.textContent = "In control";
    children.push(ok);
  }
  tooltip.replaceChildren(...children);
  tooltip.hidden = false;
}

// `u` is the uPlot instance, `x` and `y` the point's values on its scales (y null: at the top).
export function placeTooltip(tooltip, region, u, x, y) {
  const over = u.over.getBoundingClientRect();
  const box = region.getBoundingClientRect();
  const left = over.left - box.left + u.valToPos(x, "x");
  const top = over.top - box.top + (y === null ? 0 : u.valToPos(y, "y"));
  const width = tooltip.offsetWidth;
  const placed = left + 14 + width > box.width ? Math.max(0, left - 14 - width) : left + 14;
  tooltip.style.left = `${placed}px`;
  tooltip.style.top = `${Math.max(0, Math.min(top - 10, box.height - tooltip.offsetHeight))}px`;
}

// What a screen reader hears when the keyboard moves to a point.
export function spokenPoint(text) {
  const rows = text.rows.map(([label, value]) => `${label} ${value}`).join(", ");
  return `${text.title}: ${rows}. ${text.rules.map((rule) => rule.text).join(". ")}`;
}
