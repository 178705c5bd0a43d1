// The calls console: the live board, call history, transcript search and one call's page.
// Captions come from the server's events socket (`/v1/calls/{id}/events`) with a stream
// token, recordings from `/v1/calls/{id}/recordings/{leg}` (the token again: an <audio>
// element sends no headers). Everything the API returns goes on the page as text.

import {
  $,
  API_ROOT,
  api,
  busy,
  describe,
  download,
  el,
  fail,
  parseTime,
  plural,
  setMessage,
  show,
  when,
} from "./lib.js";

const BOARD_POLL_MS = 2000;
const FOLLOWED_MAX = 12; // calls on the board whose captions stream at once
const BOARD_LINES = 3; // finals kept per leg on a board card
const PAGE = 25;
const TOKEN_TTL_S = 900;
const POSTCALL_POLL_MS = 3000;
const LEG_ORDER = ["agent", "customer", "mixed"];
const VIEWS = ["board-view", "history-view", "search-view", "call-view"];

const ctx = {
  admin: false,
  tenant: "", // the admin's tenant filter ("" = every tenant)
  view: null, // the view on screen, with its `leave()`
  last: { history: "#/calls/history", search: "#/calls/search" }, // where "back" goes
};

// ---------------------------------------------------------------- small helpers

/** 83_000 ms -> "1:23"; hours when there are some. */
function clock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

function duration(call) {
  const start = parseTime(call.started_at);
  const end = call.ended_at ? parseTime(call.ended_at) : new Date();
  return start ? clock(end - start) : "";
}

/** The tenant's hot-word version (0: the tenant never had a list). */
const hotwords = (call) => (call.hotword_version ? `version ${call.hotword_version}` : "none");

const legRank = (leg) => (LEG_ORDER.includes(leg) ? LEG_ORDER.indexOf(leg) : LEG_ORDER.length);
const byLeg = (a, b) => legRank(a) - legRank(b) || a.localeCompare(b);

function statusPill(status) {
  const kind = { active: "live", ended: "muted", interrupted: "warn" }[status] ?? "muted";
  return el("span", { class: `pill ${kind}`, "data-testid": "status" }, status);
}

/** A description list's rows, each term with its value in one grid cell. */
function metaRows(rows) {
  return rows.map(([term, value]) => el("div", {}, el("dt", {}, term), el("dd", {}, value)));
}

function legPill(leg) {
  return el("span", { class: `leg leg-${legRank(leg)}` }, leg);
}

