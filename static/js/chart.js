// PLACEHOLDER: the chart page's script comes from the chart helper.
const page = document.getElementById("chart-page");
const status = page?.querySelector("[data-chart-status]");
if (status) status.textContent = "The chart is not built yet.";
