// REST calls from the browser with the session cookie. Writes carry the CSRF token.
//
//   import { apiDelete, apiGet, apiGetAll, apiPost, ApiError } from "./api.js";
//   const page = await apiGet("/api/v1/samples/?characteristic=3");   // parsed JSON
//   await apiPost("/api/v1/violations/7/acknowledge/", { reason: "…" });
//
// A failed call throws ApiError: `message` is the API's own message (openspc/api.py's
// {"error": {"code", "message", "fields"}}), or a plain sentence when the server could not be
// reached or did not answer in that format; `status` (0 when unreachable), `code` and `fields`;
// `data` is the whole error object (some errors add members, e.g. a blocked release's `reasons`).

export class ApiError extends Error {
  constructor(message, { status = 0, code = "error", fields = {}, data = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.data = data;
  }
}

function csrfToken() {
  const cookie = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
  if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
  // base.html also puts it in a meta tag, for when the cookie is not readable.
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

async function request(method, path, body, { timeoutMs } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  let response;
  // With timeoutMs, a server that does not answer in time is a failure like an unreachable one.
  const signal = timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch {
    if (signal?.aborted) {
      throw new ApiError("The server did not answer in time. Check the connection and try again.", {
        code: "timeout",
      });
    }
    throw new ApiError("The server could not be reached. Check the connection and try again.", {
      code: "network_error",
    });
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data?.error;
    throw new ApiError(
      error?.message || `The server answered ${response.status} ${response.statusText}.`.trim(),
      { status: response.status, code: error?.code, fields: error?.fields, data: error ?? null },
    );
  }
  return data;
}

export function apiGet(path, options = {}) {
  return request("GET", path, undefined, options);
}

// options: {timeoutMs} gives up waiting for an answer after that long (an ApiError, status 0).
export function apiPost(path, body = {}, options = {}) {
  return request("POST", path, body, options);
}

export function apiDelete(path) {
  return request("DELETE", path);
}

// Every page of a paginated list ({"count", "next", "results"}), as one array; stops at `limit`.
export async function apiGetAll(path, { limit = Infinity } = {}) {
  const results = [];
  let next = path;
  while (next && results.length < limit) {
    const page = await apiGet(next);
    results.push(...page.results);
    next = page.next;
  }
  return results.slice(0, limit);
}
