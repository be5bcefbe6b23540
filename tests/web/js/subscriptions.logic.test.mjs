// Run with `node --test tests/web/js/` (tests/web/test_js.py runs it under pytest).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  TARGETS,
  existingSubscription,
  formErrors,
  subscriptionBody,
  targetOptions,
} from "../../../static/js/subscriptions.logic.js";

describe("targetOptions", () => {
  it("names products by code and name, sorted by code", () => {
    const rows = [{ id: 2, code: "SHAFT-9", name: "Shaft" }, { id: 1, code: "RING-74", name: "Piston ring" }];
    assert.deepEqual(targetOptions("product", rows), [
      { value: "1", label: "RING-74 — Piston ring" },
      { value: "2", label: "SHAFT-9 — Shaft" },
    ]);
  });
  it("gives a test's unit", () => {
    assert.deepEqual(targetOptions("test", [{ id: 4, code: "DIA", name: "Bore diameter", unit: "mm" }]), [
      { value: "4", label: "DIA — Bore diameter (mm)" },
    ]);
  });
  it("lists lots newest first, with product and status", () => {
    const rows = [
      { id: 1, number: "L-1", product_code: "RING-74", status: "released", created_at: "2026-01-01T00:00:00Z" },
      { id: 2, number: "L-2", product_code: "RING-74", status: "in_testing", created_at: "2026-02-01T00:00:00Z" },
    ];
    assert.deepEqual(targetOptions("lot", rows).map((o) => o.label), [
      "L-2 · RING-74 (in testing)",
      "L-1 · RING-74 (released)",
    ]);
  });
  it("names characteristics by product and test", () => {
    const rows = [
      { id: 9, product_code: "RING-74", test_code: "WALL", test_name: "Wall thickness" },
      { id: 8, product_code: "RING-74", test_code: "DIA", test_name: "Bore diameter" },
    ];
    assert.deepEqual(targetOptions("characteristic", rows).map((o) => o.value), ["8", "9"]);
    assert.equal(targetOptions("characteristic", rows)[0].label, "RING-74 / DIA — Bore diameter");
  });
  it("knows no other scope", () => {
    assert.deepEqual(targetOptions("plant", [{ id: 1 }]), []);
  });
  it("asks the API only for what the user may read, active where that applies", () => {
    assert.match(TARGETS.product.url, /^\/api\/v1\/products\/\?active=true/);
    assert.match(TARGETS.characteristic.url, /^\/api\/v1\/characteristics\/\?active=true/);
  });
});

describe("subscriptionBody", () => {
  it("names the target after its scope and keeps only the events the scope hears", () => {
    const body = subscriptionBody({
      scope: "lot", target: "7", events: ["results", "violations", "limits"], email: false,
      allowed: ["results", "violations", "disposition"],
    });
    assert.deepEqual(body, { scope: "lot", lot: 7, events: ["results", "violations"], email: false });
  });
});

describe("formErrors", () => {
  it("puts the scope's target errors under the form's target field", () => {
    assert.deepEqual(formErrors({ product: ["Product 9 does not exist or you may not read it."], events: "Give a list." }), {
      target: "Product 9 does not exist or you may not read it.",
      events: "Give a list.",
    });
  });
  it("is empty for no fields", () => {
    assert.deepEqual(formErrors(undefined), {});
    assert.deepEqual(formErrors({}), {});
  });
});

describe("existingSubscription", () => {
  const held = [
    { id: 1, scope: "product", product: 4, test: null, lot: null, characteristic: null },
    { id: 2, scope: "lot", product: null, test: null, lot: 4, characteristic: null },
  ];
  it("finds the subscription to the same scope and target", () => {
    assert.equal(existingSubscription(held, "lot", "4").id, 2);
    assert.equal(existingSubscription(held, "product", "4").id, 1);
  });
  it("finds none for another target or scope", () => {
    assert.equal(existingSubscription(held, "product", "5"), null);
    assert.equal(existingSubscription(held, "test", "4"), null);
  });
});
