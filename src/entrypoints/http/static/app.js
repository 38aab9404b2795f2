// hexmarket web page: plain JavaScript over the public HTTP API, no build step. Data is only
// ever inserted with textContent (never innerHTML), so order and good fields cannot inject markup.
"use strict";

const $ = (sel) => document.querySelector(sel);

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  return node;
}

function show(target, text, ok = false) {
  target.textContent = text;
  target.classList.toggle("ok", ok);
  target.hidden = !text;
}

// The token guards changes only (HEXMARKET_API_TOKEN); it lives in sessionStorage, so it is
// forgotten with the browser tab and never reaches other sites or later visitors.
const TOKEN_KEY = "hexmarket.token";
const apiToken = () => sessionStorage.getItem(TOKEN_KEY) || "";

// Resolves to {ok, status, data, headers}; status 0 when the server cannot be reached.
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = apiToken();
  if (token && method !== "GET") headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { ok: false, status: 0, data: null, headers: new Headers() };
  }
  let data = null;
  const text = await response.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { ok: response.ok, status: response.status, data, headers: response.headers };
}

// --- tabs ---------------------------------------------------------------------------------

const TABS = ["orders", "catalog", "logs"];

function selectTab(name, { focus = false } = {}) {
  for (const button of document.querySelectorAll("nav [data-tab]")) {
    const on = button.dataset.tab === name;
    button.setAttribute("aria-selected", String(on));
    button.tabIndex = on ? 0 : -1;
    if (on && focus) button.focus();
    $(`#tab-${button.dataset.tab}`).hidden = !on;
  }
  if (name === "orders") loadRecent();
  if (name === "catalog") loadCatalog();
  if (name === "logs") loadLogs();
  liveLogs();
  history.replaceState(null, "", `#${name}`);
}

function tabKeys(event) {
  const at = TABS.indexOf(event.target.dataset.tab);
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: TABS.length - 1 }[event.key];
  if (at < 0 || to === undefined) return;
  event.preventDefault();
  selectTab(TABS[(to + TABS.length) % TABS.length], { focus: true });
}

// --- orders -------------------------------------------------------------------------------

const money = (value, currency) => {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(value);
  } catch { return `${value} ${currency}`; }
};

function fill(dl, pairs) {
  dl.replaceChildren();
  for (const [label, value] of pairs) {
    const row = el("div");
    row.append(el("dt", label), el("dd", value === "" ? "—" : value));
    dl.append(row);
  }
}

function renderOrder(order, cache) {
  const p = order.payment, d = order.delivery;
  $("#order [data-field=order_uid]").textContent = order.order_uid;
  fill($("#order-summary"), [
    ["Created", new Date(order.date_created).toLocaleString()],
    ["Track number", order.track_number],
    ["Entry", order.entry],
    ["Customer", order.customer_id],
    ["Delivery service", order.delivery_service],
    ["Locale", order.locale],
    ["Shard / OOF shard", `${order.shardkey} / ${order.oof_shard}`],
    ["SM id", order.sm_id],
  ]);
  fill($("#order-delivery"), [
    ["Name", d.name], ["Phone", d.phone], ["E-mail", d.email],
    ["Address", `${d.address}, ${d.city}, ${d.region} ${d.zip}`],
  ]);
  fill($("#order-payment"), [
    ["Amount", money(p.amount, p.currency)],
    ["Goods", money(p.goods_total, p.currency)],
    ["Delivery", money(p.delivery_cost, p.currency)],
    ["Custom fee", money(p.custom_fee, p.currency)],
    ["Paid at", new Date(p.payment_dt * 1000).toLocaleString()],
    ["Provider / bank", `${p.provider} / ${p.bank}`],
    ["Transaction", p.transaction],
    ["Request id", p.request_id],
  ]);
  const body = $("#order-items tbody");
  body.replaceChildren();
  const labels = ["Name", "Brand", "Size", "Price", "Sale", "Total", "Status", "chrt_id / nm_id"];
  for (const item of order.items) {
    const cells = [item.name, item.brand, item.size, money(item.price, p.currency),
      `${item.sale}%`, money(item.total_price, p.currency), item.status,
      `${item.chrt_id} / ${item.nm_id}`];
    const tr = el("tr");
    cells.forEach((value, i) => {
      tr.append(el("td", value, { "data-label": labels[i], class: [3, 4, 5].includes(i) ? "num" : "" }));
    });
    body.append(tr);
  }
  $("#order-source").textContent = `Served from ${cache === "hit" ? "the cache" : "the database"}.`;
  $("#order").hidden = false;
}

