// The admin dashboard: plain DOM, no framework, no inline script. Every string
// from the API reaches the page through textContent or attributes, never as
// HTML, so a client named "<script>" is just a name.
"use strict";

const app = document.getElementById("app");
const nav = document.getElementById("nav");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "testid") node.dataset.testid = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const svgNs = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(svgNs, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) { init.headers["content-type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401 && path !== "/admin/login") { showLogin(); }
    throw new ApiError(response.status, error.code || "error", error.message || `HTTP ${response.status}`);
  }
  return data;
}

function toast(message) {
  const t = el("div", { class: "toast", role: "status" }, message);
  document.body.append(t);
  setTimeout(() => t.remove(), 2500);
}

const fmt = {
  n: (v) => (v ?? 0).toLocaleString("en-US"),
  date: (iso) => (iso ? new Date(iso).toLocaleString() : "—"),
  day: (iso) => (iso ? iso.slice(0, 10) : "—"),
  pct: (part, whole) => (whole ? `${((100 * part) / whole).toFixed(1)}%` : "—"),
  ms: (v) => (v === null || v === undefined ? "—" : `${fmt.n(v)} ms`),
};

function render(...nodes) {
  app.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
}

function failure(error) {
  return el("p", { class: "error", role: "alert", testid: "error" }, error.message || String(error));
}

// ---------- login ----------

function showLogin() {
  nav.hidden = true;
  const password = el("input", { type: "password", name: "password", autocomplete: "current-password", required: true, testid: "password" });
  const message = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "card login", testid: "login-form", onsubmit: async (event) => {
    event.preventDefault();
    message.textContent = "";
    try {
      await api("POST", "/admin/login", { password: password.value });
      nav.hidden = false;
      route();
    } catch (e) { message.textContent = e.message; }
  } },
    el("h1", {}, "Log in"),
    el("label", {}, "Admin password", password),
    el("p", {}, el("button", { type: "submit", testid: "login" }, "Log in")),
    message);
  render(form);
  password.focus();
}

// ---------- overview ----------

async function showOverview() {
  const data = await api("GET", "/admin/overview");
  const stat = (label, value, testid) => el("div", { class: "stat", testid }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
  const busiest = el("table", { testid: "busiest" },
    el("thead", {}, el("tr", {}, el("th", {}, "Client"), el("th", {}, "Generations this month"), el("th", {}, "Errors"))),
    el("tbody", {}, data.busiest_clients.length ? data.busiest_clients.map((c) => el("tr", {},
      el("td", {}, el("a", { href: `#/clients/${encodeURIComponent(c.client_id)}` }, c.name)),
      el("td", {}, fmt.n(c.success + c.error)),
      el("td", {}, fmt.n(c.error)))) : el("tr", {}, el("td", { colspan: 3, class: "muted" }, "No generations this month yet."))));
  render(
    el("h1", {}, "Overview"),
    el("div", { class: "cards" },
      stat("Today", fmt.n(data.today.total), "today-total"),
      stat("This month", fmt.n(data.month.total), "month-total"),
      stat("Error rate this month", fmt.pct(data.month.error, data.month.total), "error-rate"),
      stat("Clients", fmt.n(data.clients), "client-count")),
    el("h2", {}, "Busiest clients this month"),
    busiest);
}

// ---------- clients ----------

function pill(text) { return el("span", { class: `pill ${text}` }, text); }

function usageBar(used, limit) {
  const ratio = limit ? Math.min(1, used / limit) : 1;
  const bar = el("div", { class: `bar${ratio >= 1 ? " full" : ""}`, title: `${used} of ${limit}` }, el("span", {}));
  bar.firstChild.style.width = `${(ratio * 100).toFixed(1)}%`;
  return el("div", {}, `${fmt.n(used)} / ${fmt.n(limit)}`, bar);
}

function shownOnce(label, value, testid) {
  const copy = el("button", { type: "button", class: "secondary", testid: `${testid}-copy`, onclick: async () => {
    try { await navigator.clipboard.writeText(value); toast("Copied"); copy.textContent = "Copied"; }
    catch { toast("Copy failed: select the text and copy it"); }
  } }, "Copy");
  return el("div", { class: "secret", testid },
    el("span", { class: "notice" }, `${label}: shown only this once. Store it now; it cannot be shown again.`),
    el("code", { testid: `${testid}-value` }, value), copy);
}

function originsFrom(text) { return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean); }

