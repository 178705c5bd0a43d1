// What every view of the admin UI shares: API calls with the logged-in key, DOM building,
// messages and times. Everything the API returns goes on the page as text, never as HTML.

export const API_ROOT = new URL("../", window.location.href); // the UI lives at <root>/admin/

/** The logged-in key, and what to do when the server stops accepting it. */
export const session = { key: null, onUnauthorized: () => {} };

export const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- API calls

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** `withHeaders`: `{body, headers}` (for `X-Total-Count` and the like). */
export async function api(
  method,
  path,
  { json, form, query, text = false, withHeaders = false } = {},
) {
  const url = new URL(path.replace(/^\//, ""), API_ROOT);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null) url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${session.key}` };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, "network_error", `The server could not be reached (${error.message}).`);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (error.status === 401) session.onUnauthorized(error);
    throw error;
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") ?? "";
  const data = await (text || !type.includes("json") ? response.text() : response.json());
  return withHeaders ? { body: data, headers: response.headers } : data;
}

async function errorFrom(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let code = "http_error";
  try {
    const data = await response.json();
    if (data?.error?.message) {
      message = data.error.message;
      code = data.error.code ?? code;
    } else if (data?.detail) {
      message = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

// ---------------------------------------------------------------- small DOM helpers

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (["value", "checked", "disabled", "hidden"].includes(name)) node[name] = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function show(node, visible = true) {
  node.hidden = !visible;
}

export function setMessage(node, message) {
  node.replaceChildren();
  if (message instanceof Node) node.append(message);
  else if (message) node.textContent = message;
  show(node, Boolean(message));
}

export function describe(error) {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error);
}

export function fail(node, error, prefix = "") {
  setMessage(node, `${prefix}${describe(error)}`);
}

/** Runs `action` with `button` disabled; errors go to `errorNode` (or the page banner). */
export async function busy(button, errorNode, action) {
  if (button) button.disabled = true;
  if (errorNode) setMessage(errorNode, "");
  try {
    return await action();
  } catch (error) {
    fail(errorNode ?? $("global-error"), error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function parseTime(value) {
  // SQLite hands back naive UTC times: read a time without an offset as UTC.
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Local time, compact: 2026-05-04 14:03. */
export function when(value) {
  const date = value ? parseTime(value) : null;
  if (!date) return value ?? "";
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

export function timeCell(value) {
  const date = value ? parseTime(value) : null;
  return el(
    "td",
    { class: "nowrap" },
    el("time", { datetime: value, title: date ? date.toString() : null }, when(value)),
  );
}

export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function download(filename, text, type = "text/plain") {
  const url = URL.createObjectURL(new Blob([text], { type: `${type};charset=utf-8` }));
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