async function lookUpOrder(event) {
  event?.preventDefault();
  const id = $("#order-id").value.trim();
  const message = $("#order-message");
  $("#order").hidden = true;
  if (!id) { show(message, "Type an order id."); return; }
  show(message, "");
  const result = await api("GET", `/order/${encodeURIComponent(id)}`);
  if (result.status === 0) {
    show(message, "The server cannot be reached. Try again in a moment.");
  } else if (result.ok) {
    renderOrder(result.data, result.headers.get("X-Cache"));
    history.replaceState(null, "", `#orders/${encodeURIComponent(id)}`);
  } else if (result.status === 404) {
    show(message, `No order with id “${id}”. Check the id, or try again once the order has arrived.`);
  } else if (result.status === 400) {
    show(message, `“${id}” is not a valid order id: use 1 to 64 letters, digits, “_” or “-”.`);
  } else {
    show(message, `The order could not be loaded. ${errorText(result, "The order store")}`);
  }
}

// The newest orders (GET /orders, keyset-paged): ``cursors`` holds each shown page's ``before``.
const recent = { limit: 20, cursors: [null], next: null, loads: 0 };

async function loadRecent() {
  const load = ++recent.loads;
  const before = recent.cursors[recent.cursors.length - 1];
  const params = new URLSearchParams({ limit: recent.limit });
  if (before) params.set("before", before);
  const result = await api("GET", `/orders?${params}`);
  if (load !== recent.loads) return;
  const message = $("#recent-message");
  if (!result.ok) {
    show(message, `The recent orders could not be loaded. ${errorText(result)}`);
    return;
  }
  show(message, "");
  const { meta, orders } = result.data;
  recent.next = meta.next;
  const page = recent.cursors.length;
  $("#recent-meta").textContent = orders.length
    ? `Newest first · page ${page} · ${orders.length} ${orders.length === 1 ? "order" : "orders"}`
    : "";
  $("#recent-empty").hidden = orders.length > 0 || page > 1;
  $("#recent-older").disabled = !meta.next;
  $("#recent-newest").disabled = page === 1;
  const labels = ["Created", "Order id", "Customer", "City", "Items", "Amount"];
  $("#recent-orders tbody").replaceChildren(...orders.map((o) => {
    const tr = el("tr", null, { "data-uid": o.order_uid });
    const created = el("td", null, { "data-label": labels[0] });
    created.append(el("time", new Date(o.date_created).toLocaleString(), { datetime: o.date_created }));
    const id = el("td", null, { "data-label": labels[1], class: "uid" });
    const open = el("button", o.order_uid, {
      type: "button", class: "link", "data-action": "open-order", "aria-label": `Show order ${o.order_uid}`,
    });
    open.addEventListener("click", () => {
      $("#order-id").value = o.order_uid;
      lookUpOrder().then(() => $("#order").scrollIntoView({ block: "start" }));
    });
    id.append(open);
    tr.append(created, id,
      el("td", o.name, { "data-label": labels[2] }),
      el("td", o.city, { "data-label": labels[3] }),
      el("td", o.items, { "data-label": labels[4], class: "num" }),
      el("td", money(o.amount, o.currency), { "data-label": labels[5], class: "num" }));
    return tr;
  }));
}

// --- API errors shown next to the control that caused them --------------------------------

const ERROR_TEXT = {
  "errors.common.validation": "Please correct the following.",
  "errors.common.notFound": "Not found: it may have been removed in the meantime. The list is refreshed.",
  "errors.common.conflict": "The change conflicts with another one. The list is refreshed; try again.",
  "errors.common.payloadTooLarge": "The text is too long to send.",
  "errors.common.unavailable": "A server behind hexmarket is unavailable right now. Try again shortly.",
  "errors.common.internal": "Something went wrong on the server. Try again; if it persists, check its log.",
};

// The field names of the API as people read them.
const FIELD_TEXT = {
  newPriority: "New priority", name: "Name", description: "Description", projectId: "Project",
  id: "Good id", limit: "Number shown", offset: "Position", body: "Request", before: "Page",
  since: "From", until: "To", type: "Event type",
};

// The server words its reasons for people ("must be a whole number, 1 or more"); only these
// read better on the page in other words, or with the number written the local way.
const REASON_TEXT = [
  [/^must be a whole number, at most (\d+)$/, (m) => `must be a whole number, at most ${Number(m[1]).toLocaleString()}`],
  [/^unknown field$/, () => "is not a field this form knows"],
];

