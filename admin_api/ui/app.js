// callscribe admin UI: plain ES modules, no build step, no dependencies.
// Everything the API returns is put on the page as text (textContent), never as HTML.

import {
  $,
  api,
  busy,
  describe,
  download,
  el,
  fail,
  plural,
  session,
  setMessage,
  show,
  timeCell,
  when,
} from "./lib.js";
import { hideCalls, initCalls, showCalls } from "./calls.js";

const KEY_STORAGE = "callscribe.admin.key";
const TENANT_STORAGE = "callscribe.admin.tenant";
const NOTICE_STORAGE = "callscribe.admin.notice";

const state = {
  key: null,
  me: null, // {key_prefix, scope, tenant_id}
  tenants: [],
  tenantId: null,
  list: null, // the open hot-word list (HotwordListDetail)
  dirty: false, // the phrase table has unsaved edits
};

const isAdmin = () => state.me?.scope === "admin";

let noticeTimer = null;
function notice(message) {
  const node = $("global-notice");
  setMessage(node, message);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => show(node, false), 6000);
}

/** Destructive buttons ask for a second click instead of a browser dialog. */
function confirmed(button, prompt) {
  if (button.dataset.armed === "1") {
    disarm(button);
    return true;
  }
  button.dataset.armed = "1";
  button.dataset.label = button.textContent;
  button.textContent = prompt;
  button.classList.add("armed");
  button.armTimer = setTimeout(() => disarm(button), 5000);
  return false;
}

function disarm(button) {
  clearTimeout(button.armTimer);
  if (button.dataset.armed !== "1") return;
  button.dataset.armed = "";
  button.textContent = button.dataset.label;
  button.classList.remove("armed");
}

// ---------------------------------------------------------------- views

const VIEWS = ["empty-view", "admin-keys-view", "tenant-view", "list-view"];

function showView(id) {
  for (const view of VIEWS) show($(view), view === id);
  window.scrollTo(0, 0);
}

// ---------------------------------------------------------------- log in / out

async function login(key, { restoring = false } = {}) {
  state.key = key;
  session.key = key;
  try {
    state.me = await api("GET", "/v1/me");
  } catch (error) {
    state.key = null;
    session.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    showLogin();
    fail($("login-error"), error, restoring ? "Your saved key no longer works: " : "");
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $("login-key").value = "";
  show($("login-view"), false);
  show($("app-view"));
  show($("session"));
  document.body.classList.toggle("is-admin", isAdmin());
  for (const node of document.querySelectorAll("[data-admin-only]")) show(node, isAdmin());
  show($("sidebar"), isAdmin());
  $("app-view").classList.toggle("no-sidebar", !isAdmin());
  $("list-back-label").textContent = "Lists";
  renderWhoami();
  show($("mainnav"));
  if (isAdmin()) {
    await loadTenants();
    const saved = sessionStorage.getItem(TENANT_STORAGE);
    if (saved && state.tenants.some((t) => t.id === saved)) await openTenant(saved);
    else showView("empty-view");
  } else {
    initCalls({ admin: false, tenants: [] });
    await openTenant(state.me.tenant_id);
  }
  route();
}

/** `#/calls/...` is the calls console; anything else the tenants and hot-words. */
function route() {
  if (!state.me) return;
  const calls = window.location.hash.startsWith("#/calls");
  show($("app-view"), !calls);
  show($("calls-view"), calls);
  for (const [id, current] of [["nav-calls", calls], ["nav-hotwords", !calls]]) {
    if (current) $(id).setAttribute("aria-current", "page");
    else $(id).removeAttribute("aria-current");
  }
  if (calls) showCalls(window.location.hash);
  else hideCalls();
}

function renderWhoami(tenantName) {
  const me = state.me;
  const node = $("whoami");
  node.replaceChildren(
    el("span", { class: `pill ${me.scope}` }, me.scope === "admin" ? "admin" : "tenant"),
    " ",
    me.scope === "admin" ? "Admin key " : `${tenantName ?? me.tenant_id} · key `,
    el("code", {}, me.key_prefix),
  );
}

function showLogin() {
  show($("app-view"), false);
  show($("session"), false);
  show($("login-view"));
  $("login-key").focus();
}

function logout(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  sessionStorage.removeItem(TENANT_STORAGE);
  if (message) sessionStorage.setItem(NOTICE_STORAGE, message);
  state.key = null;
  session.key = null;
  state.me = null;
  state.dirty = false; // no "leave the page?" prompt for a log-out
  // A fresh page: nothing the last key could see stays in memory or on the page.
  window.location.replace(window.location.pathname);
}

// ---------------------------------------------------------------- tenants (admin)

async function loadTenants() {
  state.tenants = await busy(null, $("tenant-create-error"), () => api("GET", "/v1/tenants"));
  state.tenants ??= [];
  renderTenants();
  initCalls({ admin: true, tenants: state.tenants });
}

function renderTenants() {
  const list = $("tenant-list");
  list.replaceChildren(
    ...state.tenants.map((tenant) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "nav-item",
            "data-testid": `tenant-${tenant.id}`,
            "aria-current": tenant.id === state.tenantId ? "page" : null,
            onclick: () => openTenant(tenant.id),
          },
          el("span", { class: "nav-name" }, tenant.name),
          el("span", { class: "nav-id mono" }, tenant.id),
        ),
      ),
    ),
  );
  show($("tenant-list-empty"), state.tenants.length === 0);
  const adminKeys = $("show-admin-keys");
  if (state.tenantId === null && !$("admin-keys-view").hidden) {
    adminKeys.setAttribute("aria-current", "page");
  } else {
    adminKeys.removeAttribute("aria-current");
  }
}