async function showClients() {
  const page = await api("GET", "/admin/clients?limit=100");
  const revealed = el("div", {});
  const message = el("p", { class: "error", role: "alert" });
  const field = (label, input) => el("label", {}, label, input);
  const name = el("input", { name: "name", required: true, testid: "new-name" });
  const email = el("input", { name: "email", type: "email" });
  const limit = el("input", { name: "usage_limit", type: "number", min: 0, value: 5000 });
  const rate = el("input", { name: "rate_limit_per_minute", type: "number", min: 1, value: 60 });
  const origins = el("input", { name: "allowed_origins", placeholder: "https://shop.example" });
  const form = el("form", { class: "card grid", testid: "create-client", onsubmit: async (event) => {
    event.preventDefault();
    message.textContent = "";
    try {
      const created = await api("POST", "/admin/clients", {
        name: name.value, email: email.value || undefined, usage_limit: Number(limit.value),
        rate_limit_per_minute: Number(rate.value), allowed_origins: originsFrom(origins.value),
      });
      form.reset();
      await showClients();
      app.prepend(shownOnce(`API key for ${created.client.name}`, created.api_key, "new-key"));
    } catch (e) { message.textContent = e.message; }
  } },
    field("Name", name), field("Email", email), field("Monthly limit", limit), field("Rate per minute", rate),
    field("Allowed origins", origins), el("div", {}, el("button", { type: "submit", testid: "create" }, "Create client")), message);

  const rows = page.data.map((c) => el("tr", { testid: "client-row" },
    el("td", {}, el("a", { href: `#/clients/${encodeURIComponent(c.id)}`, testid: "client-link" }, c.name), el("div", { class: "muted mono" }, c.id)),
    el("td", {}, pill(c.active ? "active" : "inactive")),
    el("td", { class: "mono" }, c.keys.filter((k) => k.status !== "revoked" && k.status !== "expired").map((k) => el("div", {}, `${k.prefix}…`))),
    el("td", {}, usageBar(c.usage_this_month, c.usage_limit)),
    el("td", {}, `${fmt.n(c.rate_limit_per_minute)}/min`),
    el("td", {}, fmt.date(c.last_generation_at)),
    el("td", {}, fmt.day(c.created_at))));
  render(
    revealed,
    el("h1", {}, "Clients"),
    el("h2", {}, "New client"), form,
    el("table", { testid: "clients" },
      el("thead", {}, el("tr", {}, ["Name", "Status", "Keys", "Usage this month", "Rate limit", "Last generation", "Created"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No clients yet.")))),
    page.next_cursor ? el("p", { class: "muted" }, "Showing the 100 newest clients.") : null);
}

// ---------- one client ----------

function chart(daily, days) {
  const byDay = new Map();
  for (const row of daily) {
    const d = byDay.get(row.day) || { success: 0, error: 0 };
    d.success += row.success; d.error += row.error;
    byDay.set(row.day, d);
  }
  const last = Math.floor(Date.now() / 86400000);
  const series = [];
  for (let day = last - days + 1; day <= last; day++) series.push({ day, ...(byDay.get(day) || { success: 0, error: 0 }) });
  const max = Math.max(1, ...series.map((d) => d.success + d.error));
  const width = 600, height = 160, slot = width / series.length;
  const bars = series.flatMap((d, i) => {
    const hs = (d.success / max) * (height - 20), he = (d.error / max) * (height - 20);
    const x = i * slot + 1, w = Math.max(1, slot - 2);
    const title = `${new Date(d.day * 86400000).toISOString().slice(0, 10)}: ${d.success} ok, ${d.error} errors`;
    return [
      svg("rect", { class: "success", x, y: height - 14 - hs, width: w, height: hs }, svg("title", {}, title)),
      svg("rect", { class: "error", x, y: height - 14 - hs - he, width: w, height: he }, svg("title", {}, title)),
    ];
  });
  const labels = [0, series.length - 1].map((i) => svg("text", { x: i * slot, y: height - 2 }, new Date(series[i].day * 86400000).toISOString().slice(5, 10)));
  return el("div", { class: "card", testid: "chart" },
    el("div", { class: "legend" }, el("span", {}, el("i", { class: "ok-swatch" }), "success"), el("span", {}, el("i", { class: "error-swatch" }), "error")),
    svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Generations per day, last ${days} days` }, ...bars, ...labels));
}

async function showClient(id) {
  const path = `/admin/clients/${encodeURIComponent(id)}`;
  const [client, metrics, stats, deliveries, shoppers] = await Promise.all([
    api("GET", path), api("GET", `${path}/metrics`), api("GET", `${path}/stats?days=30`), api("GET", `${path}/deliveries?limit=20`),
    api("GET", `${path}/shoppers?days=30`)]);
  const revealed = el("div", {});
  const message = el("p", { class: "error", role: "alert" });

  const active = el("input", { type: "checkbox", name: "active", checked: client.active });
  const limit = el("input", { type: "number", min: 0, value: client.usage_limit, testid: "edit-limit" });
  const rate = el("input", { type: "number", min: 1, value: client.rate_limit_per_minute });
  const concurrency = el("input", { type: "number", min: 1, value: client.max_concurrent });
  const origins = el("textarea", { rows: 2 }, client.allowed_origins.join("\n"));
  const widgetRate = el("input", { type: "number", min: 1, value: client.widget_rate_limit_per_minute, testid: "edit-widget-rate" });
  const shopperRate = el("input", { type: "number", min: 1, value: client.shopper_rate_limit_per_minute, testid: "edit-shopper-rate" });
  const shopperDaily = el("input", { type: "number", min: 1, value: client.shopper_daily_limit, testid: "edit-shopper-daily" });
  const webhook = el("input", { type: "url", value: client.webhook_url || "", placeholder: "https://shop.example/hooks/tryon", testid: "webhook-url" });
  const retention = el("input", { type: "number", min: 1, value: client.retention_days ?? "", placeholder: "service default", testid: "edit-retention" });
  // No choice stored (null) means every type, including types added later.
  const eventBoxes = CALLBACK_EVENTS.map((type) => el("input", { type: "checkbox", value: type, checked: !client.webhook_events || client.webhook_events.includes(type) }));
  const chosenEvents = () => {
    const chosen = eventBoxes.filter((b) => b.checked).map((b) => b.value);
    return chosen.length === CALLBACK_EVENTS.length ? null : chosen;
  };
  const edit = el("form", { class: "card grid", testid: "edit-client", onsubmit: async (event) => {
    event.preventDefault();
    message.textContent = "";
    try {
      const updated = await api("PATCH", path, {
        active: active.checked, usage_limit: Number(limit.value), rate_limit_per_minute: Number(rate.value),
        max_concurrent: Number(concurrency.value), allowed_origins: originsFrom(origins.value), webhook_url: webhook.value || null,
        retention_days: retention.value === "" ? null : Number(retention.value),
        widget_rate_limit_per_minute: Number(widgetRate.value), shopper_rate_limit_per_minute: Number(shopperRate.value),
        shopper_daily_limit: Number(shopperDaily.value),
        webhook_events: chosenEvents(),
      });
      toast("Saved");
      if (updated.webhook_secret) revealed.replaceChildren(shownOnce("Callback signing secret", updated.webhook_secret, "webhook-secret"));
    } catch (e) { message.textContent = e.message; }
  } },
    el("label", {}, "Active", active), el("label", {}, "Monthly limit", limit), el("label", {}, "Rate per minute", rate),
    el("label", {}, "Max concurrent", concurrency), el("label", {}, "Allowed origins (one per line)", origins),
    el("label", {}, "Widget rate per minute", widgetRate), el("label", {}, "Per shopper per minute", shopperRate),
    el("label", {}, "Per shopper per day", shopperDaily),
    el("label", {}, "Callback URL", webhook), el("label", {}, "Keep result images (days)", retention),
    el("fieldset", { class: "events" }, el("legend", {}, "Callback events"), eventBoxes.map((box) => el("label", { class: "check" }, box, box.value))),
    el("div", {}, el("button", { type: "submit", testid: "save" }, "Save")), message);

  const remove = el("div", { class: "row" }, el("button", { type: "button", class: "danger", testid: "delete-client", onclick: async () => {
    if (!confirm(`Delete ${client.name}? Its keys stop working at once; its generations and result images are erased. Past usage stays for invoicing.`)) return;
    try {
      const deleted = await api("DELETE", path);
      toast(deleted.erasure.complete ? "Client deleted" : "Client deleted; its remaining images are erased in the background");
      location.hash = "#/clients";
    } catch (e) { toast(e.message); }
  } }, "Delete client"));

  const grace = el("select", {}, [["0", "revoke old keys now"], ["3600", "keep old keys 1 hour"], ["86400", "keep old keys 1 day"], ["604800", "keep old keys 7 days"]].map(([v, t]) => el("option", { value: v }, t)));
  const keys = el("table", { testid: "keys" },
    el("thead", {}, el("tr", {}, ["Key", "Kind", "Status", "Created", "Ends", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, client.keys.map((k) => el("tr", { testid: `key-${k.kind}` },
      // A publishable key is public by design: shown whole; a secret one only by its prefix.
      el("td", { class: "mono" }, k.key || `${k.prefix}…`), el("td", {}, k.kind), el("td", {}, pill(k.status)), el("td", {}, fmt.date(k.created_at)),
      el("td", {}, fmt.date(k.revoked_at || k.expires_at)),
      el("td", {}, k.status === "revoked" || k.status === "expired" ? "" : el("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Revoke ${k.prefix}…? It stops working at once.`)) return;
        try { await api("DELETE", `${path}/keys/${encodeURIComponent(k.id)}`); await showClient(id); } catch (e) { toast(e.message); }
      } }, "Revoke"))))));
  const rotate = el("div", { class: "row" }, grace, el("button", { type: "button", class: "secondary", testid: "rotate", onclick: async () => {
    try {
      const rotated = await api("POST", `${path}/keys`, { grace_period_seconds: Number(grace.value) });
      await showClient(id);
      app.prepend(shownOnce("New API key", rotated.api_key, "new-key"));
    } catch (e) { toast(e.message); }
  } }, "Rotate secret key"));
  const newPublishable = el("button", { type: "button", class: "secondary", testid: "new-publishable", onclick: async () => {
    try { await api("POST", `${path}/keys`, { kind: "publishable", grace_period_seconds: Number(grace.value) }); await showClient(id); } catch (e) { toast(e.message); }
  } }, "New publishable key");
  rotate.append(newPublishable);

  const byModel = Object.entries(metrics.generations_by_model);
  const events = el("table", { testid: "events" },
    el("thead", {}, el("tr", {}, ["When", "Model", "Status", "Duration", "Result"].map((h) => el("th", {}, h)))),
    el("tbody", {}, metrics.recent_events.length ? metrics.recent_events.map((g) => el("tr", { testid: "event" },
      el("td", {}, fmt.date(g.created_at), el("div", { class: "muted mono" }, g.id)),
      el("td", {}, g.model, g.job_id ? el("div", { class: "muted" }, "job") : null),
      el("td", {}, pill(g.status)),
      el("td", {}, fmt.ms(g.duration_ms)),
      el("td", {}, g.image_url ? el("a", { href: g.image_url, target: "_blank", rel: "noopener noreferrer" }, el("img", { class: "thumb", src: g.image_url, alt: "result", loading: "lazy" }))
        : el("span", { class: "error" }, g.error || "")))) : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No generations yet."))));

  render(
    revealed,
    el("p", {}, el("a", { href: "#/clients" }, "← Clients")),
    el("h1", { testid: "client-name" }, client.name),
    el("p", { class: "muted mono" }, client.id, client.email ? ` · ${client.email}` : ""),
    el("div", { class: "cards" },
      el("div", { class: "stat" }, el("div", { class: "label" }, "Total generations"), el("div", { class: "value", testid: "total" }, fmt.n(metrics.total_generations))),
      el("div", { class: "stat" }, el("div", { class: "label" }, "Errors"), el("div", { class: "value" }, fmt.n(metrics.error_count))),
      el("div", { class: "stat" }, el("div", { class: "label" }, "p50 / p95 (30 days)"), el("div", { class: "value", testid: "percentiles" }, `${fmt.ms(stats.duration_ms.p50)} / ${fmt.ms(stats.duration_ms.p95)}`)),
      el("div", { class: "stat" }, el("div", { class: "label" }, "Last generation"), el("div", { class: "value" }, fmt.date(metrics.last_generation_at)))),
    el("h2", {}, "Generations per day (30 days)"), chart(stats.daily, 30),
    el("p", {}, byModel.length ? byModel.map(([m, n]) => el("span", { class: "pill" }, `${m}: ${fmt.n(n)}`)) : ""),
    el("h2", {}, "Recent events"), events,
    el("h2", {}, "Deliveries"), callbackHealth(client, id), deliveriesTable(deliveries, id),
    el("h2", {}, "Settings"), edit,
    el("h2", {}, "API keys"), keys, rotate,
    el("h2", {}, "Widget"), widgetSection(client, shoppers),
    el("h2", {}, "Danger zone"), remove);
}

// ---------- the widget: embed snippet, shoppers ----------

// The tag a shop pastes into its pages, with the client's live publishable key.
function widgetSection(client, shoppers) {
  const live = client.keys.find((k) => k.kind === "publishable" && (k.status === "active" || k.status === "expiring"));
  const parts = [];
  if (!live) {
    parts.push(el("p", { class: "muted", testid: "no-publishable" }, "No publishable key yet: create one above to embed the widget."));
  } else {
    const snippet = `<script src="${location.origin}/widget.js" data-key="${live.key}" defer></script>\n` +
      `<button data-tryon-garment="https://your-shop.example/images/shirt.jpg">Try it on</button>`;
    const code = el("pre", { class: "mono snippet", testid: "embed-snippet" }, snippet);
    parts.push(el("p", {}, "Paste into the shop's pages (allowed origins: ", client.allowed_origins.length ? client.allowed_origins.join(", ") : "none — add one, or the widget is refused", ")."),
      code, el("button", { type: "button", class: "secondary", testid: "copy-snippet", onclick: async () => {
        try { await navigator.clipboard.writeText(snippet); toast("Copied"); } catch (e) { toast("Copy failed: select the text"); }
      } }, "Copy snippet"));
  }
  parts.push(el("p", { testid: "shopper-count" }, `${fmt.n(shoppers.shoppers)} shoppers, ${fmt.n(shoppers.generations)} generations in the last ${shoppers.days} days.`));
  if (shoppers.busiest.length) {
    parts.push(el("table", { testid: "shoppers" },
      el("thead", {}, el("tr", {}, ["Shopper", "Generations", "Successful", "Last"].map((h) => el("th", {}, h)))),
      el("tbody", {}, shoppers.busiest.map((s) => el("tr", {},
        el("td", { class: "mono" }, s.shopper_id), el("td", {}, fmt.n(s.generations)), el("td", {}, fmt.n(s.successful)), el("td", {}, fmt.date(s.last_generation_at)))))));
  }
  return el("div", { class: "card" }, ...parts);
}

// ---------- deliveries (callbacks and metrics forwarding) ----------

const CALLBACK_EVENTS = ["job.completed", "job.failed", "generation.completed"];

// Paused callbacks are said loudly, with the way out; a failing endpoint quietly.
function callbackHealth(client, id) {
  if (client.callbacks_paused_at) {
    return el("div", { class: "warn", role: "status", testid: "callbacks-paused" },
      el("strong", {}, "Callbacks are paused. "),
      `The endpoint kept failing from ${fmt.date(client.callbacks_failing_since)}; paused ${fmt.date(client.callbacks_paused_at)}. `,
      "Events are logged as paused and not sent until you resume; then redeliver the ones that matter.",
      el("button", { type: "button", testid: "resume-callbacks", onclick: async () => {
        try { await api("POST", `/admin/clients/${encodeURIComponent(id)}/callbacks/resume`); toast("Callbacks resumed"); await showClient(id); }
        catch (e) { toast(e.message); }
      } }, "Resume callbacks"));
  }
  if (client.callbacks_failing_since) {
    return el("p", { class: "muted", testid: "callbacks-failing" }, `Callbacks failing since ${fmt.date(client.callbacks_failing_since)}; they pause after a day without a success.`);
  }
  return null;
}

function outcome(d) {
  const detail = d.last_error || (d.last_status_code ? `HTTP ${d.last_status_code}` : "");
  const next = d.next_attempt_at ? ` · next attempt ${fmt.date(d.next_attempt_at)}` : "";
  return el("div", {}, pill(d.status), el("div", { class: "muted" }, `${d.attempt_count} attempt${d.attempt_count === 1 ? "" : "s"}${detail ? ` · ${detail}` : ""}${next}`));
}

function attemptsList(d) {
  if (!d.attempts.length) return null;
  return el("details", {}, el("summary", {}, "Attempts"),
    el("ol", { class: "attempts" }, d.attempts.map((a) => el("li", { value: a.attempt },
      `${fmt.date(a.attempted_at)} · ${a.status_code ? `HTTP ${a.status_code}` : a.error} · ${fmt.ms(a.latency_ms)}`,
      a.run > 1 ? ` · redelivery ${a.run - 1}` : "",
      a.next_attempt_at ? ` · next ${fmt.date(a.next_attempt_at)}` : ""))));
}

function deliveriesTable(page, id) {
  const rows = page.data.map((d) => el("tr", { testid: "delivery" },
    el("td", {}, fmt.date(d.created_at), el("div", { class: "muted mono" }, d.id)),
    el("td", {}, d.event_type, el("div", { class: "muted mono" }, d.webhook_id)),
    el("td", {}, d.destination, el("div", { class: "muted mono target" }, d.target || "")),
    el("td", {}, outcome(d), attemptsList(d)),
    el("td", {}, el("button", { type: "button", class: "secondary", testid: "redeliver", onclick: async (event) => {
      event.target.disabled = true;
      try { await api("POST", `/admin/deliveries/${encodeURIComponent(d.id)}/redeliver`); toast("Redelivery queued"); await showClient(id); }
      catch (e) { toast(e.message); event.target.disabled = false; }
    } }, "Redeliver"))));
  return el("table", { testid: "deliveries" },
    el("thead", {}, el("tr", {}, ["When", "Event", "Receiver", "Outcome", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No deliveries yet."))));
}

// ---------- routing ----------

async function route() {
  const hash = location.hash || "#/";
  try {
    await api("GET", "/admin/session");
  } catch (e) {
    if (e.status === 401) return showLogin();
    return render(failure(e));
  }
  nav.hidden = false;
  try {
    const client = hash.match(/^#\/clients\/([^/]+)$/);
    if (client) await showClient(decodeURIComponent(client[1]));
    else if (hash.startsWith("#/clients")) await showClients();
    else await showOverview();
  } catch (e) {
    if (e.status !== 401) render(failure(e));
  }
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/admin/logout"); } finally { showLogin(); }
});
window.addEventListener("hashchange", route);
route();
