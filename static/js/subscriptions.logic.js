// The subscription form's data, without the DOM (tested in Node:
// tests/web/js/subscriptions.logic.test.mjs): what each scope's target list is, how a target is
// named, and the request body POST /api/v1/subscriptions/ takes.

// Where each scope's targets come from (the API lists only what the user may read) and how they
// are sorted for choosing.
export const TARGETS = {
  product: {
    url: "/api/v1/products/?active=true&page_size=500",
    noun: "product",
    label: (p) => `${p.code} — ${p.name}`,
    order: (a, b) => a.code.localeCompare(b.code),
  },
  test: {
    url: "/api/v1/tests/?active=true&page_size=500",
    noun: "test",
    label: (t) => `${t.code} — ${t.name}${t.unit ? ` (${t.unit})` : ""}`,
    order: (a, b) => a.code.localeCompare(b.code),
  },
  lot: {
    url: "/api/v1/lots/?page_size=500",
    noun: "lot",
    label: (l) => `${l.number} · ${l.product_code} (${String(l.status ?? "").replace("_", " ")})`,
    order: (a, b) => String(b.created_at).localeCompare(String(a.created_at)) || b.id - a.id,
  },
  characteristic: {
    url: "/api/v1/characteristics/?active=true&page_size=500",
    noun: "characteristic",
    label: (c) => `${c.product_code} / ${c.test_code} — ${c.test_name}`,
    order: (a, b) => a.product_code.localeCompare(b.product_code) || a.test_code.localeCompare(b.test_code),
  },
};

export const MAX_TARGETS = 1000;

/** [{value, label}] for the target list of `scope`, sorted. */
export function targetOptions(scope, rows) {
  const kind = TARGETS[scope];
  if (!kind) return [];
  return [...rows].sort(kind.order).map((row) => ({ value: String(row.id), label: kind.label(row) }));
}

/**
 * The body for POST /api/v1/subscriptions/: the target under the scope's own name, only the
 * kinds of event that scope can hear (`allowed`), in the order given.
 */
export function subscriptionBody({ scope, target, events, email, allowed }) {
  const kinds = events.filter((kind) => allowed.includes(kind));
  return { scope, [scope]: Number(target), events: kinds, email: Boolean(email) };
}

/**
 * The API's field errors under the form's names: the target field is named after the scope
 * (product, test, lot, characteristic) in the API, "target" in the form.
 */
export function formErrors(fields = {}) {
  const errors = {};
  for (const [name, value] of Object.entries(fields ?? {})) {
    const text = Array.isArray(value) ? value.join(" ") : String(value);
    const key = name in TARGETS ? "target" : name;
    errors[key] = errors[key] ? `${errors[key]} ${text}` : text;
  }
  return errors;
}

/** The user's subscription to this scope and target, if there is one (one per target). */
export function existingSubscription(subscriptions, scope, target) {
  const id = Number(target);
  return subscriptions.find((s) => s.scope === scope && s[scope] === id) ?? null;
}