function humanReason(reason) {
  for (const [pattern, text] of REASON_TEXT) {
    const match = pattern.exec(reason);
    if (match) return text(match);
  }
  return reason;
}

const fieldText = (field) => FIELD_TEXT[field] || field;

function errorText(result, context = "") {
  if (result.status === 0) return "The server cannot be reached. Check the connection and try again.";
  if (result.status === 401) {
    return apiToken()
      ? "The server refused the API token. Check it under “API token” and try again."
      : "Changes need the API token: enter it under “API token” and try again.";
  }
  const key = result.data && typeof result.data === "object" ? result.data.message : undefined;
  if (key === "errors.common.unavailable" && context) return `${context} is unavailable right now. Try again shortly.`;
  return ERROR_TEXT[key] || `The request failed (HTTP ${result.status}).`;
}

function errorDetails(result) {
  const body = result.data;
  if (!body || typeof body !== "object" || !body.details || typeof body.details !== "object") return [];
  return Object.entries(body.details).map(([field, reason]) => [field, humanReason(String(reason))]);
}

function fieldError(input) {
  return document.getElementById(input.getAttribute("aria-describedby") || "");
}

function clearErrors(box, fields = {}) {
  if (box) { box.replaceChildren(); box.hidden = true; }
  for (const input of Object.values(fields)) {
    input.removeAttribute("aria-invalid");
    const hint = fieldError(input);
    if (hint) { hint.textContent = ""; hint.hidden = true; }
  }
}

// Shows the envelope's message in ``box`` and each ``details`` reason under its input when the
// field is one of ``fields`` (name -> input), else as a line in ``box``.
function showError(box, result, fields = {}) {
  clearErrors(box, fields);
  const rest = [];
  let first = null;
  for (const [field, reason] of errorDetails(result)) {
    const input = fields[field];
    const hint = input && fieldError(input);
    if (hint) {
      input.setAttribute("aria-invalid", "true");
      hint.textContent = reason;
      hint.hidden = false;
      first = first || input;
    } else {
      rest.push([field, reason]);
    }
  }
  box.replaceChildren(...errorNodes(result, rest));
  box.hidden = false;
  first?.focus();
}

// The envelope as nodes: the message, then a list of "field: reason" for ``details``.
function errorNodes(result, details = errorDetails(result)) {
  if (result.status === 401) {  // lead the person to the token field
    $("#token-box").open = true;
    $("#api-token").focus();
  }
  const nodes = [el("p", errorText(result))];
  if (details.length) {
    const list = el("ul");
    for (const [field, reason] of details) {
      const item = el("li");
      item.append(el("strong", fieldText(field)), document.createTextNode(`: ${reason}`));
      list.append(item);
    }
    nodes.push(list);
  }
  return nodes;
}

// --- catalog ------------------------------------------------------------------------------

const catalog = {
  offset: 1, limit: 20, total: 0, loads: 0, projects: new Map(), highlight: null, focus: null,
};

async function loadProjects() {
  const result = await api("GET", "/projects/list");
  if (!result.ok) return;
  catalog.projects = new Map(result.data.projects.map((p) => [p.id, p.name]));
  const select = $("#good-project");
  const current = select.value || sessionStorage.getItem("hexmarket.project") || "1";
  select.replaceChildren(...result.data.projects.map(
    (p) => el("option", `${p.name} (#${p.id})`, { value: p.id })));
  if (catalog.projects.has(Number(current))) select.value = current;
}

const catalogMessage = (text, ok = true) => show($("#catalog-message"), text, ok);

async function loadCatalog({ last = false } = {}) {
  const load = ++catalog.loads;  // a slower, older answer must not overwrite a newer one
  const [, result] = await Promise.all([
    loadProjects(),
    api("GET", `/goods/list?limit=${catalog.limit}&offset=${catalog.offset}`),
  ]);
  if (load !== catalog.loads) return;
  if (!result.ok) {
    catalogMessage(`The goods could not be loaded. ${errorText(result, "The catalog database")}`, false);
    return;
  }
  const { meta, goods } = result.data;
  const lastOffset = Math.max(1, Math.floor((meta.total - 1) / catalog.limit) * catalog.limit + 1);
  if ((last && catalog.offset !== lastOffset) || (!goods.length && catalog.offset > lastOffset)) {
    catalog.offset = lastOffset;
    await loadCatalog();
    return;
  }
  catalog.total = meta.total;
  const from = goods.length ? meta.offset : 0;
  const to = goods.length ? meta.offset + goods.length - 1 : 0;
  $("#goods-meta").textContent =
    `${meta.total} ${meta.total === 1 ? "good" : "goods"} (${meta.removed} removed)` +
    (meta.total ? ` · showing ${from}–${to}` : "");
  const pages = Math.max(1, Math.ceil(meta.total / catalog.limit));
  const page = Math.floor((catalog.offset - 1) / catalog.limit) + 1;
  $("#goods-page").textContent = `Page ${page} of ${pages}`;
  $("#goods tbody").replaceChildren(...goods.map(goodRow));
  $("#goods-empty").hidden = meta.total > 0;
  $("#goods-prev").disabled = catalog.offset <= 1;
  $("#goods-next").disabled = catalog.offset + catalog.limit > meta.total;
  catalog.highlight = null;
  if (catalog.focus) {
    const [id, action] = catalog.focus;
    catalog.focus = null;
    $(`#goods tr[data-id="${id}"] [data-action="${action}"]`)?.focus();
  }
}

