// hexmarket web page: plain JavaScript over the public HTTP API. Data is only ever inserted
// with textContent (never innerHTML), so order and good fields cannot inject markup.
"use strict";

const $ = (sel) => document.querySelector(sel);

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function show(target, text, ok = false) {
  target.textContent = text;
  target.classList.toggle("ok", ok);
  target.hidden = !text;
}

function describeError(status, body) {
  if (body && typeof body === "object" && "message" in body) {
    const details = Object.entries(body.details || {}).map(([k, v]) => `${k}: ${v}`).join("; ");
    return details ? `${body.message} (${details})` : body.message;
  }
  return `HTTP ${status}`;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = localStorage.getItem("hexmarket.token");
  if (token && method !== "GET") headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  const text = await response.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { ok: response.ok, status: response.status, data, headers: response.headers };
}

// --- tabs ---------------------------------------------------------------------------------

function selectTab(name) {
  for (const button of document.querySelectorAll("nav [data-tab]")) {
    const on = button.dataset.tab === name;
    button.setAttribute("aria-selected", String(on));
    $(`#tab-${button.dataset.tab}`).hidden = !on;
  }
  if (name === "catalog") loadCatalog();
  if (name === "logs") loadLogs();
  history.replaceState(null, "", `#${name}`);
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
  let result;
  try {
    result = await api("GET", `/order/${encodeURIComponent(id)}`);
  } catch {
    show(message, "The server cannot be reached. Try again in a moment.");
    return;
  }
  if (result.ok) {
    renderOrder(result.data, result.headers.get("X-Cache"));
    history.replaceState(null, "", `#orders/${encodeURIComponent(id)}`);
  } else if (result.status === 404) {
    show(message, `No order with id “${id}”. Check the id, or try again once the order has arrived.`);
  } else if (result.status === 400) {
    show(message, `“${id}” is not a valid order id: use 1 to 64 letters, digits, “_” or “-”.`);
  } else {
    show(message, `The order could not be loaded: ${describeError(result.status, result.data)}`);
  }
}

// --- catalog ------------------------------------------------------------------------------

const catalog = { offset: 1, limit: 20, total: 0, projects: [] };

async function loadProjects() {
  const result = await api("GET", "/projects/list");
  if (!result.ok) return;
  catalog.projects = result.data.projects;
  const select = $("#good-project");
  const current = select.value;
  select.replaceChildren(...catalog.projects.map((p) => el("option", `${p.id} · ${p.name}`, { value: p.id })));
  if (current) select.value = current;
}

function goodRow(good) {
  const tr = el("tr");
  const cell = (value, label, cls = "") => tr.append(el("td", value, { "data-label": label, class: cls }));
  cell(good.priority, "Priority", "num");
  cell(good.id, "Id", "num");
  cell(good.projectId, "Project", "num");
  cell(good.name, "Name");
  cell(good.description, "Description");
  cell(good.removed ? "removed" : "active", "State");
  const actions = el("div", null, { class: "actions" });
  if (!good.removed) {
    const edit = el("button", "Edit", { type: "button", class: "secondary" });
    edit.onclick = () => editGood(good);
    const move = el("button", "Priority…", { type: "button", class: "secondary" });
    move.onclick = () => reprioritize(good);
    const remove = el("button", "Remove", { type: "button", class: "danger" });
    remove.onclick = () => removeGood(good);
    actions.append(edit, move, remove);
  }
  const td = el("td", null, { "data-label": "Actions" });
  td.append(actions);
  tr.append(td);
  return tr;
}

async function loadCatalog() {
  const message = $("#catalog-message");
  await loadProjects();
  const result = await api("GET", `/goods/list?limit=${catalog.limit}&offset=${catalog.offset}`);
  if (!result.ok) { show(message, describeError(result.status, result.data)); return; }
  const { meta, goods } = result.data;
  catalog.total = meta.total;
  $("#goods-meta").textContent =
    `${meta.total} goods (${meta.removed} removed) · showing from position ${meta.offset}`;
  $("#goods tbody").replaceChildren(...goods.map(goodRow));
  $("#goods-prev").disabled = catalog.offset <= 1;
  $("#goods-next").disabled = catalog.offset + catalog.limit > catalog.total;
}

