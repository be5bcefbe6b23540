// One lot's page (templates/web/lot.html): the server renders it; this assigns the selected items
// (POST /api/v1/items/assign/), moves the lot on (POST /api/v1/lots/{id}/status/) and keeps the
// progress and statistics current by asking the API every 15 s while the page is visible.

import { apiGet, apiGetAll, apiPost } from "./api.js";
import { formatNumber, plantTime } from "./format.js";

const REFRESH_MS = 15_000;

const root = document.querySelector("[data-lot-page]");
const lotId = root.dataset.lotId;
const errorBox = root.querySelector("[data-lot-error]");

// The same words and icons as apps/web/selectors.py (DISPOSITION_LABELS, DISPOSITION_ICONS).
const DISPOSITIONS = {
  pending: { label: "No values yet", icon: "–" },
  release: { label: "Release", icon: "✓" },
  review: { label: "Review: Cpk below 1.33", icon: "⚠" },
  reject: { label: "Reject: value out of spec", icon: "✕" },
};

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

// --- Progress and statistics --------------------------------------------------------------------

function showProgress(progress) {
  for (const [name, value] of Object.entries(progress)) {
    const field = root.querySelector(`[data-progress-field="${name}"]`);
    if (field && field.textContent !== String(value)) field.textContent = value;
  }
}

function showStatistics(rows) {
  for (const stats of rows) {
    const row = root.querySelector(`[data-statistics] tr[data-test-id="${stats.test}"]`);
    if (!row) continue; // a test that was in no plan when the page opened: shown after a reload
    const decimals = Number(row.dataset.decimals);
    const unit = row.dataset.unit;
    const cell = (name) => row.querySelector(`[data-stat="${name}"]`);
    cell("n").textContent = stats.n;
    cell("mean").textContent = formatNumber(stats.mean, decimals, unit);
    cell("sd").textContent = formatNumber(stats.sd, decimals, unit);
    cell("cpk").textContent = formatNumber(stats.cpk, 2);
    cell("out_of_spec").textContent = stats.out_of_spec;
    const disposition = DISPOSITIONS[stats.disposition] ?? DISPOSITIONS.pending;
    const badge = cell("disposition");
    badge.className = `disposition disposition--${stats.disposition}`;
    badge.querySelector("[data-disposition-icon]").textContent = disposition.icon;
    badge.querySelector("[data-disposition-label]").textContent = disposition.label;
  }
}

async function refresh() {
  try {
    const [progress, statistics] = await Promise.all([
      apiGet(`/api/v1/lots/${lotId}/progress/`),
      root.querySelector("[data-statistics]") ? apiGetAll(`/api/v1/lot-statistics/?lot=${lotId}`) : [],
    ]);
    showProgress(progress);
    showStatistics(statistics);
    root.querySelector("[data-progress-updated]").textContent =
      `Updated ${plantTime.format(new Date())}; refreshed every 15 seconds while the page stays open.`;
    showError("");
  } catch (error) {
    showError(`The progress could not be refreshed: ${error.message}`);
  }
}

let timer = null;
function schedule() {
  clearInterval(timer);
  timer = document.hidden ? null : setInterval(refresh, REFRESH_MS);
}
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
  schedule();
});
schedule();

// --- Selecting and assigning items --------------------------------------------------------------

