// The QA runs page: "Start a run" posts to the package's run endpoint and opens the run's page.

import { apiPost } from "./api.js";

const errorBox = document.querySelector("[data-qa-error]");

for (const button of document.querySelectorAll("[data-start-run]")) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "Starting…";
    errorBox.hidden = true;
    try {
      const started = await apiPost(`/api/v1/qa/packages/${button.dataset.startRun}/run/`);
      window.location.assign(`/qa/runs/${started.plan_id}/`);
    } catch (error) {
      errorBox.textContent = `The run could not be started: ${error.message}`;
      errorBox.hidden = false;
      button.disabled = false;
      button.textContent = "Start a run";
    }
  });
}
