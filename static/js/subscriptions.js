// The subscriptions page (templates/web/subscriptions.html): the user's subscriptions from the
// API, a form to add one (its targets listed from what the user may read) and deleting one.

import { apiDelete, apiGetAll, apiPost } from "./api.js";
import { formatTime } from "./format.js";
import {
  MAX_TARGETS,
  TARGETS,
  existingSubscription,
  formErrors,
  subscriptionBody,
  targetOptions,
} from "./subscriptions.logic.js";

const API = "/api/v1/subscriptions/";

const root = document.querySelector("[data-subscriptions]");
const form = root.querySelector("[data-subscribe-form]");
const el = {
  scope: form.querySelector("[data-scope]"),
  target: form.querySelector("[data-target]"),
  targetHelp: form.querySelector("[data-target-help]"),
  kinds: [...form.querySelectorAll("[data-kind]")],
  email: form.querySelector('input[name="email"]'),
  submit: form.querySelector("[data-subscribe]"),
  formError: form.querySelector("[data-form-error]"),
  formDone: form.querySelector("[data-form-done]"),
  fieldErrors: [...form.querySelectorAll("[data-field-error]")],
  listStatus: root.querySelector("[data-list-status]"),
  listError: root.querySelector("[data-list-error]"),
  table: root.querySelector("[data-subscription-table]"),
  rows: root.querySelector("[data-subscription-rows]"),
  empty: root.querySelector("[data-list-empty]"),
};
const timeZone = document.body.dataset.timeZone || "UTC";
// The words for each kind of event, from the form's own labels (the server's choices).
const KIND_LABELS = Object.fromEntries(
  el.kinds.map((label) => [label.dataset.kind, label.querySelector("[data-kind-label]").textContent.trim()]),
);

let subscriptions = [];
const targetCache = new Map(); // scope -> Promise of its options
let targetGeneration = 0;