/** `text` with the [start, end) spans in <mark>. */
function marked(text, spans) {
  const nodes = [];
  let last = 0;
  for (const [start, end] of spans) {
    if (start > last) nodes.push(text.slice(last, start));
    nodes.push(el("mark", {}, text.slice(start, end)));
    last = end;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

/** A local date (input type=date) as the UTC instant it starts; `nextDay` for "to". */
function dayStart(value, nextDay = false) {
  if (!value) return undefined;
  const date = new Date(`${value}T00:00`);
  if (nextDay) date.setDate(date.getDate() + 1);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function tenantQuery() {
  return ctx.admin && ctx.tenant ? ctx.tenant : undefined;
}

function hashFor(view, params = {}) {
  const query = new URLSearchParams(
    Object.entries(params).filter(([, value]) => value !== undefined && value !== ""),
  );
  const rest = query.toString();
  return `#/calls/${view}${rest ? `?${rest}` : ""}`;
}

const callHash = (id, params = {}) => hashFor(`c/${encodeURIComponent(id)}`, params);

// ---------------------------------------------------------------- stream tokens

const tokens = new Map(); // tenant -> {token, until (ms)}

/** A stream token acting for `tenant` (admins name it; tenant keys get their own). */
async function tokenFor(tenant) {
  const cached = tokens.get(tenant);
  if (cached && cached.until - Date.now() > 60_000) return cached.token;
  const body = { ttl_s: TOKEN_TTL_S, ...(ctx.admin ? { tenant_id: tenant } : {}) };
  const minted = await api("POST", "/v1/tokens", { json: body });
  tokens.set(tenant, { token: minted.token, until: parseTime(minted.expires_at).getTime() });
  return minted.token;
}

function socketUrl(path, token) {
  const url = new URL(path.replace(/^\//, ""), API_ROOT);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", token);
  return url;
}

/**
 * One call's events socket. `onEvent(event)` gets every JSON event; `onGone(reason)` once
 * when the socket will not come back: the call ended, or this server does not hold it. A
 * socket that drops otherwise is opened again after a pause.
 */
class CallEvents {
  constructor(call, onEvent, onGone) {
    this.call = call;
    this.onEvent = onEvent;
    this.onGone = onGone;
    this.closed = false;
    this.socket = null;
    this.retry = null;
  }

  async open() {
    if (this.closed) return;
    let token;
    try {
      token = await tokenFor(this.call.tenant_id);
    } catch (error) {
      this.gone(`captions unavailable: ${describe(error)}`);
      return;
    }
    if (this.closed) return;
    const path = `/v1/calls/${encodeURIComponent(this.call.id)}/events`;
    const socket = new WebSocket(socketUrl(path, token));
    this.socket = socket;
    socket.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      this.onEvent(event);
      if (event.type === "call_ended") this.gone("");
    });
    socket.addEventListener("close", (closing) => {
      if (this.closed) return;
      if (closing.code === 4404) {
        // Not (or no longer) held by this server: ended meanwhile, or on another process.
        this.gone("this server does not hold the call: its captions are not available here");
      } else if (closing.code === 4401) {
        tokens.delete(this.call.tenant_id);
        this.retryLater();
      } else {
        this.retryLater();
      }
    });
  }

  retryLater() {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.open(), 2000);
  }

  gone(reason) {
    if (this.closed) return;
    this.close();
    this.onGone(reason);
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    this.socket?.close();
  }
}

// ---------------------------------------------------------------- routing

export function initCalls({ admin, tenants }) {
  ctx.admin = admin;
  const select = $("calls-tenant");
  select.replaceChildren(
    el("option", { value: "" }, "All tenants"),
    ...tenants.map((tenant) => el("option", { value: tenant.id }, `${tenant.name} (${tenant.id})`)),
  );
  select.value = ctx.tenant;
}

let wired = false;
function wire() {
  if (wired) return;
  wired = true;
  $("calls-tenant").addEventListener("change", (event) => {
    ctx.tenant = event.target.value;
    const { parts, params } = parse(window.location.hash);
    if (parts[1] === "c") return; // a call's page is one call: the filter is for the lists
    params.delete("page");
    showCalls(`#/calls/${parts[1] ?? "live"}?${params}`);
  });
  $("history-form").addEventListener("submit", (event) => {
    event.preventDefault();
    window.location.hash = hashFor("history", historyFilters());
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("search-q").value.trim();
    if (!q) {
      setMessage($("search-summary"), "Type something that was said.");
      return;
    }
    window.location.hash = hashFor("search", { ...searchFilters(), q });
  });
  $("download-transcript").addEventListener("click", downloadTranscript);
  document.addEventListener("visibilitychange", () => {
    if (ctx.view?.name === "board" && !document.hidden) refreshBoard();
  });
}

function parse(hash) {
  const [path, query = ""] = hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query) };
}