async function createTenant(event) {
  event.preventDefault();
  const id = $("tenant-new-id").value.trim();
  const name = $("tenant-new-name").value.trim();
  const errorNode = $("tenant-create-error");
  if (!id || !name) {
    setMessage(errorNode, "Give the tenant an ID and a name.");
    return;
  }
  const created = await busy($("tenant-create"), errorNode, () =>
    api("POST", "/v1/tenants", { json: { id, name } }),
  );
  if (!created) return;
  $("tenant-create-form").reset();
  notice(`Tenant “${created.name}” created.`);
  await loadTenants();
  await openTenant(created.id);
}

async function deleteTenant() {
  const button = $("tenant-delete");
  if (!confirmed(button, "Delete tenant, its keys and lists?")) return;
  const id = state.tenantId;
  const done = await busy(button, $("tenant-error"), async () => {
    await api("DELETE", `/v1/tenants/${encodeURIComponent(id)}`);
    return true;
  });
  if (!done) return;
  notice(`Tenant “${id}” deleted.`);
  state.tenantId = null;
  sessionStorage.removeItem(TENANT_STORAGE);
  await loadTenants();
  showView("empty-view");
}

// ---------------------------------------------------------------- one tenant

const tenantPath = (suffix = "") => `/v1/tenants/${encodeURIComponent(state.tenantId)}${suffix}`;
const listPath = (suffix = "") =>
  tenantPath(`/hotword-lists/${encodeURIComponent(state.list.name)}${suffix}`);

async function openTenant(id) {
  state.tenantId = id;
  state.list = null;
  state.dirty = false;
  sessionStorage.setItem(TENANT_STORAGE, id);
  if (isAdmin()) renderTenants();
  setMessage($("tenant-error"), "");
  setMessage($("tenant-key-secret"), "");
  setMessage($("tenant-keys-error"), "");
  setMessage($("list-create-error"), "");
  let tenant;
  try {
    tenant = await api("GET", tenantPath());
  } catch (error) {
    fail($("global-error"), error);
    return;
  }
  setMessage($("global-error"), "");
  $("tenant-title").textContent = tenant.name;
  $("tenant-id-label").textContent = tenant.id;
  if (!isAdmin()) renderWhoami(tenant.name);
  showView("tenant-view");
  await Promise.all([loadLists(), isAdmin() ? loadTenantKeys() : null]);
}

