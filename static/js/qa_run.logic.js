// Pure helpers of the QA run page (no DOM): what an event says in words, and what a batch of events
// changes in the figures. Tested with node (tests/web/js/qa_run.logic.test.mjs).

export const TERMINAL_EVENTS = new Set(["COMPLETE", "FAILED", "CANCELLED"]);

const STATUS_LABELS = {
  REQUESTED: "Requested",
  SPEC_FETCHED: "Spec fetched",
  SCENARIOS_CREATED: "Scenarios created",
  EXECUTING: "Executing",
  EVALUATED: "Evaluated",
  COMPLETE: "Complete",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
};

const VERDICT_LABELS = {
  PASS: "Pass",
  PASS_WITH_WARNINGS: "Pass with warnings",
  FAIL: "Fail",
  ERROR: "Error",
};

export function statusLabel(status) {
  return STATUS_LABELS[status] ?? status;
}

export function verdictLabel(verdict) {
  return VERDICT_LABELS[verdict] ?? verdict;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// One line of words for an event; `tone` is ok / fail / info for its marker (never colour alone:
// the words say it too).
export function eventText({ type, payload = {} }) {
  switch (type) {
    case "REQUESTED":
      return { tone: "info", text: "Run requested." };
    case "SPEC_FETCHED": {
      const refused = payload.servers_refused?.length
        ? ` ${plural(payload.servers_refused.length, "server")} of the spec refused and not called.`
        : "";
      return { tone: "info", text: `Spec read: ${payload.title || "untitled"}, ${plural(payload.operations ?? 0, "operation")}.${refused}` };
    }
    case "SPEC_FETCH_FAILED":
      return { tone: "fail", text: `The spec could not be used: ${payload.reason}` };
    case "SCENARIO_CREATED":
      return { tone: "info", text: `Scenario created: ${payload.name} (${payload.kind}).` };
    case "AI_FAILED":
      return { tone: "fail", text: `AI generation attempt ${payload.attempt} failed for ${payload.operation}: ${payload.reason}` };
    case "AI_SUCCESS":
      return { tone: "ok", text: `AI generation succeeded${payload.operation ? ` for ${payload.operation}` : ""}.` };
    case "EXECUTION_STARTED":
      return { tone: "info", text: `Executing ${plural(payload.scenarios ?? 0, "scenario")}.` };
    case "EXECUTION_SUCCESS":
      return { tone: "ok", text: `Passed: ${payload.operation ?? ""} ${payload.kind ? `(${payload.kind})` : ""}`.trim() };
    case "EXECUTION_FAILED": {
      const failed = Array.isArray(payload.failures) ? payload.failures.join("; ") : payload.failed_checks ?? payload.summary ?? "";
      return { tone: "fail", text: `Failed: ${payload.operation ?? ""} ${payload.kind ? `(${payload.kind})` : ""}${failed ? ` — ${failed}` : ""}`.trim() };
    }
    case "EXECUTION_SKIPPED":
      return { tone: "info", text: `Skipped: ${payload.operation ?? ""} ${payload.kind ? `(${payload.kind})` : ""} — ${payload.reason ?? "not allowed"}`.trim() };
    case "QA_EVAL_DONE":
      return { tone: "info", text: `Evaluated: verdict ${verdictLabel(payload.verdict)}.` };
    case "COMPLETE":
      return { tone: payload.verdict === "FAIL" || payload.verdict === "ERROR" ? "fail" : "ok", text: `Complete: ${verdictLabel(payload.verdict)}.` };
    case "FAILED":
      return { tone: "fail", text: `The run failed: ${payload.reason ?? "no reason given"}` };
    case "CANCELLED":
      return { tone: "info", text: `Cancelled: ${payload.reason ?? ""}`.trim() };
    default:
      return { tone: "info", text: type };
  }
}

// Events merged into what the page holds: new ones only (by sequence), in order; whether the run ended.
export function mergeEvents(known, incoming) {
  const last = known.length ? known[known.length - 1].sequence : 0;
  const fresh = incoming.filter((event) => event.sequence > last).sort((a, b) => a.sequence - b.sequence);
  const all = known.concat(fresh);
  return { all, fresh, ended: all.some((event) => TERMINAL_EVENTS.has(event.type)) };
}

// How many scenarios have been executed, from the events seen.
export function executedCount(events) {
  return events.filter((event) => event.type === "EXECUTION_SUCCESS" || event.type === "EXECUTION_FAILED").length;
}