function goodRow(good) {
  const tr = el("tr", null, {
    "data-id": good.id,
    class: [good.removed ? "removed" : "", good.id === catalog.highlight ? "changed" : ""].join(" ").trim(),
  });
  const cell = (value, label, cls = "") => {
    const td = el("td", value, { "data-label": label, class: cls || undefined });
    tr.append(td);
    return td;
  };
  cell(good.priority, "Priority", "num");
  cell(good.id, "Id", "num");
  const project = catalog.projects.get(good.projectId);
  cell(project === undefined ? `#${good.projectId}` : `${project} (#${good.projectId})`, "Project");
  cell(good.name, "Name", "name");
  cell(good.description || "—", "Description", good.description ? "text" : "muted");
  cell(null, "State").append(el("span", good.removed ? "removed" : "active",
    { class: `badge ${good.removed ? "badge-removed" : "badge-active"}` }));

  const td = cell(null, "Actions", "actions-cell");
  const actions = el("div", null, { class: "actions" });
  const rowError = el("p", null, {
    class: "field-error", id: `row-error-${good.id}`, role: "alert", hidden: true,
  });
  if (!good.removed) {
    const edit = el("button", "Edit", {
      type: "button", class: "secondary", "data-action": "edit", "aria-expanded": "false",
      "aria-label": `Edit “${good.name}”`,
    });
    edit.addEventListener("click", () => openEditor(tr, good, edit));

    const move = el("form", null, { class: "move", novalidate: true });
    const input = el("input", null, {
      type: "number", min: "1", step: "1", inputmode: "numeric", value: good.priority,
      id: `priority-${good.id}`, name: "newPriority", "aria-describedby": rowError.id,
    });
    move.append(
      el("label", `New priority for “${good.name}”`, { for: input.id, class: "sr-only" }),
      input,
      el("button", "Move", {
        type: "submit", class: "secondary", "data-action": "move",
        "aria-label": `Move “${good.name}” to this priority`,
      }),
    );
    move.addEventListener("submit", (event) => { event.preventDefault(); reprioritize(good, input, rowError); });

    const remove = el("button", "Remove", {
      type: "button", class: "danger", "data-action": "remove", "aria-label": `Remove “${good.name}”`,
    });
    remove.addEventListener("click", () => askRemove(actions, good, rowError));
    actions.append(move, edit, remove);
  }
  const historyButton = el("button", "History", {
    type: "button", class: "link", "data-action": "history",
    "aria-label": `Audit history of “${good.name}”`,
  });
  historyButton.addEventListener("click", () => showHistory(good));
  actions.append(historyButton);
  td.append(actions, rowError);
  return tr;
}

// After a change: reload the list (marking and focusing the changed row) and say what happened;
// a 404 or 409 also reloads (the list was stale); other failures go to ``onError``.
async function afterChange(result, { id, action, text, last = false, onError }) {
  if (result.ok) {
    catalog.highlight = id;
    catalog.focus = action ? [id, action] : null;
    catalogMessage(text);
    await loadCatalog({ last });
    return true;
  }
  if (result.status === 404 || result.status === 409) {
    catalogMessage(errorText(result), false);
    await loadCatalog();
    return false;
  }
  catalogMessage("");  // an earlier success must not stand beside this failure
  onError(result);
  return false;
}

function closeEditor() {
  const open = $("#goods tr.editor");
  if (!open) return;
  const row = open.previousElementSibling;
  row?.querySelector("[data-action=edit]")?.setAttribute("aria-expanded", "false");
  open.remove();
}