async function loadLists() {
  const lists = await busy(null, $("tenant-error"), () => api("GET", tenantPath("/hotword-lists")));
  if (!lists) return;
  const body = $("lists-table").tBodies[0];
  body.replaceChildren(
    ...lists.map((item) =>
      el(
        "tr",
        { "data-testid": `list-row-${item.name}` },
        el(
          "th",
          { scope: "row" },
          el(
            "button",
            { type: "button", class: "link", onclick: () => openList(item.name) },
            item.name,
          ),
        ),
        el("td", {}, `v${item.version}`),
        el("td", {}, item.phrase_count),
        el(
          "td",
          {},
          el("input", {
            type: "checkbox",
            checked: item.active,
            "aria-label": `${item.name} is active (used for this tenant's calls)`,
            "data-testid": `list-active-${item.name}`,
            onchange: (event) => setActive(item, event.target),
          }),
        ),
        timeCell(item.updated_at),
        el(
          "td",
          { class: "actions" },
          el(
            "button",
            {
              type: "button",
              "data-testid": `open-list-${item.name}`,
              onclick: () => openList(item.name),
            },
            "Edit",
          ),
        ),
      ),
    ),
  );
  show($("lists-empty"), lists.length === 0);
  show($("lists-table"), lists.length > 0);
}

async function setActive(item, checkbox) {
  const path = tenantPath(`/hotword-lists/${encodeURIComponent(item.name)}`);
  const done = await busy(checkbox, $("tenant-error"), () =>
    api("PATCH", path, { json: { active: checkbox.checked } }),
  );
  if (!done) checkbox.checked = !checkbox.checked;
  else notice(`“${item.name}” is now ${checkbox.checked ? "active" : "inactive"}.`);
}

async function createList(event) {
  event.preventDefault();
  const name = $("list-new-name").value.trim();
  const content = $("list-new-content").value;
  const errorNode = $("list-create-error");
  if (!name) {
    setMessage(errorNode, "Give the list a name.");
    return;
  }
  const created = await busy($("list-create"), errorNode, () =>
    api("POST", tenantPath("/hotword-lists"), {
      json: { name, content, format: "auto", note: "created in the admin UI" },
    }),
  );
  if (!created) return;
  $("list-create-form").reset();
  notice(`List “${created.name}” created with ${plural(created.entries.length, "phrase")}.`);
  await openList(created.name);
}

// ---------------------------------------------------------------- keys (admin)

function keyRows(keys, revoke) {
  return keys.map((key) =>
    el(
      "tr",
      { "data-testid": `key-row-${key.prefix}`, class: key.revoked_at ? "revoked" : null },
      el("td", { class: "mono" }, key.prefix),
      el("td", {}, key.name || "—"),
      timeCell(key.created_at),
      el(
        "td",
        {},
        key.revoked_at
          ? el("span", { class: "pill muted" }, `revoked ${when(key.revoked_at)}`)
          : el("span", { class: "pill ok" }, "active"),
      ),
      el(
        "td",
        { class: "actions" },
        key.revoked_at || key.prefix === state.me.key_prefix
          ? key.prefix === state.me.key_prefix
            ? el("span", { class: "hint" }, "this session")
            : null
          : el(
              "button",
              {
                type: "button",
                class: "danger small",
                "data-testid": `revoke-${key.prefix}`,
                onclick: (event) => revoke(key, event.currentTarget),
              },
              "Revoke",
            ),
      ),
    ),
  );
}