async function mutate(method, path, body, done) {
  const message = $("#catalog-message");
  const result = await api(method, path, body);
  if (result.ok) { show(message, done, true); await loadCatalog(); }
  else show(message, describeError(result.status, result.data));
  return result.ok;
}

function editGood(good) {
  const name = prompt("Name", good.name);
  if (name === null) return;
  const description = prompt("Description", good.description);
  if (description === null) return;
  mutate("PATCH", `/good/update?id=${good.id}&projectId=${good.projectId}`,
    { name, description }, `Good ${good.id} updated.`);
}

function reprioritize(good) {
  const value = prompt(`New priority for “${good.name}” (now ${good.priority})`, good.priority);
  if (value === null) return;
  mutate("PATCH", `/good/reprioritize?id=${good.id}&projectId=${good.projectId}`,
    { newPriority: Number(value) }, `Good ${good.id} moved to priority ${value}.`);
}

function removeGood(good) {
  if (!confirm(`Remove “${good.name}”?`)) return;
  mutate("DELETE", `/good/remove?id=${good.id}&projectId=${good.projectId}`, undefined,
    `Good ${good.id} removed.`);
}

// --- audit log ----------------------------------------------------------------------------

async function loadLogs(event) {
  event?.preventDefault();
  const message = $("#logs-message");
  const params = new URLSearchParams({ limit: "100" });
  if ($("#logs-project").value) params.set("projectId", $("#logs-project").value);
  if ($("#logs-good").value) params.set("id", $("#logs-good").value);
  const result = await api("GET", `/logs?${params}`);
  if (!result.ok) { show(message, describeError(result.status, result.data)); return; }
  show(message, result.data.logs.length ? "" : "No events yet.", true);
  const labels = ["Time", "Type", "Good", "Project", "Name", "Priority", "Removed"];
  $("#logs tbody").replaceChildren(...result.data.logs.map((e) => {
    const tr = el("tr");
    [new Date(e.event_time).toLocaleString(), e.type, e.id, e.project_id, e.name, e.priority,
      e.removed ? "yes" : "no"].forEach((v, i) => tr.append(el("td", v, { "data-label": labels[i] })));
    return tr;
  }));
}

// --- start --------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("nav [data-tab]")) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
  }
  $("#order-form").addEventListener("submit", lookUpOrder);
  $("#good-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const project = $("#good-project").value || "1";
    const ok = await mutate("POST", `/good/create?projectId=${project}`,
      { name: $("#good-name").value, description: $("#good-description").value }, "Good added.");
    if (ok) { $("#good-name").value = ""; $("#good-description").value = ""; }
  });
  $("#project-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const ok = await mutate("POST", "/project/create", { name: $("#project-name").value }, "Project added.");
    if (ok) $("#project-name").value = "";
  });
  const token = $("#api-token");
  token.value = localStorage.getItem("hexmarket.token") || "";
  token.addEventListener("change", () => localStorage.setItem("hexmarket.token", token.value));
  $("#goods-prev").addEventListener("click", () => { catalog.offset = Math.max(1, catalog.offset - catalog.limit); loadCatalog(); });
  $("#goods-next").addEventListener("click", () => { catalog.offset += catalog.limit; loadCatalog(); });
  $("#goods-refresh").addEventListener("click", loadCatalog);
  $("#logs-form").addEventListener("submit", loadLogs);

  const [tab, id] = decodeURIComponent(location.hash.slice(1)).split("/");
  if (tab === "catalog" || tab === "logs") selectTab(tab);
  if (tab === "orders" && id) { $("#order-id").value = id; lookUpOrder(); }
  document.body.dataset.ready = "true";
});