function openEditor(tr, good, button) {
  closeEditor();
  catalogMessage("");  // a message about an earlier change must not stand beside this box
  const editor = el("tr", null, { class: "editor" });
  const td = el("td", null, { colspan: "7" });
  const form = el("form", null, { class: "panel", novalidate: true, autocomplete: "off" });
  const field = (name, label, value) => {
    const wrap = el("div", null, { class: name === "description" ? "field grow" : "field" });
    const input = el("input", null, {
      id: `edit-${name}-${good.id}`, name, "aria-describedby": `edit-${name}-${good.id}-error`,
    });
    input.value = value;
    const hint = el("p", null, { id: `edit-${name}-${good.id}-error`, class: "field-error", hidden: true });
    wrap.append(el("label", label, { for: input.id }), input, hint);
    return [wrap, input];
  };
  const [nameField, name] = field("name", "Name", good.name);
  const [descriptionField, description] = field("description", "Description", good.description);
  const save = el("button", "Save", { type: "submit" });
  const cancel = el("button", "Cancel", { type: "button", class: "secondary" });
  const box = el("div", null, { class: "form-error", role: "alert", hidden: true });
  const fields = el("div", null, { class: "fields" });
  const buttons = el("div", null, { class: "row" });
  buttons.append(save, cancel);
  fields.append(nameField, descriptionField, buttons);
  form.append(el("h3", `Edit good #${good.id}`), fields, box);
  td.append(form);
  editor.append(td);
  tr.after(editor);
  button.setAttribute("aria-expanded", "true");
  name.focus();

  const close = () => { closeEditor(); button.focus(); };
  cancel.addEventListener("click", close);
  form.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    const result = await api("PATCH", `/good/update?id=${good.id}&projectId=${good.projectId}`,
      { name: name.value, description: description.value });
    save.disabled = false;
    await afterChange(result, {
      id: good.id, action: "edit", text: `Saved “${result.data?.name}” (#${good.id}).`,
      onError: (failed) => showError(box, failed, { name, description }),
    });
  });
}

// The offset of the page that shows good ``id`` at ``priority``: goods are listed by priority,
// then id, so a binary search over the pages finds it in a few reads (the first guess assumes
// dense priorities, which is the common case and takes one read).
async function offsetOf(id, priority) {
  const before = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  const target = [priority, id];
  let lo = 0, hi = Math.max(0, Math.ceil(catalog.total / catalog.limit) - 1);
  let page = Math.max(0, Math.min(hi, Math.floor((priority - 1) / catalog.limit)));
  while (lo <= hi) {
    const offset = page * catalog.limit + 1;
    const result = await api("GET", `/goods/list?limit=${catalog.limit}&offset=${offset}`);
    if (!result.ok || !result.data.goods.length) return null;
    const goods = result.data.goods;
    if (goods.some((g) => g.id === id)) return offset;
    const first = goods[0], last = goods[goods.length - 1];
    if (before([last.priority, last.id], target)) lo = page + 1;
    else if (before(target, [first.priority, first.id])) hi = page - 1;
    else return null;
    page = Math.floor((lo + hi) / 2);
  }
  return null;
}

async function reprioritize(good, input, rowError) {
  const raw = input.value.trim();
  const number = Number(raw);
  const newPriority = raw === "" ? null : Number.isInteger(number) ? number : raw;
  const result = await api("PATCH", `/good/reprioritize?id=${good.id}&projectId=${good.projectId}`,
    { newPriority });
  const others = result.ok ? result.data.priorities.filter((p) => p.id !== good.id).length : 0;
  if (result.ok) {  // follow the moved good to its page, so it stays in view
    const moved = result.data.priorities.find((p) => p.id === good.id);
    const offset = await offsetOf(good.id, moved ? moved.priority : newPriority);
    if (offset) catalog.offset = offset;
  }
  const text = `Moved “${good.name}” to priority ${newPriority}` +
    (others ? `; ${others} other ${others === 1 ? "good" : "goods"} moved down one place.` : ".");
  rowError.replaceChildren();
  rowError.hidden = true;
  input.removeAttribute("aria-invalid");
  await afterChange(result, {
    id: good.id, action: "move", text,
    onError: (failed) => {  // the reasons show in the row, under the number input
      if (errorDetails(failed).some(([field]) => field === "newPriority")) {
        input.setAttribute("aria-invalid", "true");
      }
      rowError.replaceChildren(...errorNodes(failed));
      rowError.hidden = false;
      input.focus();
    },
  });
}

