// One lot's page (templates/web/lot.html): the server renders it; this assigns the selected items
// (POST /api/v1/items/assign/), starts testing (POST /api/v1/lots/{id}/status/), verifies the
// selected results (POST /api/v1/observations/verify/), takes the signed disposition (POST
// /api/v1/lots/{id}/disposition/) or requests the release, and keeps the progress and statistics
// current by asking the API every 15 s while the page is visible.

import { apiGet, apiGetAll, apiPost } from "./api.js";
import { formatNumber, plantTime } from "./format.js";
import { dispositionBody, manifestLines, refusal, selectionText, verifyBody } from "./lot.logic.js";

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

// --- Review: verifying results, the signed disposition, the release request ----------------------

function showList(list, lines) {
  list.replaceChildren(
    ...lines.map((line) => {
      const li = document.createElement("li");
      li.textContent = line;
      return li;
    }),
  );
}

function wireCancel(dialog) {
  dialog.querySelector("[data-dialog-cancel]").addEventListener("click", () => dialog.close());
}

const verifyForm = root.querySelector("[data-verify-form]");
const verifyDialog = document.querySelector("[data-verify-dialog]");
if (verifyForm && verifyDialog) {
  const checks = () => [...root.querySelectorAll("[data-verify-check]")];
  const chosen = () => checks().filter((box) => box.checked).map((box) => box.value);
  const count = verifyForm.querySelector("[data-verify-count]");
  const errorText = verifyDialog.querySelector("[data-verify-error]");
  const showVerifyError = (message) => {
    errorText.textContent = message;
    errorText.hidden = !message;
  };
  root.querySelector("[data-review-matrix]").addEventListener("change", (event) => {
    if (event.target.matches("[data-verify-check]")) count.textContent = selectionText(chosen().length);
  });
  wireCancel(verifyDialog);
  verifyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const n = chosen().length;
    if (n === 0) {
      showError("Select the results to verify first (the boxes in the matrix).");
      return;
    }
    showError("");
    showVerifyError("");
    verifyDialog.querySelector("[data-verify-what]").textContent = `You verify ${selectionText(n).replace(" selected", "")}.`;
    verifyDialog.showModal();
    verifyDialog.querySelector("[data-sign-password]").focus();
  });
  verifyDialog.querySelector("[data-verify-sign]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const { body, error } = verifyBody({
      ids: chosen(),
      password: form.querySelector("[data-sign-password]").value,
      username: form.querySelector("[data-sign-username]").value,
    });
    if (error) {
      showVerifyError(error);
      return;
    }
    try {
      await apiPost("/api/v1/observations/verify/", body);
      window.location.reload(); // the verdicts, counts and blocking reasons follow
    } catch (failure) {
      const { message, reasons } = refusal(failure);
      showVerifyError(`Nothing was verified: ${[message, ...reasons].join(" ")}`);
      form.querySelector("[data-sign-password]").value = "";
    }
  });
}

const dispositionDialog = document.querySelector("[data-disposition-dialog]");
const openDisposition = root.querySelector("[data-disposition-open]");
if (dispositionDialog && openDisposition) {
  const form = dispositionDialog.querySelector("[data-disposition-form]");
  const decision = form.querySelector("[data-decision]");
  // The select of the signature's meaning; each decision option names its meaning in data-meaning.
  const meaning = form.querySelector("[data-sign-meaning]");
  const underDeviation = form.querySelector("[data-under-deviation]");
  const deviationField = form.querySelector("[data-deviation-field]");
  const errorBoxDialog = form.querySelector("[data-disposition-error]");
  const done = form.querySelector("[data-disposition-done]");
  const submit = form.querySelector("[data-disposition-submit]");
  let signed = false;

  const followDecision = () => {
    meaning.value = decision.selectedOptions[0]?.dataset.meaning ?? meaning.value;
    const release = decision.value === "release";
    underDeviation.disabled = !release;
    if (!release) underDeviation.checked = false;
    deviationField.hidden = !underDeviation.checked;
  };
  const showRefusal = (message, reasons) => {
    form.querySelector("[data-disposition-message]").textContent = message;
    showList(form.querySelector("[data-disposition-reasons]"), reasons);
    errorBoxDialog.hidden = !message;
  };
  decision.addEventListener("change", followDecision);
  underDeviation.addEventListener("change", followDecision);
  wireCancel(dispositionDialog);
  dispositionDialog.addEventListener("close", () => {
    if (signed) window.location.reload(); // status, buttons and signatures follow the disposition
  });
  openDisposition.addEventListener("click", () => {
    followDecision();
    showRefusal("", []);
    done.hidden = true;
    dispositionDialog.showModal();
    decision.focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { body, error } = dispositionBody({
      decision: decision.value,
      underDeviation: underDeviation.checked,
      deviation: form.querySelector("[data-deviation]").value,
      reason: form.querySelector("[data-reason]").value,
      password: form.querySelector("[data-sign-password]").value,
      meaning: meaning.value,
      username: form.querySelector("[data-sign-username]").value,
    });
    if (error) {
      showRefusal(error, []);
      return;
    }
    submit.disabled = true;
    try {
      const answer = await apiPost(`/api/v1/lots/${lotId}/disposition/`, body);
      signed = true;
      showRefusal("", []);
      showList(form.querySelector("[data-disposition-manifests]"), manifestLines(answer.signatures));
      done.hidden = false;
      submit.hidden = true;
    } catch (failure) {
      const { message, reasons } = refusal(failure);
      showRefusal(message, reasons);
      submit.disabled = false;
    } finally {
      form.querySelector("[data-sign-password]").value = "";
    }
  });
}

const requestRelease = root.querySelector("[data-request-release]");
if (requestRelease) {
  requestRelease.addEventListener("click", async () => {
    requestRelease.disabled = true;
    try {
      const answer = await apiPost(`/api/v1/lots/${lotId}/request-release/`, {});
      const still = answer.reasons.length ? ` Still blocking: ${answer.reasons.map((r) => r.message).join(" ")}` : "";
      showError("");
      requestRelease.textContent = "Release requested";
      requestRelease.after(Object.assign(document.createElement("p"), {
        className: "lot-meta",
        textContent: `The approvers were notified.${still}`,
      }));
    } catch (failure) {
      const { message, reasons } = refusal(failure);
      showError(`The release was not requested: ${[message, ...reasons].join(" ")}`);
      requestRelease.disabled = false;
    }
  });
}