/** Show the calls view named by `hash` (`#/calls/live`, `/history`, `/search`, `/c/<id>`). */
export function showCalls(hash) {
  wire();
  const { parts, params } = parse(hash);
  leaveView();
  setMessage($("calls-error"), "");
  const [, name = "live", id] = parts;
  for (const tab of ["live", "history", "search"]) {
    const link = $(`tab-${tab}`);
    if (tab === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (name === "c" && id) openCall(decodeURIComponent(id), params);
  else if (name === "history") openHistory(params);
  else if (name === "search") openSearch(params);
  else openBoard();
}

/** Leave the calls views: sockets closed, timers stopped, audio paused. */
export function hideCalls() {
  leaveView();
}

function leaveView() {
  ctx.view?.leave();
  ctx.view = null;
}

function showView(id) {
  for (const view of VIEWS) show($(view), view === id);
}

// ---------------------------------------------------------------- live board

const board = {
  cards: new Map(), // call id -> BoardCard
  timer: null,
  ticker: null,
};

function openBoard() {
  showView("board-view");
  ctx.view = { name: "board", leave: leaveBoard };
  $("board-status").textContent = "Loading…";
  refreshBoard();
  board.timer = setInterval(() => {
    if (!document.hidden) refreshBoard();
  }, BOARD_POLL_MS);
  board.ticker = setInterval(() => {
    for (const card of board.cards.values()) card.tick();
  }, 1000);
}

function leaveBoard() {
  clearInterval(board.timer);
  clearInterval(board.ticker);
  for (const card of board.cards.values()) card.close();
  board.cards.clear();
  $("board").replaceChildren();
}

let refreshing = false;
async function refreshBoard() {
  if (refreshing) return;
  refreshing = true;
  try {
    const calls = await api("GET", "/v1/calls", {
      query: { active: "true", limit: 200, tenant_id: tenantQuery() },
    });
    if (ctx.view?.name !== "board") return;
    renderBoard(calls);
    $("board-status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    setMessage($("calls-error"), "");
  } catch (error) {
    fail($("calls-error"), error, "The board could not be updated: ");
  } finally {
    refreshing = false;
  }
}

function renderBoard(calls) {
  const current = new Set(calls.map((call) => call.id));
  for (const [id, card] of board.cards) {
    if (!current.has(id) && !card.ending) {
      card.close();
      card.node.remove();
      board.cards.delete(id);
    }
  }
  // Oldest first: a new call joins the end, the board does not jump.
  const ordered = [...calls].sort((a, b) => a.started_at.localeCompare(b.started_at));
  for (const call of ordered) {
    let card = board.cards.get(call.id);
    if (!card) {
      card = new BoardCard(call);
      board.cards.set(call.id, card);
      $("board").append(card.node);
    }
    card.update(call);
  }
  let followed = 0;
  for (const card of board.cards.values()) {
    if (followed < FOLLOWED_MAX && !card.ending) {
      card.follow();
      followed += 1;
    } else {
      card.unfollow();
    }
  }
  const live = calls.length;
  $("board-count").textContent = plural(live, "call");
  show($("board-empty"), board.cards.size === 0);
  setMessage(
    $("board-capped"),
    live > FOLLOWED_MAX
      ? `Captions stream for the first ${FOLLOWED_MAX} calls; open any call to follow it.`
      : "",
  );
}

/** One active call on the board: its details, and the last captions of each leg. */
class BoardCard {
  constructor(call) {
    this.call = call;
    this.events = null;
    this.ending = false;
    this.legs = new Map(); // leg -> {finals: <ol>, partial: <p>}
    this.open = el(
      "a",
      { href: callHash(call.id), class: "call-link", "data-testid": "board-open" },
      call.id,
    );
    this.status = el("span", {}, statusPill(call.status));
    this.meta = el("dl", { class: "meta compact" });
    this.alerts = el("div", { class: "alerts", role: "alert" });
    this.lines = el("div", { class: "board-legs" });
    this.note = el("p", { class: "hint" });
    this.node = el(
      "article",
      { class: "card call-card", "data-testid": "board-call", "data-call-id": call.id },
      el("header", { class: "card-head" }, this.open, el("span", { class: "spacer" }), this.status),
      this.meta,
      this.alerts,
      this.lines,
      this.note,
    );
  }

  update(call) {
    this.call = { ...this.call, ...call };
    for (const leg of call.legs) this.leg(leg);
    this.tick();
  }

  tick() {
    const call = this.call;
    const rows = [
      ...(ctx.admin ? [["Tenant", call.tenant_id]] : []),
      ["Source", call.source],
      ["Started", when(call.started_at)],
      ["Duration", duration(call)],
      ["Language", call.language ?? "auto"],
      ["Hot-words", hotwords(call)],
    ];
    this.meta.replaceChildren(...metaRows(rows));
  }

  leg(name) {
    if (!this.legs.has(name)) {
      const finals = el("ol", { class: "board-finals" });
      const partial = el("p", { class: "partial", "data-testid": "board-partial" });
      const row = el(
        "div",
        { class: "board-leg", "data-leg": name },
        legPill(name),
        el("div", { class: "board-text" }, finals, partial),
      );
      this.legs.set(name, { finals, partial, row });
      const rows = [...this.legs.entries()].sort(([a], [b]) => byLeg(a, b));
      this.lines.replaceChildren(...rows.map(([, leg]) => leg.row));
    }
    return this.legs.get(name);
  }

  follow() {
    if (this.events) return;
    setMessage(this.note, "");
    this.events = new CallEvents(
      this.call,
      (event) => this.onEvent(event),
      (reason) => {
        this.events = null;
        if (reason) setMessage(this.note, reason);
      },
    );
    this.events.open();
  }

  unfollow() {
    this.events?.close();
    this.events = null;
  }

  onEvent(event) {
    if (event.type === "listening") {
      for (const leg of event.legs) this.leg(leg);
    } else if (event.type === "partial" && event.leg) {
      this.leg(event.leg).partial.textContent = event.text;
    } else if (event.type === "final" && event.leg) {
      const leg = this.leg(event.leg);
      leg.partial.textContent = "";
      if (!event.text.trim()) return;
      leg.finals.append(
        el(
          "li",
          { "data-testid": "board-final", "data-leg": event.leg, "data-start": event.start_ms },
          el("span", { class: "time" }, clock(event.start_ms)),
          " ",
          event.text.trim(),
        ),
      );
      while (leg.finals.children.length > BOARD_LINES) leg.finals.firstElementChild.remove();
    } else if (event.type === "error") {
      this.alerts.append(alertFor(event));
    } else if (event.type === "call_ended") {
      this.ending = true;
      this.status.replaceChildren(statusPill(event.status));
      for (const leg of this.legs.values()) leg.partial.textContent = "";
      // It stays a moment, then leaves with the next refresh.
      setTimeout(() => {
        this.ending = false;
      }, 5000);
    }
  }

  close() {
    this.unfollow();
  }
}

function alertFor(event) {
  const text =
    event.code === "audio_overflow"
      ? `Audio overflow${event.leg ? ` on the ${event.leg} leg` : ""}: ${event.message}`
      : `${event.code}: ${event.message}`;
  return el("p", { class: "alert", "data-testid": `alert-${event.code}` }, text);
}

// ---------------------------------------------------------------- history

function historyFilters() {
  return {
    from: $("history-from").value,
    to: $("history-to").value,
    status: $("history-status").value,
    language: $("history-language").value,
    leg: $("history-leg").value,
  };
}

async function openHistory(params) {
  showView("history-view");
  ctx.view = { name: "history", leave: () => {} };
  ctx.last.history = hashFor("history", Object.fromEntries(params));
  for (const name of ["from", "to", "status", "language", "leg"]) {
    $(`history-${name}`).value = params.get(name) ?? "";
  }
  const page = Math.max(0, Number(params.get("page") ?? 0) || 0);
  const query = {
    active: params.get("status") ? undefined : "false",
    status: params.get("status") || undefined,
    language: params.get("language") || undefined,
    leg: params.get("leg") || undefined,
    since: dayStart(params.get("from")),
    until: dayStart(params.get("to"), true),
    order: "desc",
    limit: PAGE,
    offset: page * PAGE,
    tenant_id: tenantQuery(),
  };
  let calls;
  let total = 0;
  try {
    const listed = await api("GET", "/v1/calls", { query, withHeaders: true });
    calls = listed.body;
    total = Number(listed.headers.get("x-total-count") ?? calls.length);
  } catch (error) {
    fail($("calls-error"), error, "Calls could not be listed: ");
    return;
  }
  if (ctx.view?.name !== "history") return;
  const body = $("history-table").tBodies[0];
  body.replaceChildren(
    ...calls.map((call) =>
      el(
        "tr",
        { "data-testid": "history-row", "data-call-id": call.id },
        el("td", { class: "nowrap" }, when(call.started_at)),
        el("td", {}, duration(call)),
        ctx.admin ? el("td", { class: "mono" }, call.tenant_id) : null,
        el("td", {}, call.source),
        el("td", {}, ...call.legs.sort(byLeg).map(legPill)),
        el("td", {}, call.language ?? "auto"),
        el("td", {}, hotwords(call)),
        el("td", {}, statusPill(call.status)),
        el(
          "td",
          { class: "actions" },
          el(
            "a",
            {
              href: callHash(call.id, { from: "history" }),
              class: "button small",
              "aria-label": `Open the call started ${when(call.started_at)}`,
            },
            "Open",
          ),
        ),
      ),
    ),
  );
  show($("history-empty"), calls.length === 0);
  const first = total ? page * PAGE + 1 : 0;
  $("history-range").textContent = `${first}–${page * PAGE + calls.length} of ${total}`;
  pager("history", page, (page + 1) * PAGE < total, (next) =>
    hashFor("history", { ...Object.fromEntries(params), page: next }),
  );
}

function pager(prefix, page, hasNext, hashOf) {
  const prev = $(`${prefix}-prev`);
  const next = $(`${prefix}-next`);
  prev.disabled = page === 0;
  next.disabled = !hasNext;
  prev.onclick = () => {
    window.location.hash = hashOf(page - 1);
  };
  next.onclick = () => {
    window.location.hash = hashOf(page + 1);
  };
}

// ---------------------------------------------------------------- search

function searchFilters() {
  return {
    from: $("search-from").value,
    to: $("search-to").value,
    leg: $("search-leg").value,
    pass: $("search-pass").value,
  };
}

async function openSearch(params) {
  showView("search-view");
  ctx.view = { name: "search", leave: () => {} };
  ctx.last.search = hashFor("search", Object.fromEntries(params));
  const q = params.get("q") ?? "";
  $("search-q").value = q;
  for (const name of ["from", "to", "leg", "pass"]) {
    $(`search-${name}`).value = params.get(name) ?? "";
  }
  const results = $("search-results");
  results.replaceChildren();
  $("search-range").textContent = "";
  pager("search", 0, false, () => "");
  if (!q) {
    $("search-summary").textContent = "Find calls by what was said, in any language.";
    $("search-q").focus();
    return;
  }
  const page = Math.max(0, Number(params.get("page") ?? 0) || 0);
  $("search-summary").textContent = "Searching…";
  const found = await busy($("search-submit"), $("calls-error"), () =>
    api("GET", "/v1/search", {
      query: {
        q,
        leg: params.get("leg") || undefined,
        pass: params.get("pass") || undefined,
        since: dayStart(params.get("from")),
        until: dayStart(params.get("to"), true),
        limit: PAGE,
        offset: page * PAGE,
        tenant_id: tenantQuery(),
      },
    }),
  );
  if (!found || ctx.view?.name !== "search") {
    $("search-summary").textContent = "";
    return;
  }
  const partial = found.complete
    ? ""
    : " (a query of one or two characters reads only the newest 100,000 segments: " +
      "narrow the dates to reach older calls)";
  const count = found.total === 1 ? "1 call or job" : `${found.total} calls and jobs`;
  $("search-summary").textContent = `${count} said “${found.query}”${partial}.`;
  results.replaceChildren(...found.results.map(searchResult));
  const first = found.total ? page * PAGE + 1 : 0;
  $("search-range").textContent = `${first}–${page * PAGE + found.results.length} of ${found.total}`;
  pager("search", page, (page + 1) * PAGE < found.total, (next) =>
    hashFor("search", { ...Object.fromEntries(params), page: next }),
  );
}

function searchResult(result) {
  const isCall = result.type === "call";
  const title = isCall
    ? el("a", { href: callHash(result.id, { from: "search" }), class: "call-link" }, result.id)
    : el("span", { class: "mono" }, result.file_name ?? result.id);
  const more = result.match_count - result.matches.length;
  return el(
    "li",
    { class: "card result", "data-testid": "search-result", "data-id": result.id },
    el(
      "header",
      { class: "card-head" },
      el("span", { class: "pill muted" }, isCall ? "call" : "batch job"),
      title,
      el("span", { class: "spacer" }),
      ctx.admin ? el("span", { class: "mono hint" }, result.tenant_id) : null,
      el("span", { class: "hint" }, when(result.at)),
      statusPill(result.status),
    ),
    el(
      "ol",
      { class: "matches" },
      ...result.matches.map((match) => {
        const label = `${clock(match.time_ms)} · ${match.leg} · ${
          match.pass === "live" ? "live" : "post-call"
        }`;
        const at = isCall
          ? el(
              "a",
              {
                href: callHash(result.id, { t: match.time_ms, leg: match.leg, from: "search" }),
                class: "time",
                "data-testid": "match-time",
                "data-time-ms": match.time_ms,
                "aria-label": `Play from ${clock(match.time_ms)} (${match.leg})`,
              },
              label,
            )
          : el("span", { class: "time", "data-time-ms": match.time_ms }, label);
        return el(
          "li",
          { "data-testid": "search-match" },
          at,
          " ",
          el("span", { class: "snippet" }, ...marked(match.snippet, match.highlights)),
        );
      }),
    ),
    more > 0 ? el("p", { class: "hint" }, `and ${plural(more, "more matching segment")}`) : null,
  );
}

// ---------------------------------------------------------------- one call

const page = {
  call: null,
  events: null,
  timers: [],
  players: new Map(), // leg -> <audio>
  seen: new Set(), // live finals on screen: `${leg}@${start_ms}`
  columns: new Map(), // leg -> {list, partial}
};

function leaveCall() {
  page.events?.close();
  page.events = null;
  for (const timer of page.timers) clearTimeout(timer);
  page.timers = [];
  releasePlayers();
}

/** Stop the players and let go of their downloads: a media element left loading keeps its
 * connection, and a browser has only a few per server. */
function releasePlayers() {
  for (const audio of page.players.values()) {
    audio.pause();
    audio.removeAttribute("src");
    audio.load();
  }
  page.players.clear();
}

async function openCall(id, params) {
  showView("call-view");
  ctx.view = { name: "call", leave: leaveCall };
  const back = {
    history: [ctx.last.history, "History"],
    search: [ctx.last.search, "Search results"],
  };
  const [href, label] = back[params.get("from")] ?? ["#/calls/live", "Live calls"];
  $("call-back").setAttribute("href", href);
  $("call-back-label").textContent = label;
  $("call-title").textContent = `Call ${id}`;
  // Nothing of the call shown before stays on screen while this one loads.
  for (const node of ["call-status", "call-meta", "call-alerts", "players", "live-pass"]) {
    $(node).replaceChildren();
  }
  $("post-pass").replaceChildren();
  $("post-status").textContent = "";
  show($("call-live"), false);
  show($("call-past"), false);
  let call;
  try {
    call = await api("GET", `/v1/calls/${encodeURIComponent(id)}`);
  } catch (error) {
    fail($("calls-error"), error);
    return;
  }
  if (ctx.view?.name !== "call") return;
  page.call = call;
  renderCallHead(call);
  if (call.status === "active") await followCall(call);
  else await showPastCall(call, params);
}

function renderCallHead(call) {
  $("call-status").replaceChildren(statusPill(call.status));
  const rows = [
    ["Tenant", call.tenant_id],
    ["Source", call.source],
    ["Started", when(call.started_at)],
    ["Duration", duration(call)],
    ["Language", call.language ?? "auto"],
    ["Hot-words", hotwords(call)],
    ["Legs", call.legs.length ? call.legs.sort(byLeg).join(", ") : "—"],
  ];
  $("call-meta").replaceChildren(...metaRows(rows));
  if (call.status === "interrupted") {
    $("call-alerts").append(
      el(
        "p",
        { class: "alert", "data-testid": "alert-interrupted" },
        "Interrupted: the gateway holding this call went down before it ended. " +
          "What was said up to then is kept.",
      ),
    );
  }
}

// ---- a call in progress

async function followCall(call) {
  show($("call-live"));
  page.seen.clear();
  page.columns.clear();
  $("live-columns").replaceChildren();
  delete $("live-columns").dataset.listening;
  for (const leg of call.legs) liveColumn(leg);
  page.events = new CallEvents(call, onCallEvent, (reason) => {
    if (reason) $("call-alerts").append(el("p", { class: "alert" }, reason));
  });
  await page.events.open();
  // Finals stored before the socket opened (the socket sends only what comes next).
  try {
    const stored = await api("GET", `/v1/calls/${encodeURIComponent(call.id)}/transcript`, {
      query: { pass: "live", format: "json" },
    });
    for (const segment of stored.segments) {
      addLiveFinal({
        leg: segment.leg,
        text: segment.text,
        start_ms: Math.round(segment.start * 1000),
      });
    }
  } catch (error) {
    fail($("calls-error"), error, "Earlier captions could not be loaded: ");
  }
  const timer = setInterval(() => {
    if (ctx.view?.name === "call" && page.call?.status === "active") renderCallHead(page.call);
  }, 1000);
  page.timers.push(timer);
}

function liveColumn(leg) {
  if (!page.columns.has(leg)) {
    const list = el("ol", { class: "turns", "data-leg": leg });
    const partial = el("p", { class: "partial", "data-testid": "live-partial" });
    const column = el("section", { class: "column", "data-leg": leg }, legPill(leg), list, partial);
    page.columns.set(leg, { list, partial, column });
    const columns = [...page.columns.entries()].sort(([a], [b]) => byLeg(a, b));
    $("live-columns").replaceChildren(...columns.map(([, c]) => c.column));
  }
  return page.columns.get(leg);
}

function addLiveFinal(final) {
  const key = `${final.leg}@${final.start_ms}`;
  if (page.seen.has(key) || !final.text.trim()) return;
  page.seen.add(key);
  const column = liveColumn(final.leg);
  const item = el(
    "li",
    { class: "turn", "data-testid": "live-final", "data-start": final.start_ms },
    el("span", { class: "time" }, clock(final.start_ms)),
    " ",
    el("span", { class: "text" }, final.text.trim()),
  );
  // In time order: a stored final may arrive after a newer live one.
  const later = [...column.list.children].find((node) => Number(node.dataset.start) > final.start_ms);
  column.list.insertBefore(item, later ?? null);
}

function onCallEvent(event) {
  if (event.type === "listening") {
    for (const leg of event.legs) liveColumn(leg);
    page.call.legs = [...event.legs];
    $("live-columns").dataset.listening = "true";
  } else if (event.type === "partial" && event.leg) {
    liveColumn(event.leg).partial.textContent = event.text;
  } else if (event.type === "final" && event.leg) {
    liveColumn(event.leg).partial.textContent = "";
    addLiveFinal(event);
  } else if (event.type === "error") {
    $("call-alerts").append(alertFor(event));
  } else if (event.type === "call_ended") {
    for (const column of page.columns.values()) column.partial.textContent = "";
    page.call = { ...page.call, status: event.status };
    $("call-status").replaceChildren(statusPill(event.status));
    $("call-alerts").append(
      el("p", { class: "notice", "data-testid": "call-ended" }, "The call has ended."),
    );
    // Its recording and passes, once the server has closed them.
    const id = page.call.id;
    page.timers.push(
      setTimeout(() => {
        if (ctx.view?.name === "call" && page.call?.id === id) {
          showCalls(callHash(id));
        }
      }, 1500),
    );
  }
}

// ---- a finished call

async function showPastCall(call, params) {
  show($("call-past"));
  await renderPlayers(call);
  $("live-pass").replaceChildren();
  $("post-pass").replaceChildren();
  const live = await api("GET", `/v1/calls/${encodeURIComponent(call.id)}/transcript`, {
    query: { pass: "live", format: "json" },
  }).catch((error) => {
    fail($("calls-error"), error);
    return { segments: [] };
  });
  renderPass($("live-pass"), live.segments, "live");
  await loadPostPass(call);
  const t = Number(params.get("t"));
  if (params.has("t") && Number.isFinite(t)) seek(params.get("leg") ?? "", t, { play: false });
}

async function renderPlayers(call) {
  releasePlayers();
  const players = [];
  for (const recording of call.recordings) {
    const token = await tokenFor(call.tenant_id).catch(() => null);
    const src = new URL(recording.url.replace(/^\//, ""), API_ROOT);
    if (token) src.searchParams.set("token", token);
    const audio = el("audio", {
      controls: true,
      preload: "metadata",
      src: src.toString(),
      "data-testid": `player-${recording.leg}`,
      "aria-label": `Recording, ${recording.leg} leg`,
    });
    audio.addEventListener("timeupdate", () => markPlaying(recording.leg, audio.currentTime));
    audio.addEventListener("play", () => {
      for (const [leg, other] of page.players) if (leg !== recording.leg) other.pause();
    });
    page.players.set(recording.leg, audio);
    players.push(
      el(
        "figure",
        { class: "player" },
        el("figcaption", {}, legPill(recording.leg), ` ${clock(recording.duration_s * 1000)}`),
        audio,
      ),
    );
  }
  $("players").replaceChildren(...players);
  show($("players-empty"), players.length === 0);
}

async function loadPostPass(call) {
  const status = $("post-status");
  const job = call.postcall;
  if (!job) {
    status.textContent = "No post-call pass was run for this call.";
    return;
  }
  if (job.status === "completed") {
    status.textContent = "";
    const post = await api("GET", `/v1/calls/${encodeURIComponent(call.id)}/transcript`, {
      query: { pass: "post", format: "json" },
    }).catch((error) => {
      fail(status, error);
      return null;
    });
    if (post) renderPass($("post-pass"), post.segments, "post");
    return;
  }
  if (job.status === "failed") {
    setMessage(status, `The post-call pass failed: ${job.error ?? "no reason given"}`);
    return;
  }
  status.textContent = `Post-call pass ${job.status}: ${Math.round(job.progress * 100)}%…`;
  page.timers.push(
    setTimeout(async () => {
      if (ctx.view?.name !== "call" || page.call?.id !== call.id) return;
      const fresh = await api("GET", `/v1/calls/${encodeURIComponent(call.id)}`).catch(() => null);
      if (fresh && ctx.view?.name === "call" && page.call?.id === call.id) loadPostPass(fresh);
    }, POSTCALL_POLL_MS),
  );
}

function renderPass(list, segments, pass) {
  list.replaceChildren(
    ...segments.map((segment) => {
      const start = Math.round(segment.start * 1000);
      const words = segment.words ?? [];
      const text = words.length
        ? words.flatMap((word, index) => [
            index ? " " : "",
            el(
              "span",
              {
                class: "word",
                "data-start": Math.round(word.start * 1000),
                onclick: () => seek(segment.leg, Math.round(word.start * 1000)),
              },
              word.word,
            ),
          ])
        : [segment.text];
      return el(
        "li",
        {
          class: "turn",
          "data-testid": `${pass}-segment`,
          "data-leg": segment.leg,
          "data-start": start,
          "data-end": Math.round(segment.end * 1000),
        },
        el(
          "button",
          {
            type: "button",
            class: "time",
            "aria-label": `Play the ${segment.leg} leg from ${clock(start)}`,
            onclick: () => seek(segment.leg, start),
          },
          clock(start),
        ),
        legPill(segment.leg),
        el("span", { class: "text" }, ...text),
      );
    }),
  );
  if (!segments.length) list.append(el("li", { class: "hint" }, "Nothing was said."));
}

/** Play `leg`'s recording from `ms` (any recording when the leg has none of its own). */
function seek(leg, ms, { play = true } = {}) {
  const audio = page.players.get(leg) ?? page.players.values().next().value;
  if (!audio) return;
  const at = ms / 1000;
  if (audio.readyState >= 1) audio.currentTime = at;
  else audio.addEventListener("loadedmetadata", () => (audio.currentTime = at), { once: true });
  markPlaying(leg, at);
  // Now, within the click: browsers allow playback started by the user's own gesture only.
  if (play) audio.play().catch(() => {});
  audio.scrollIntoView({ block: "nearest" });
}

function markPlaying(leg, seconds) {
  const ms = seconds * 1000;
  for (const turn of document.querySelectorAll("#call-past .turn")) {
    const inside =
      turn.dataset.leg === leg && Number(turn.dataset.start) <= ms && ms < Number(turn.dataset.end);
    turn.classList.toggle("playing", inside);
  }
}

async function downloadTranscript() {
  const call = page.call;
  if (!call) return;
  const pass = $("download-pass").value;
  const format = $("download-format").value;
  const text = await busy($("download-transcript"), $("calls-error"), () =>
    api("GET", `/v1/calls/${encodeURIComponent(call.id)}/transcript`, {
      query: { pass, format },
      text: true,
    }),
  );
  if (text === undefined) return;
  const type = { json: "application/json", srt: "application/x-subrip", vtt: "text/vtt" };
  download(`${call.id}-${pass}.${format}`, text, type[format] ?? "text/plain");
}