function show(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

function allowedKinds() {
  return (el.scope.selectedOptions[0]?.dataset.kinds ?? "").split(",").filter(Boolean);
}

// --- The form -------------------------------------------------------------------------------

function showKinds() {
  const allowed = allowedKinds();
  for (const label of el.kinds) {
    const input = label.querySelector("input");
    const heard = allowed.includes(input.value);
    label.hidden = !heard;
    input.disabled = !heard;
  }
}

function loadTargets(scope) {
  if (!targetCache.has(scope)) {
    const request = apiGetAll(TARGETS[scope].url, { limit: MAX_TARGETS }).then((rows) => targetOptions(scope, rows));
    request.catch(() => targetCache.delete(scope)); // a failure is tried again next time
    targetCache.set(scope, request);
  }
  return targetCache.get(scope);
}

async function showTargets() {
  const scope = el.scope.value;
  const noun = TARGETS[scope].noun;
  const mine = ++targetGeneration;
  el.target.disabled = true;
  el.target.replaceChildren(new Option(`Loading the ${noun}s you may read…`, ""));
  show(el.targetHelp, "");
  try {
    const options = await loadTargets(scope);
    if (mine !== targetGeneration) return;
    if (options.length === 0) {
      el.target.replaceChildren(new Option(`No ${noun}s to choose from`, ""));
      show(el.targetHelp, `There is no ${noun} you may read yet.`);
      return;
    }
    el.target.replaceChildren(
      new Option(`Choose a ${noun}…`, ""),
      ...options.map((option) => new Option(option.label, option.value)),
    );
    el.target.disabled = false;
  } catch (error) {
    if (mine !== targetGeneration) return;
    el.target.replaceChildren(new Option("Could not load the list", ""));
    show(el.targetHelp, `The ${noun}s could not be loaded: ${error.message} Choose the kind again to retry.`);
  }
}

function clearErrors() {
  show(el.formError, "");
  for (const p of el.fieldErrors) show(p, "");
  el.target.removeAttribute("aria-invalid");
}

function showErrors(errors) {
  for (const p of el.fieldErrors) show(p, errors[p.dataset.fieldError] ?? "");
  if (errors.target) el.target.setAttribute("aria-invalid", "true");
  const rest = Object.entries(errors).filter(([name]) => !el.fieldErrors.some((p) => p.dataset.fieldError === name));
  if (rest.length > 0) show(el.formError, rest.map(([, text]) => text).join(" "));
}

async function subscribe(event) {
  event.preventDefault();
  clearErrors();
  show(el.formDone, "");
  const scope = el.scope.value;
  const events = el.kinds.map((label) => label.querySelector("input")).filter((i) => i.checked && !i.disabled).map((i) => i.value);
  const errors = {};
  if (!el.target.value) errors.target = `Choose a ${TARGETS[scope].noun}.`;
  if (events.length === 0) errors.events = "Choose at least one kind of event.";
  if (Object.keys(errors).length > 0) {
    showErrors(errors);
    (errors.target ? el.target : el.kinds.find((label) => !label.hidden)?.querySelector("input"))?.focus();
    return;
  }
  const label = el.target.selectedOptions[0].textContent;
  const already = `You already subscribe to ${label}: it is in your list. Delete it there to subscribe with other events.`;
  if (existingSubscription(subscriptions, scope, el.target.value)) {
    show(el.formError, already);
    return;
  }
  el.submit.disabled = true;
  try {
    const created = await apiPost(
      API,
      subscriptionBody({ scope, target: el.target.value, events, email: el.email.checked, allowed: allowedKinds() }),
    );
    subscriptions = [created, ...subscriptions.filter((s) => s.id !== created.id)];
    renderList();
    show(el.formDone, `Subscribed to ${created.target || label}. Its notifications will reach your inbox.`);
    el.target.value = "";
  } catch (error) {
    if (error.status === 409) {
      show(el.formError, already); // subscribed in another tab meanwhile
      loadList();
    } else {
      const fieldErrors = formErrors(error.fields);
      if (Object.keys(fieldErrors).length > 0) showErrors(fieldErrors);
      else show(el.formError, `Could not subscribe: ${error.message}`);
    }
  } finally {
    el.submit.disabled = false;
  }
}

// --- The list -------------------------------------------------------------------------------

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function row(subscription) {
  const tr = document.createElement("tr");
  tr.dataset.subscriptionId = String(subscription.id);
  const what = document.createElement("th");
  what.scope = "row";
  const scopeLabel = [...el.scope.options].find((o) => o.value === subscription.scope)?.textContent ?? subscription.scope;
  what.append(subscription.target || `${scopeLabel} ${subscription.id}`);
  const kind = document.createElement("span");
  kind.className = "subscription-scope";
  kind.textContent = scopeLabel + (subscription.active ? "" : " · paused");
  what.append(kind);
  const kinds = subscription.events.map((k) => KIND_LABELS[k] ?? k).join("; ");
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "button button--quiet button--danger";
  remove.textContent = "Delete";
  remove.dataset.delete = String(subscription.id);
  remove.setAttribute("aria-label", `Delete the subscription to ${subscription.target}`);
  const actions = document.createElement("td");
  actions.append(remove);
  tr.append(what, cell(kinds), cell(subscription.email ? "Yes" : "No"), cell(formatTime(subscription.created_at, timeZone)), actions);
  return tr;
}

function renderList() {
  el.rows.replaceChildren(...subscriptions.map(row));
  el.table.hidden = subscriptions.length === 0;
  el.empty.hidden = subscriptions.length > 0;
}

async function loadList() {
  show(el.listStatus, "Loading your subscriptions…");
  try {
    subscriptions = await apiGetAll(`${API}?page_size=500`);
    show(el.listStatus, "");
    show(el.listError, "");
    renderList();
  } catch (error) {
    show(el.listStatus, "");
    show(el.listError, `Your subscriptions could not be loaded: ${error.message} Reload the page to try again.`);
  }
}

async function remove(button) {
  const id = Number(button.dataset.delete);
  const subscription = subscriptions.find((s) => s.id === id);
  if (!subscription) return;
  if (!window.confirm(`Delete the subscription to ${subscription.target}? Its notifications stay in your inbox.`)) return;
  button.disabled = true;
  try {
    await apiDelete(`${API}${id}/`);
  } catch (error) {
    if (error.status !== 404) {
      // 404: already gone (another tab); anything else keeps the row.
      button.disabled = false;
      show(el.listError, `Could not delete it: ${error.message}`);
      return;
    }
  }
  const index = subscriptions.indexOf(subscription);
  subscriptions = subscriptions.filter((s) => s.id !== id);
  show(el.listError, "");
  renderList();
  // Focus stays in the list: on the next row's button, else the previous, else the heading.
  const buttons = el.rows.querySelectorAll("[data-delete]");
  (buttons[Math.min(index, buttons.length - 1)] ?? root.querySelector("#subscriptions-title"))?.focus?.();
  show(el.formDone, `Deleted the subscription to ${subscription.target}.`);
}

el.rows.addEventListener("click", (event) => {
  const button = event.target.closest("[data-delete]");
  if (button) remove(button);
});
el.scope.addEventListener("change", () => {
  clearErrors();
  showKinds();
  showTargets();
});
form.addEventListener("submit", subscribe);

showKinds();
showTargets();
loadList();