function showSecret(node, created) {
  const value = el("code", { class: "secret-value", "data-testid": "new-secret" }, created.key);
  const copy = el(
    "button",
    {
      type: "button",
      class: "small",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(created.key);
          copy.textContent = "Copied";
        } catch {
          const range = document.createRange();
          range.selectNodeContents(value);
          window.getSelection().removeAllRanges();
          window.getSelection().addRange(range);
          copy.textContent = "Selected: press Ctrl+C";
        }
      },
    },
    "Copy",
  );
  setMessage(
    node,
    el(
      "div",
      {},
      el("strong", {}, `New ${created.scope} key ${created.name ? `“${created.name}” ` : ""}`),
      el("div", { class: "secret-row" }, value, copy),
      el(
        "p",
        { class: "hint" },
        "Copy this key now and store it safely: it is shown this once and cannot be recovered.",
      ),
      el(
        "button",
        { type: "button", class: "small ghost", onclick: () => setMessage(node, "") },
        "Done",
      ),
    ),
  );
}

async function loadTenantKeys() {
  const keys = await busy(null, $("tenant-keys-error"), () => api("GET", tenantPath("/keys")));
  if (!keys) return;
  $("tenant-keys-table").tBodies[0].replaceChildren(...keyRows(keys, (key, button) => revokeKey("tenant-key", key, button)));
}

async function openAdminKeys() {
  state.tenantId = null;
  state.list = null;
  sessionStorage.removeItem(TENANT_STORAGE);
  setMessage($("admin-key-secret"), "");
  showView("admin-keys-view");
  renderTenants();
  await loadAdminKeys();
}

async function loadAdminKeys() {
  const keys = await busy(null, $("admin-keys-error"), () => api("GET", "/v1/admin/keys"));
  if (!keys) return;
  $("admin-keys-table").tBodies[0].replaceChildren(...keyRows(keys, (key, button) => revokeKey("admin-key", key, button)));
}

// Tenant keys and admin keys are managed alike: `kind` is the element id prefix
// ("tenant-key" or "admin-key"), `path()` the collection URL, `reload()` redraws the table.
const KEY_KINDS = {
  "tenant-key": { path: () => tenantPath("/keys"), reload: () => loadTenantKeys(), label: "Key" },
  "admin-key": { path: () => "/v1/admin/keys", reload: () => loadAdminKeys(), label: "Admin key" },
};

async function createKey(kind, event) {
  event.preventDefault();
  const { path, reload } = KEY_KINDS[kind];
  const name = $(`${kind}-name`).value.trim();
  const created = await busy($(`${kind}-create`), $(`${kind}s-error`), () =>
    api("POST", path(), { json: { name } }),
  );
  if (!created) return;
  $(`${kind}-create-form`).reset();
  showSecret($(`${kind}-secret`), created);
  await reload();
}

async function revokeKey(kind, key, button) {
  if (!confirmed(button, "Revoke now?")) return;
  const { path, reload, label } = KEY_KINDS[kind];
  const done = await busy(button, $(`${kind}s-error`), async () => {
    await api("DELETE", `${path()}/${encodeURIComponent(key.prefix)}`);
    return true;
  });
  if (done) {
    notice(`${label} ${key.prefix} revoked.`);
    await reload();
  }
}

// ---------------------------------------------------------------- one hot-word list

async function openList(name) {
  const path = tenantPath(`/hotword-lists/${encodeURIComponent(name)}`);
  const detail = await busy(null, $("tenant-error"), () => api("GET", path));
  if (!detail) return;
  const sameList = state.list?.name === name;
  const messages = ["list-error", "save-error", "import-errors", "import-result", "versions-error"];
  for (const id of messages) setMessage($(id), "");
  if (!sameList) {
    clearTryIt();
    $("import-form").reset();
    $("save-note").value = "";
  }
  setList(detail);
  showView("list-view");
  await loadVersions();
}

function setList(detail) {
  state.list = detail;
  state.dirty = false;
  $("list-title").textContent = detail.name;
  const count = plural(detail.entries.length, "phrase");
  $("list-version").textContent = `version ${detail.version} · ${count}`;
  $("list-version").dataset.version = String(detail.version);
  renderEntries(detail.entries);
  setEditorStatus("");
}

function setEditorStatus(message) {
  $("editor-status").textContent = message;
}

function markDirty() {
  if (!state.dirty) {
    state.dirty = true;
    setEditorStatus(`Unsaved changes (based on version ${state.list.version})`);
  }
}