function askRemove(actions, good, rowError) {
  catalogMessage("");
  actions.hidden = true;
  const confirm = el("div", null, { class: "confirm", role: "group", "aria-label": "Confirm removal" });
  const question = el("p", `Remove “${good.name}”?`);
  const yes = el("button", "Yes, remove", { type: "button", class: "danger", "data-action": "confirm-remove" });
  const no = el("button", "Keep", { type: "button", class: "secondary" });
  const buttons = el("div", null, { class: "actions" });
  buttons.append(yes, no);
  confirm.append(question, buttons);
  actions.after(confirm);
  no.focus();
  const back = () => { confirm.remove(); actions.hidden = false; actions.querySelector("[data-action=remove]")?.focus(); };
  no.addEventListener("click", back);
  confirm.addEventListener("keydown", (event) => { if (event.key === "Escape") back(); });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    const result = await api("DELETE", `/good/remove?id=${good.id}&projectId=${good.projectId}`);
    yes.disabled = false;
    await afterChange(result, {
      id: good.id, action: "history", text: `Removed “${good.name}” (#${good.id}).`,
      onError: (failed) => {
        back();
        rowError.replaceChildren(...errorNodes(failed));
        rowError.hidden = false;
      },
    });
  });
}

function showHistory(good) {
  $("#logs-project").value = good.projectId;
  $("#logs-good").value = good.id;
  logs.cursors = [null];
  selectTab("logs", { focus: true });
}

async function addGood(event) {
  event.preventDefault();
  const form = $("#good-form");
  const name = $("#good-name"), description = $("#good-description");
  const project = $("#good-project").value || "1";
  const submit = $("#good-submit");
  submit.disabled = true;
  const result = await api("POST", `/good/create?projectId=${encodeURIComponent(project)}`,
    { name: name.value, description: description.value });
  submit.disabled = false;
  const box = form.querySelector(".form-error");
  const fields = { name, description };
  if (result.ok) {
    clearErrors(box, fields);
    name.value = "";
    description.value = "";
    name.focus();
  }
  await afterChange(result, {
    id: result.data?.id, last: true,
    text: result.ok ? `Added “${result.data.name}” (#${result.data.id}, priority ${result.data.priority}).` : "",
    onError: (failed) => showError(box, failed, fields),
  });
}

async function addProject(event) {
  event.preventDefault();
  const input = $("#project-name");
  const box = $("#project-form .form-error");
  const result = await api("POST", "/project/create", { name: input.value });
  if (!result.ok) { showError(box, result, { name: input }); return; }
  clearErrors(box, { name: input });
  input.value = "";
  $("#good-project").value = "";
  await loadProjects();
  $("#good-project").value = String(result.data.id);
  sessionStorage.setItem("hexmarket.project", String(result.data.id));
  $("#project-box").open = false;
  catalogMessage(`Created project “${result.data.name}” (#${result.data.id}); new goods go there.`);
}

function showTokenState() {
  $("#token-state").textContent = apiToken() ? "(set)" : "(not set)";
}

// --- audit log ----------------------------------------------------------------------------

// ``cursors``: the ``before`` of each page shown so far (keyset paging, newest first); the open
// "shifted goods" lists survive the 2 s refresh.
const logs = { timer: null, busy: false, loads: 0, cursors: [null], next: null, open: new Set() };

const PHONE = window.matchMedia("(max-width: 640px)");

function logsQuery() {
  const params = new URLSearchParams({ limit: $("#logs-limit").value });
  const project = $("#logs-project").value.trim(), good = $("#logs-good").value.trim();
  const type = $("#logs-type").value;
  if (project) params.set("projectId", project);
  if (good) params.set("id", good);
  if (type) params.set("type", type);
  for (const [name, input] of [["since", $("#logs-since")], ["until", $("#logs-until")]]) {
    const moment = input.value ? new Date(input.value) : null;  // local time, sent as UTC
    if (moment && !Number.isNaN(moment.getTime())) params.set(name, moment.toISOString());
  }
  return params;
}

function logsScope() {
  const project = $("#logs-project").value.trim(), good = $("#logs-good").value.trim();
  const type = $("#logs-type").value;
  const since = $("#logs-since").value, until = $("#logs-until").value;
  return [
    type && `${type} events`, project && `project #${project}`, good && `good #${good}`,
    since && `from ${new Date(since).toLocaleString()}`, until && `to ${new Date(until).toLocaleString()}`,
  ].filter(Boolean).join(", ");
}