const assignForm = root.querySelector("[data-assign-form]");
if (assignForm) {
  const selectAll = root.querySelector("[data-select-all]");
  const checks = () => [...root.querySelectorAll("[data-item-check]")];
  const selected = () => checks().filter((box) => box.checked);
  const countText = assignForm.querySelector("[data-selected-count]");
  const testerSelect = assignForm.querySelector("[data-tester]");
  const button = assignForm.querySelector('button[type="submit"]');

  const showSelection = () => {
    const n = selected().length;
    const all = checks().length;
    countText.textContent = n === 0 ? "No items selected" : `${n} of ${all} item${all === 1 ? "" : "s"} selected`;
    selectAll.checked = n > 0 && n === all;
    selectAll.indeterminate = n > 0 && n < all;
  };
  selectAll.addEventListener("change", () => {
    checks().forEach((box) => (box.checked = selectAll.checked));
    showSelection();
  });
  root.querySelector("[data-items]").addEventListener("change", (event) => {
    if (event.target.matches("[data-item-check]")) showSelection();
  });

  const showAssigned = (items, testerName) => {
    for (const item of items) {
      const row = root.querySelector(`tr[data-item-id="${item.id}"]`);
      if (!row) continue;
      const tester = row.querySelector("[data-item-tester]");
      const at = row.querySelector("[data-item-assigned-at]");
      if (item.tester) {
        tester.textContent = testerName;
        at.innerHTML = "";
        const time = document.createElement("time");
        time.dateTime = item.assigned_at;
        time.textContent = plantTime.format(new Date(item.assigned_at));
        at.append(time);
      } else {
        tester.innerHTML = '<span class="muted">Not assigned</span>';
        at.textContent = "—";
      }
    }
  };

  assignForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const items = selected().map((box) => Number(box.value));
    if (items.length === 0) {
      showError("Select the items to assign first (the box in the header selects them all).");
      return;
    }
    if (!testerSelect.value) {
      showError("Choose the tester to hand the items to.");
      testerSelect.focus();
      return;
    }
    const tester = testerSelect.value === "none" ? null : Number(testerSelect.value);
    const testerName = testerSelect.selectedOptions[0].textContent;
    button.disabled = true;
    try {
      const answer = await apiPost("/api/v1/items/assign/", { items, tester });
      showAssigned(answer, testerName);
      countText.textContent =
        tester === null ? `${answer.length} item${answer.length === 1 ? "" : "s"} taken back.` : `${answer.length} item${answer.length === 1 ? "" : "s"} assigned to ${testerName}.`;
      checks().forEach((box) => (box.checked = false));
      selectAll.checked = false;
      selectAll.indeterminate = false;
      showError("");
      refresh();
    } catch (error) {
      const detail = Object.values(error.fields ?? {}).flat().join(" ");
      showError(`Nothing was assigned: ${detail || error.message}`);
    } finally {
      button.disabled = false;
    }
  });
}

// --- Moving the lot on --------------------------------------------------------------------------

const actions = root.querySelector("[data-status-actions]");
if (actions) {
  const confirmBox = actions.querySelector("[data-status-confirm]");
  const confirmText = actions.querySelector("[data-confirm-text]");
  const number = root.dataset.lotNumber;
  const QUESTIONS = {
    in_testing: `Start testing lot ${number}?`,
    released: `Release lot ${number}? This is final: its items and values cannot change afterwards.`,
    rejected: `Reject lot ${number}? This is final: its items and values cannot change afterwards.`,
  };
  let chosen = null;

  for (const button of actions.querySelectorAll("[data-status]")) {
    button.addEventListener("click", () => {
      chosen = button.dataset.status;
      confirmText.textContent = QUESTIONS[chosen] ?? `Move lot ${number} to ${chosen}?`;
      confirmBox.hidden = false;
      confirmBox.querySelector("[data-confirm-yes]").focus();
    });
  }
  actions.querySelector("[data-confirm-no]").addEventListener("click", () => {
    confirmBox.hidden = true;
    chosen = null;
  });
  actions.querySelector("[data-confirm-yes]").addEventListener("click", async (event) => {
    event.target.disabled = true;
    try {
      await apiPost(`/api/v1/lots/${lotId}/status/`, { status: chosen });
      window.location.reload(); // what may change (items, buttons) follows the new status
    } catch (error) {
      const detail = Object.values(error.fields ?? {}).flat().join(" ");
      showError(`The status did not change: ${detail || error.message}`);
      confirmBox.hidden = true;
      event.target.disabled = false;
    }
  });
}
