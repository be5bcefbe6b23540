// The lot page's pure logic (static/js/lot.js uses it; tests/web/js/lot.logic.test.mjs tests it):
// the bodies of the signed requests, and the words shown when the server refuses them.

// {"password", "meaning", "username"?}: the user name only when given (asked for the first
// signature of a session).
export function signatureOf({ password, meaning, username }) {
  const signature = { password: password ?? "", meaning };
  const name = (username ?? "").trim();
  if (name) signature.username = name;
  return signature;
}

// The body of POST /api/v1/lots/{id}/disposition/, or {error} saying what to fill in first.
export function dispositionBody({ decision, underDeviation, deviation, reason, password, meaning, username }) {
  if (!decision) return { error: "Choose the decision." };
  if (!password) return { error: "Enter your password to sign." };
  const body = { decision, signature: signatureOf({ password, meaning, username }) };
  if (underDeviation) {
    if (decision !== "release") return { error: "Only a release can be under deviation." };
    const text = (deviation ?? "").trim();
    if (!text) return { error: "Write the justification of the deviation." };
    body.deviation = text;
  }
  const why = (reason ?? "").trim();
  if (why) body.reason = why;
  return { body };
}

// The body of POST /api/v1/observations/verify/, or {error}.
export function verifyBody({ ids, password, username }) {
  const observations = [...new Set(ids.map(Number).filter((id) => Number.isInteger(id) && id > 0))];
  if (observations.length === 0) return { error: "Select the results to verify first." };
  if (!password) return { error: "Enter your password to sign." };
  return { body: { observations, signature: signatureOf({ password, meaning: "verified", username }) } };
}

// What a refused request says: the server's message, every blocking reason of a refused release
// (409 release_blocked), and the field messages of a 400.
export function refusal(error) {
  const reasons = Array.isArray(error?.data?.reasons) ? error.data.reasons.map((r) => r.message) : [];
  const fields = Object.entries(error?.fields ?? {}).flatMap(([name, messages]) => fieldMessages(name, messages));
  return { message: error?.message || "The request failed.", reasons: [...reasons, ...fields] };
}

function fieldMessages(name, messages) {
  if (Array.isArray(messages)) return messages.map((text) => `${name}: ${text}`);
  if (messages && typeof messages === "object") {
    return Object.entries(messages).flatMap(([inner, text]) => fieldMessages(`${name}.${inner}`, text));
  }
  return [`${name}: ${messages}`];
}

// "No results selected" / "1 result selected" / "3 results selected".
export function selectionText(n) {
  if (n === 0) return "No results selected";
  return `${n} result${n === 1 ? "" : "s"} selected`;
}

// The manifests of a signed disposition, as printed lines.
export function manifestLines(signatures) {
  return (signatures ?? []).map((s) => (s.comment ? `${s.text} — ${s.comment}` : s.text));
}