// Events of one change arrive together (one time, one change id): they become one entry.
function changesOf(events) {
  const changes = [];
  for (const e of events) {
    const last = changes[changes.length - 1];
    if (last && last.id === e.change_id) last.events.push(e);
    else changes.push({ id: e.change_id, events: [e] });
  }
  for (const change of changes) {
    change.target = change.events.find((e) => e.target_id === e.id) || null;
    change.shifted = change.events.filter((e) => e.target_id !== e.id);
  }
  return changes;
}

const arrow = (before, after) => `${before} → ${after}`;

// What the change did to this good, before → after.
function changeText(e) {
  if (e.type === "create") return `created at priority ${e.priority}`;
  if (e.type === "remove") return "active → removed";
  if (e.type === "update") {
    const parts = [];
    if (e.before_name !== null) parts.push(`name ${arrow(`“${e.before_name}”`, `“${e.name}”`)}`);
    if (e.before_description !== null) {
      parts.push(`description ${arrow(`“${e.before_description || "—"}”`, `“${e.description || "—"}”`)}`);
    }
    return parts.join("; ") || "saved unchanged";
  }
  if (e.before_priority !== null) {
    const moved = `priority ${arrow(e.before_priority, e.priority)}`;
    return e.target_id === e.id ? moved : `${moved}, shifted by good #${e.target_id}`;
  }
  return `priority ${e.priority}`;
}

const LOG_LABELS = ["Time", "Event", "Good", "Project", "Name", "Change", "Priority", "Removed"];

function eventCells(tr, e, { time = true } = {}) {
  const cell = (value, i, cls) => {
    const td = el("td", value, { "data-label": LOG_LABELS[i], class: cls });
    tr.append(td);
    return td;
  };
  const when = cell(null, 0, "time");
  if (time) when.append(el("time", new Date(e.event_time).toLocaleString(), { datetime: e.event_time }));
  cell(null, 1).append(el("span", e.type, { class: `badge badge-${e.type}` }));
  cell(e.id, 2, "num");
  cell(e.project_id, 3, "num minor");
  cell(e.name, 4, "name");
  cell(changeText(e), 5, "text change");
  cell(e.priority, 6, "num");
  cell(e.removed ? "yes" : "no", 7, "minor");
}

function changeRows(change) {
  const head = change.target || change.events[0];
  const tr = el("tr", null, { "data-event": head.event_id, "data-change": change.id, class: "change" });
  eventCells(tr, head);
  const rows = [tr];
  const others = change.target ? change.shifted : change.events.slice(1);
  if (!others.length) return rows;
  const open = logs.open.has(change.id);
  const toggle = el("button", `shifted ${others.length} ${others.length === 1 ? "good" : "goods"}`, {
    type: "button", class: "link", "data-action": "shifted", "aria-expanded": String(open),
  });
  tr.querySelector("td.change").append(document.createTextNode(" "), toggle);
  const detail = el("tr", null, { class: "shifted", hidden: !open });
  const td = el("td", null, { colspan: "8" });
  const list = el("ul", null, { class: "shifted-list" });
  for (const e of others) {
    list.append(el("li", `${e.name} (#${e.id}): ${changeText(e).replace(/, shifted by good #\d+$/, "")}`,
      { "data-event": e.event_id }));
  }
  td.append(list);
  detail.append(td);
  toggle.addEventListener("click", () => {
    const now = detail.hidden;
    detail.hidden = !now;
    toggle.setAttribute("aria-expanded", String(now));
    if (now) logs.open.add(change.id); else logs.open.delete(change.id);
  });
  rows.push(detail);
  return rows;
}

async function loadLogs(event) {
  if (event) {  // a new query starts at the newest page
    event.preventDefault();
    logs.cursors = [null];
  }
  const load = ++logs.loads;
  logs.busy = true;
  const message = $("#logs-message");
  const params = logsQuery();
  const limit = Number(params.get("limit"));
  params.set("limit", String(Math.min(limit + 1, 1000)));
  const before = logs.cursors[logs.cursors.length - 1];
  if (before) params.set("before", before);
  const result = await api("GET", `/logs?${params}`);
  logs.busy = false;
  if (load !== logs.loads) return;
  if (!result.ok) {
    const reasons = errorDetails(result).map(([field, reason]) => `${fieldText(field)}: ${reason}`).join("; ");
    show(message, `${errorText(result, "The audit log store")}${reasons ? ` ${reasons}` : ""}`);
    return;
  }
  // One event more than the page shows tells whether the last change goes on past the page:
  // if it does, that change starts the next page instead, whole (unless it fills the page).
  const received = result.data.logs;
  let events = received.slice(0, limit);
  const more = received.length > limit ? received[limit] : null;
  const changes = changesOf(events);
  if (more && changes.length > 1 && more.change_id === changes[changes.length - 1].id) {
    events = events.slice(0, events.length - changes.pop().events.length);
  }
  const last = events[events.length - 1];
  const hasMore = Boolean(more) || Boolean(result.data.meta.next && received.length === limit);
  logs.next = hasMore && last ? `${last.event_time}_${last.event_id}` : null;  // the API's cursor
  const page = logs.cursors.length;
  const scope = logsScope();
  $("#logs-meta").textContent =
    `${events.length} ${events.length === 1 ? "event" : "events"} in ${changes.length} ` +
    `${changes.length === 1 ? "change" : "changes"}, newest first` + (scope ? ` · ${scope}` : "");
  $("#logs-page").textContent = `Page ${page}`;
  $("#logs-older").disabled = !logs.next;
  $("#logs-newest").disabled = page === 1;
  show(message, events.length || page > 1 ? "" : "No events yet. Changes show up here a moment after they are made.", true);
  $("#logs tbody").replaceChildren(...changes.flatMap(changeRows));
}