function renderEntries(entries) {
  $("entries-body").replaceChildren(...entries.map((entry) => entryRow(entry)));
  renumber();
}

function entryRow(entry = { phrase: "", weight: 1, aliases: [] }) {
  const row = el("tr", { "data-testid": "entry-row" });
  const input = (field, attrs) =>
    el("input", {
      "data-field": field,
      "data-testid": `entry-${field}`,
      oninput: markDirty,
      autocomplete: "off",
      spellcheck: "false",
      ...attrs,
    });
  row.append(
    el("td", { class: "num" }),
    el(
      "td",
      {},
      input("phrase", { value: entry.phrase, maxlength: 200 }),
    ),
    el(
      "td",
      { class: "weight" },
      input("weight", {
        type: "number",
        value: String(entry.weight),
        min: "0.01",
        max: "1000",
        step: "any",
      }),
    ),
    el(
      "td",
      {},
      input("aliases", {
        value: entry.aliases.join(", "),
        spellcheck: "false",
        autocomplete: "off",
      }),
    ),
    el(
      "td",
      { class: "actions" },
      el(
        "button",
        {
          type: "button",
          class: "icon",
          "data-testid": "entry-remove",
          onclick: () => {
            row.remove();
            renumber();
            markDirty();
          },
        },
        "✕",
      ),
    ),
  );
  return row;
}

function renumber() {
  [...$("entries-body").rows].forEach((row, index) => {
    const n = index + 1;
    row.cells[0].textContent = String(n);
    row.querySelector("[data-field=phrase]").setAttribute("aria-label", `Phrase, row ${n}`);
    row.querySelector("[data-field=weight]").setAttribute("aria-label", `Weight, row ${n}`);
    row.querySelector("[data-field=aliases]").setAttribute("aria-label", `Aliases, row ${n}`);
    row.querySelector("[data-testid=entry-remove]").setAttribute("aria-label", `Remove row ${n}`);
  });
}

function addEntryRow() {
  const row = entryRow();
  $("entries-body").append(row);
  renumber();
  markDirty();
  row.querySelector("input").focus();
}

/** The table as API entries; rows left entirely empty are dropped. */
function collectEntries() {
  const entries = [];
  const problems = [];
  [...$("entries-body").rows].forEach((row, index) => {
    const value = (field) => row.querySelector(`[data-field=${field}]`).value.trim();
    const phrase = value("phrase");
    const weightText = value("weight");
    const aliases = value("aliases")
      .split(/[,，、]/)
      .map((alias) => alias.trim())
      .filter(Boolean);
    if (!phrase && !aliases.length && (!weightText || weightText === "1")) return;
    const weight = weightText === "" ? 1 : Number(weightText);
    if (!phrase) problems.push(`row ${index + 1}: the phrase is empty`);
    if (!Number.isFinite(weight) || weight <= 0 || weight > 1000) {
      problems.push(`row ${index + 1}: weight must be a number above 0 and at most 1000`);
    }
    entries.push({ phrase, weight, aliases });
  });
  return { entries, problems };
}

function conflictMessage(error, node) {
  setMessage(
    node,
    el(
      "span",
      {},
      el("strong", {}, "Changed meanwhile, reload: "),
      `someone else saved this list after you opened it (${error.message}). `,
      el(
        "button",
        {
          type: "button",
          class: "small",
          "data-testid": "conflict-reload",
          onclick: () => reloadList({ force: true }),
        },
        "Reload the latest version",
      ),
      " then redo your change.",
    ),
  );
}

async function saveList() {
  const errorNode = $("save-error");
  const { entries, problems } = collectEntries();
  if (problems.length) {
    setMessage(errorNode, `Not saved: ${problems.join("; ")}.`);
    return;
  }
  const note = $("save-note").value.trim() || "edited in the admin UI";
  const button = $("list-save");
  button.disabled = true;
  setMessage(errorNode, "");
  try {
    const detail = await api("PUT", listPath(), {
      json: { entries, note, base_version: state.list.version },
    });
    $("save-note").value = "";
    setList(detail);
    setEditorStatus(`Saved as version ${detail.version}`);
    await loadVersions();
  } catch (error) {
    if (error.status === 409) conflictMessage(error, errorNode);
    else fail(errorNode, error, "Not saved: ");
  } finally {
    button.disabled = false;
  }
}

