// Run with `node --test tests/web/js/` (tests/web/test_js.py runs it under pytest).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  dispositionBody,
  manifestLines,
  refusal,
  selectionText,
  signatureOf,
  verifyBody,
} from "../../../static/js/lot.logic.js";

const SIGN = { password: "secret", meaning: "released" };

describe("a disposition's body", () => {
  it("carries the decision and the signature, the user name only when given", () => {
    assert.deepEqual(dispositionBody({ decision: "release", ...SIGN, username: "  " }), {
      body: { decision: "release", signature: { password: "secret", meaning: "released" } },
    });
    assert.deepEqual(dispositionBody({ decision: "reject", password: "s", meaning: "rejected", username: " qs ", reason: " bad " }).body, {
      decision: "reject", signature: { password: "s", meaning: "rejected", username: "qs" }, reason: "bad",
    });
  });

  it("needs a password and a decision", () => {
    assert.equal(dispositionBody({ decision: "release", meaning: "released" }).error, "Enter your password to sign.");
    assert.equal(dispositionBody({ decision: "", ...SIGN }).error, "Choose the decision.");
  });

  it("takes a deviation on a release only, with its justification", () => {
    assert.equal(dispositionBody({ decision: "release", underDeviation: true, deviation: " ", ...SIGN }).error,
      "Write the justification of the deviation.");
    assert.equal(dispositionBody({ decision: "reject", underDeviation: true, deviation: "x", ...SIGN }).error,
      "Only a release can be under deviation.");
    assert.equal(dispositionBody({ decision: "release", underDeviation: true, deviation: " DEV-12 ", ...SIGN }).body.deviation,
      "DEV-12");
    assert.equal("deviation" in dispositionBody({ decision: "release", deviation: "ignored", ...SIGN }).body, false);
  });
});

describe("a verification's body", () => {
  it("lists each selected result once, signed as verified", () => {
    assert.deepEqual(verifyBody({ ids: ["7", "3", "7"], password: "p" }), {
      body: { observations: [7, 3], signature: { password: "p", meaning: "verified" } },
    });
    assert.deepEqual(signatureOf({ password: "p", meaning: "verified", username: "ada" }), {
      password: "p", meaning: "verified", username: "ada",
    });
  });

  it("needs a selection and a password", () => {
    assert.equal(verifyBody({ ids: [], password: "p" }).error, "Select the results to verify first.");
    assert.equal(verifyBody({ ids: [1], password: "" }).error, "Enter your password to sign.");
  });
});

describe("a refusal in words", () => {
  it("lists every reason of a blocked release", () => {
    const error = {
      message: "Lot L-1 cannot be released: 2 reasons listed.",
      fields: {},
      data: { code: "release_blocked", reasons: [{ code: "tests_not_done", message: "1 required test not done." }, { code: "out_of_spec", message: "1 result out of spec: DIA on item 0002." }] },
    };
    assert.deepEqual(refusal(error), {
      message: "Lot L-1 cannot be released: 2 reasons listed.",
      reasons: ["1 required test not done.", "1 result out of spec: DIA on item 0002."],
    });
  });

  it("names the fields of a 400, nested ones too, and has words without a message", () => {
    const error = { message: "signature: bad", fields: { deviation: ["Justify it."], signature: { meaning: ["Wrong."] } } };
    assert.deepEqual(refusal(error).reasons, ["deviation: Justify it.", "signature.meaning: Wrong."]);
    assert.equal(refusal({}).message, "The request failed.");
  });
});

describe("the page's words", () => {
  it("counts the selection", () => {
    assert.equal(selectionText(0), "No results selected");
    assert.equal(selectionText(1), "1 result selected");
    assert.equal(selectionText(3), "3 results selected");
  });

  it("prints the manifests with their comments", () => {
    assert.deepEqual(manifestLines([{ text: "Released by Ada on 2026-12-07 10:15 UTC", comment: "all in spec" }, { text: "Rejected by Bo", comment: "" }]), [
      "Released by Ada on 2026-12-07 10:15 UTC — all in spec",
      "Rejected by Bo",
    ]);
    assert.deepEqual(manifestLines(undefined), []);
  });
});