// Events reach the log store a moment after a change (outbox -> broker -> log writer), so the
// open audit view refreshes itself while its box is ticked and the page is visible.
function liveLogs() {
  clearInterval(logs.timer);
  logs.timer = null;
  if ($("#tab-logs").hidden || !$("#logs-live").checked) return;
  logs.timer = setInterval(() => {  // only the newest page moves
    if (!logs.busy && logs.cursors.length === 1 && document.visibilityState === "visible") loadLogs();
  }, 2000);
}

// --- start --------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  localStorage.removeItem(TOKEN_KEY);  // an earlier version of the page kept it there
  for (const button of document.querySelectorAll("nav [data-tab]")) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
    button.addEventListener("keydown", tabKeys);
    button.tabIndex = button.getAttribute("aria-selected") === "true" ? 0 : -1;
  }
  $("#order-form").addEventListener("submit", lookUpOrder);
  $("#recent-older").addEventListener("click", () => {
    if (recent.next) { recent.cursors.push(recent.next); loadRecent(); }
  });
  $("#recent-newest").addEventListener("click", () => { recent.cursors = [null]; loadRecent(); });
  $("#recent-refresh").addEventListener("click", () => loadRecent());

  $("#good-form").addEventListener("submit", addGood);
  $("#project-form").addEventListener("submit", addProject);
  $("#good-project").addEventListener("change", (event) => {
    sessionStorage.setItem("hexmarket.project", event.target.value);
  });
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#api-token").value.trim());
    showTokenState();
    $("#token-box").open = false;
    catalogMessage(apiToken() ? "The API token will be sent with changes." : "No API token is sent.");
  });
  $("#token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#api-token").value = "";
    showTokenState();
    catalogMessage("The API token is forgotten.");
  });
  $("#api-token").value = apiToken();
  showTokenState();

  // Paging or opening a box starts afresh: a message about the last change goes.
  $("#goods-limit").addEventListener("change", (event) => {
    catalog.limit = Number(event.target.value);
    catalog.offset = 1;
    catalogMessage("");
    loadCatalog();
  });
  catalog.limit = Number($("#goods-limit").value);
  $("#goods-prev").addEventListener("click", () => {
    catalog.offset = Math.max(1, catalog.offset - catalog.limit);
    catalogMessage("");
    loadCatalog();
  });
  $("#goods-next").addEventListener("click", () => {
    catalog.offset += catalog.limit;
    catalogMessage("");
    loadCatalog();
  });
  $("#goods-refresh").addEventListener("click", () => { catalogMessage(""); loadCatalog(); });
  for (const box of [$("#project-box"), $("#token-box")]) {
    box.addEventListener("toggle", () => { if (box.open) catalogMessage(""); });
  }

  $("#logs-form").addEventListener("submit", loadLogs);
  if (PHONE.matches) $("#logs-limit").value = "20";  // a phone pages rather than scrolls
  $("#logs-older").addEventListener("click", () => {
    if (logs.next) { logs.cursors.push(logs.next); loadLogs(); }
  });
  $("#logs-newest").addEventListener("click", () => { logs.cursors = [null]; loadLogs(); });
  $("#logs-live").addEventListener("change", liveLogs);

  const [tab, id] = decodeURIComponent(location.hash.slice(1)).split("/");
  if (tab === "catalog" || tab === "logs") selectTab(tab);
  else loadRecent();
  if (tab === "orders" && id) { $("#order-id").value = id; lookUpOrder(); }
  document.body.dataset.ready = "true";
});