async function reloadList({ force = false } = {}) {
  if (!force && state.dirty && !confirmed($("list-reload"), "Discard unsaved changes?")) return;
  await openList(state.list.name);
  setEditorStatus(`Reloaded: version ${state.list.version}`);
}

async function deleteList() {
  const button = $("list-delete");
  if (!confirmed(button, "Delete this list and its history?")) return;
  const name = state.list.name;
  const done = await busy(button, $("list-error"), async () => {
    await api("DELETE", listPath());
    return true;
  });
  if (!done) return;
  notice(`List “${name}” deleted.`);
  await openTenant(state.tenantId);
}

async function exportList() {
  const format = $("export-format").value;
  const text = await busy($("export-download"), $("list-error"), () =>
    api("GET", listPath("/export"), { query: { format }, text: true }),
  );
  if (text === undefined) return;
  const type = format === "json" ? "application/json" : "text/plain";
  download(`${state.list.name}.${format}`, text, type);
}

function backToLists() {
  if (state.dirty && !confirmed($("list-back"), "Discard unsaved changes?")) return;
  openTenant(state.tenantId);
}

// ---------------------------------------------------------------- import

const LINE_ERROR = /^(?<source>.*?),\s*(?<where>line|entry)\s+(?<line>\d+):\s*(?<message>.*)$/s;

async function importList(event) {
  event.preventDefault();
  const file = $("import-file").files[0];
  const pasted = $("import-text").value;
  const errorsNode = $("import-errors");
  setMessage($("import-result"), "");
  setMessage(errorsNode, "");
  if (!file && !pasted.trim()) {
    setMessage(errorsNode, "Choose a file or paste the list first.");
    return;
  }
  const upload = file ?? new File([pasted], "pasted.tsv", { type: "text/plain" });
  const form = new FormData();
  form.append("file", upload, upload.name);
  form.append("format", $("import-format").value);
  form.append("base_version", String(state.list.version));
  form.append("note", `import ${upload.name} (admin UI)`);
  const button = $("import-submit");
  button.disabled = true;
  try {
    const detail = await api("POST", listPath("/import"), { form });
    setList(detail);
    $("import-form").reset();
    setMessage(
      $("import-result"),
      `Imported ${upload.name}: ${plural(detail.entries.length, "phrase")}, ` +
        `now version ${detail.version}.`,
    );
    await loadVersions();
  } catch (error) {
    if (error.status === 409) conflictMessage(error, errorsNode);
    else await showImportErrors(error, upload);
  } finally {
    button.disabled = false;
  }
}

async function showImportErrors(error, upload) {
  const node = $("import-errors");
  if (error.status !== 422) {
    fail(node, error, "Import failed: ");
    return;
  }
  let lines = [];
  try {
    lines = (await upload.text()).split(/\r\n|\n|\r/);
  } catch {
    // binary or unreadable: show the message alone
  }
  const items = error.message
    .split(/\n+/)
    .filter(Boolean)
    .map((message) => {
      const match = LINE_ERROR.exec(message);
      if (!match) {
        return el("li", { "data-testid": "import-error-line" }, el("span", {}, message));
      }
      const { where, line, message: reason } = match.groups;
      const source = where === "line" ? lines[Number(line) - 1] : undefined;
      return el(
        "li",
        { "data-testid": "import-error-line", "data-line": line },
        el("span", { class: "line-no" }, `${where === "line" ? "Line" : "Entry"} ${line}`),
        el("span", { class: "reason" }, reason),
        source !== undefined
          ? el("code", { class: "source-line" }, source.replaceAll("\t", " ⇥ ") || "(empty line)")
          : null,
      );
    });
  setMessage(
    node,
    el(
      "div",
      {},
      el("strong", {}, `${upload.name} was not imported; the list is unchanged.`),
      el("ul", { class: "line-errors" }, items),
    ),
  );
}

