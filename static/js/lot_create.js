// The "Open a lot" form (templates/web/lot_create.html). The server does the work in one
// transaction; this only shows the plans of the chosen product and the field for the chosen way
// of numbering the items. Without it, the form still works (every plan shows; the server checks).

const form = document.querySelector("[data-lot-form]");
const product = form.querySelector('select[name="product"]');
const plans = [...form.querySelectorAll("[data-plan-products]")];
const noPlans = form.querySelector("[data-plans-none]");

function showPlans() {
  const chosen = product.value;
  let shown = 0;
  for (const label of plans) {
    const fits = !chosen || label.dataset.planProducts.split(",").includes(chosen);
    label.hidden = !fits;
    const box = label.querySelector("input");
    if (!fits) box.checked = false; // a plan of another product would only be refused
    shown += fits ? 1 : 0;
  }
  if (noPlans) noPlans.hidden = !chosen || shown > 0;
  // One plan for the product: that is the plan.
  const visible = plans.filter((label) => !label.hidden);
  if (chosen && visible.length === 1) visible[0].querySelector("input").checked = true;
}

function showNumbering() {
  const way = form.querySelector('input[name="numbering"]:checked')?.value ?? "count";
  for (const block of form.querySelectorAll("[data-numbering]")) {
    block.hidden = block.dataset.numbering !== way;
  }
}

product.addEventListener("change", showPlans);
form.querySelectorAll('input[name="numbering"]').forEach((radio) => radio.addEventListener("change", showNumbering));
showPlans();
showNumbering();
// After a refused send, the first field with an error has the focus.
form.querySelector('[aria-invalid="true"]')?.focus();
