// The QA runs page: "Start a run" posts to the package's run endpoint and opens the run's page.
// A package that allows unsafe methods (data-unsafe-target) asks first, in a modal <dialog> naming
// the target, and only a confirmation sends confirm_unsafe, which the API requires for such a run.

import { apiPost } from "./api.js";

const errorBox = document.querySelector("[data-qa-error]");
const dialog = document.querySelector("[data-unsafe-dialog]");

// Resolves true when the user confirms the run against `target`, false on Cancel or Escape.
function confirmUnsafe(target) {
  dialog.querySelector("[data-unsafe-dialog-target]").textContent = target;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "start"), { once: true });
  });
}

async function start(button) {
  const target = button.dataset.unsafeTarget;
  if (target && !(await confirmUnsafe(target))) {
    button.focus();
    return;
  }
  button.disabled = true;
  button.textContent = "Starting…";
  errorBox.hidden = true;
  try {
    const body = target ? { confirm_unsafe: true } : {};
    const started = await apiPost(`/api/v1/qa/packages/${button.dataset.startRun}/run/`, body);
    window.location.assign(`/qa/runs/${started.plan_id}/`);
  } catch (error) {
    errorBox.textContent = `The run could not be started: ${error.message}`;
    errorBox.hidden = false;
    button.disabled = false;
    button.textContent = "Start a run";
  }
}

for (const button of document.querySelectorAll("[data-start-run]")) {
  button.addEventListener("click", () => start(button));
}