// ---------------------------------------------------------------- versions

async function loadVersions() {
  const versions = await busy(null, $("versions-error"), () => api("GET", listPath("/versions")));
  if (!versions) return;
  const current = state.list.version;
  $("versions-table").tBodies[0].replaceChildren(
    ...versions.map((version) =>
      el(
        "tr",
        {
          "data-testid": `version-row-${version.version}`,
          class: version.version === current ? "current" : null,
        },
        el("th", { scope: "row" }, `v${version.version}`),
        el("td", {}, version.phrase_count),
        el("td", { class: "mono" }, version.created_by),
        timeCell(version.created_at),
        el("td", { class: "note" }, version.note),
        el(
          "td",
          { class: "actions" },
          version.version === current
            ? el("span", { class: "pill ok" }, "current")
            : el(
                "button",
                {
                  type: "button",
                  class: "small",
                  "data-testid": `rollback-${version.version}`,
                  "aria-label": `Roll back to version ${version.version}`,
                  onclick: (event) => rollback(version.version, event.currentTarget),
                },
                "Roll back",
              ),
        ),
      ),
    ),
  );
}

async function rollback(version, button) {
  if (state.dirty && !confirmed(button, "Discard unsaved edits?")) return;
  const errorNode = $("versions-error");
  button.disabled = true;
  setMessage(errorNode, "");
  try {
    const detail = await api("POST", listPath("/rollback"), {
      json: { version, base_version: state.list.version },
    });
    setList(detail);
    setEditorStatus(`Rolled back to version ${version}: now version ${detail.version}`);
    await loadVersions();
  } catch (error) {
    if (error.status === 409) conflictMessage(error, errorNode);
    else fail(errorNode, error, "Rollback failed: ");
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- try it

function clearTryIt() {
  for (const id of ["tryit-plain-text", "tryit-hot-text", "tryit-plain-found", "tryit-hot-found"]) {
    $(id).replaceChildren();
  }
  setMessage($("tryit-error"), "");
  $("tryit-status").textContent = "";
}

function previewRecording() {
  const file = $("tryit-file").files[0];
  const audio = $("tryit-audio");
  if (audio.src) URL.revokeObjectURL(audio.src);
  if (!file) {
    audio.removeAttribute("src");
    show(audio, false);
    return;
  }
  audio.src = URL.createObjectURL(file);
  show(audio);
}

async function transcribe(file, language, hotwords) {
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("language", language);
  form.append("response_format", "json");
  form.append("tenant_hotwords", "false");
  if (hotwords !== null) form.append("hotwords", hotwords);
  const result = await api("POST", "/v1/audio/transcriptions", { form });
  return (result.text ?? "").trim();
}

async function tryIt(event) {
  event.preventDefault();
  const file = $("tryit-file").files[0];
  const errorNode = $("tryit-error");
  clearTryIt();
  if (!file) {
    setMessage(errorNode, "Choose a recording first.");
    return;
  }
  const language = $("tryit-language").value;
  const list = state.list;
  const button = $("tryit-run");
  button.disabled = true;
  const started = performance.now();
  $("tryit-status").textContent = "Transcribing…";
  $("tryit-hot-title").textContent = `With “${list.name}” (version ${list.version})`;
  try {
    const hotwords = await api("GET", listPath("/export"), {
      query: { format: "tsv" },
      text: true,
    });
    const phrases = list.entries.map((entry) => entry.phrase);
    const [plain, hot] = await Promise.allSettled([
      transcribe(file, language, null),
      transcribe(file, language, hotwords),
    ]);
    showPane("plain", plain, phrases, false);
    showPane("hot", hot, phrases, true);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const unsaved = state.dirty ? " (unsaved table edits are not used: save first)" : "";
    $("tryit-status").textContent = `Done in ${seconds} s${unsaved}`;
  } catch (error) {
    $("tryit-status").textContent = "";
    fail(errorNode, error, "Could not run the comparison: ");
  } finally {
    button.disabled = false;
  }
}

function showPane(which, outcome, phrases, highlight) {
  const textNode = $(`tryit-${which}-text`);
  const foundNode = $(`tryit-${which}-found`);
  if (outcome.status === "rejected") {
    const reason = `Failed: ${describe(outcome.reason)}`;
    textNode.replaceChildren(el("span", { class: "error-inline" }, reason));
    foundNode.textContent = "";
    return;
  }
  const text = outcome.value;
  const found = phrasesIn(text, phrases);
  if (!text) textNode.replaceChildren(el("span", { class: "hint" }, "(no speech recognised)"));
  else textNode.replaceChildren(...(highlight ? highlighted(text, phrases) : [text]));
  const names = found.length ? ` (${found.join(", ")})` : "";
  foundNode.textContent = phrases.length
    ? `List phrases heard: ${found.length} of ${phrases.length}${names}`
    : "The list is empty.";
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A regex matching any phrase; Latin-script phrases only as whole words. */
function phraseRegExp(phrases) {
  const parts = [...new Set(phrases.filter(Boolean))]
    .sort((a, b) => b.length - a.length)
    .map((phrase) => {
      const core = escapeRegExp(phrase).replace(/\s+/g, "\\s+");
      const start = /^[\p{Script=Latin}\p{N}]/u.test(phrase);
      const end = /[\p{Script=Latin}\p{N}]$/u.test(phrase);
      return `${start ? "(?<![\\p{L}\\p{N}])" : ""}${core}${end ? "(?![\\p{L}\\p{N}])" : ""}`;
    });
  return parts.length ? new RegExp(parts.join("|"), "giu") : null;
}

function phrasesIn(text, phrases) {
  return phrases.filter((phrase) => phraseRegExp([phrase])?.test(text));
}

function highlighted(text, phrases) {
  const pattern = phraseRegExp(phrases);
  if (!pattern) return [text];
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) nodes.push(text.slice(last, match.index));
    nodes.push(el("mark", { "data-testid": "hotword-hit" }, match[0]));
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

// ---------------------------------------------------------------- wiring

function wire() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("login-key").value.trim();
    if (!key) {
      setMessage($("login-error"), "Paste an API key.");
      return;
    }
    setMessage($("login-error"), "");
    busy($("login-submit"), $("login-error"), () => login(key));
  });
  $("logout").addEventListener("click", () => logout("Logged out."));
  $("tenant-create-form").addEventListener("submit", createTenant);
  $("tenant-delete").addEventListener("click", deleteTenant);
  $("show-admin-keys").addEventListener("click", openAdminKeys);
  $("admin-key-create-form").addEventListener("submit", (e) => createKey("admin-key", e));
  $("tenant-key-create-form").addEventListener("submit", (e) => createKey("tenant-key", e));
  $("list-create-form").addEventListener("submit", createList);
  $("list-back").addEventListener("click", backToLists);
  $("entry-add").addEventListener("click", addEntryRow);
  $("list-save").addEventListener("click", saveList);
  $("list-reload").addEventListener("click", () => reloadList());
  $("list-delete").addEventListener("click", deleteList);
  $("export-download").addEventListener("click", exportList);
  $("import-form").addEventListener("submit", importList);
  $("tryit-form").addEventListener("submit", tryIt);
  $("tryit-file").addEventListener("change", previewRecording);
  window.addEventListener("beforeunload", (event) => {
    if (state.dirty) event.preventDefault();
  });
}

async function boot() {
  wire();
  session.onUnauthorized = (error) => {
    if (state.me) logout(`Logged out: ${error.message}.`);
  };
  window.addEventListener("hashchange", route);
  const message = sessionStorage.getItem(NOTICE_STORAGE);
  sessionStorage.removeItem(NOTICE_STORAGE);
  if (message) notice(message);
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) await login(key, { restoring: true });
  else showLogin();
  document.body.dataset.ready = "true";
}

boot();
