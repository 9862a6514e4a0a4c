// The opendrs dashboard: polls the v1 API once a second and redraws each panel.
// A failing request leaves the last good data on screen (dimmed), shows a banner
// naming what failed, and polling carries on.
"use strict";

const POLL_MS = 1000;
const REQUEST_TIMEOUT_MS = 5000;
const HOT_PERCENT = 80;
const PLAN_LIMIT = 8;
const HISTORY_LIMIT = 12;
// Timestamps below this are seconds since a simulation started, not dates.
const EPOCH_THRESHOLD = 1e8;

const SOURCES = {
  status: "v1/status",
  hosts: "v1/hosts",
  alarms: "v1/alarms",
  history: `v1/alarms/history?limit=${HISTORY_LIMIT}`,
  plans: `v1/action_plans?limit=${PLAN_LIMIT}`,
};

// element: what is dimmed when its data is stale; content: what a first failure replaces.
const PANELS = {
  status: { render: renderStatus, element: "status", content: "status" },
  hosts: { render: renderHosts, element: "hosts-section", content: "hosts" },
  alarms: { render: renderAlarms, element: "alarms-section", content: "alarms" },
  history: { render: renderHistory, element: "history-section", content: "alarm-history" },
  plans: { render: renderPlans, element: "plans-section", content: "plans" },
};
const rendered = new Set();

// --- small DOM helpers (text only, never HTML strings) ----------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function byId(id) {
  return document.getElementById(id);
}

function badge(state) {
  const value = String(state);
  return el("span", { class: `badge state-${value.toLowerCase()}` }, value.replace("_", " "));
}

function empty(text) {
  return el("p", { class: "empty" }, text);
}

// --- formatting ---------------------------------------------------------------

function pad(n) {
  return String(n).padStart(2, "0");
}

function formatTime(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return "—";
  const t = Number(seconds);
  if (t >= EPOCH_THRESHOLD) {
    const iso = new Date(t * 1000).toISOString();
    return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
  }
  const whole = Math.floor(t);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  return `t+${h}:${pad(m)}:${pad(whole % 60)}`;
}

function formatNumber(value) {
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

function formatPercent(value) {
  return value === null || value === undefined ? "n/a" : `${Math.round(value)}%`;
}

// Generated ids are 32 hex digits: 8 are enough to tell plans apart on one screen.
function shortId(id) {
  const text = String(id || "");
  return text.length > 12 ? text.slice(0, 8) : text;
}

// "counters.actions_failed" is labelled "actions failed" (the full key is in data-key).
function humanKey(key) {
  return key.split(".").pop().replace(/_/g, " ");
}

function isTimeKey(key) {
  return /(^|_)(time|now)$/.test(key) || key.endsWith("_at");
}

// --- panels -------------------------------------------------------------------

function statusEntries(data, prefix) {
  const entries = [];
  for (const [key, value] of Object.entries(data || {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === "object" && !Array.isArray(value)) {
      entries.push(...statusEntries(value, name));
    } else if (typeof value === "number" && isTimeKey(key)) {
      entries.push([name, formatTime(value), "time"]);
    } else {
      entries.push([name, Array.isArray(value) ? value.join(", ") : formatNumber(value), ""]);
    }
  }
  return entries;
}

function renderStatus(data) {
  const entries = statusEntries(data, "");
  const items = entries.map(([name, value, kind]) =>
    el("div", { class: `stat ${kind}`, "data-key": name }, el("dt", {}, humanKey(name)), el("dd", {}, value)),
  );
  byId("status").replaceChildren(...(items.length ? items : [el("div", { class: "stat" }, el("dd", {}, "no status reported"))]));
}

function meter(label, percent) {
  const known = percent !== null && percent !== undefined;
  const width = known ? Math.max(0, Math.min(100, percent)) : 0;
  const hot = known && percent >= HOT_PERCENT;
  return el(
    "div",
    { class: `meter${hot ? " hot" : ""}${known ? "" : " unknown"}`, "data-meter": label.toLowerCase() },
    el("span", { class: "meter-label" }, label),
    el("span", { class: "bar" }, el("span", { class: "fill", style: `width:${width.toFixed(1)}%` })),
    el("span", { class: "meter-value" }, formatPercent(percent)),
  );
}

function renderHosts(hosts) {
  const byState = {};
  for (const h of hosts) byState[h.state] = (byState[h.state] || 0) + 1;
  const hot = hosts.filter((h) => (h.cpu_percent ?? 0) >= HOT_PERCENT || (h.ram_percent ?? 0) >= HOT_PERCENT).length;
  const parts = Object.entries(byState).map(([s, n]) => `${n} ${s}`);
  if (hot) parts.push(`${hot} hot`);
  byId("hosts-summary").textContent = hosts.length ? `${hosts.length} · ${parts.join(" · ")}` : "";

  // Natural order, so hostname_2 comes before hostname_10.
  const ordered = [...hosts].sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
  const cards = ordered.map((h) =>
    el(
      "article",
      {
        class: `host host-${h.state}${h.name === graphs.host ? " selected" : ""}`,
        "data-host": h.name,
        title: "click for its history",
      },
      el("header", {}, el("span", { class: "host-name", title: h.name }, h.name), badge(h.state)),
      h.disabled_reason ? el("p", { class: "reason" }, h.disabled_reason) : null,
      meter("CPU", h.cpu_percent),
      meter("RAM", h.ram_percent),
      el(
        "footer",
        {},
        el("span", {}, `${h.running_vms} VM${h.running_vms === 1 ? "" : "s"}`),
        // Allocatable vCPUs, as Nova counts them: (cores − reserved) × allocation ratio.
        el(
          "span",
          { title: `${h.vcpus} cores × ${h.cpu_allocation_ratio} allocation ratio` },
          `${h.vcpus_used}/${Math.floor((h.vcpus - h.reserved_host_cpus) * h.cpu_allocation_ratio)} vCPU`,
        ),
        el("span", {}, `${formatNumber(Math.round(h.memory_mb / 1024))} GB RAM`),
      ),
    ),
  );
  byId("hosts").replaceChildren(...(cards.length ? cards : [empty("No hosts known yet.")]));
  if (!graphs.host && ordered.length) showGraphs(ordered[0].name, graphs.period);
  else if (graphs.host && Date.now() - graphs.drawn > GRAPH_REFRESH_MS) showGraphs(graphs.host, graphs.period);
}

// History graphs of the selected host, drawn by GET /v1/graphs (round-robin archives).
const GRAPH_REFRESH_MS = 30000;
const GRAPHS = [
  { title: "Host CPU", meter: "compute.node.cpu.percent" },
  { title: "Instances' CPU", meter: "cpu_util" },
  { title: "Host free memory", meter: "memory.free" },
];
const graphs = { host: "", period: "day", drawn: 0 };

function showGraphs(host, period) {
  graphs.host = host;
  graphs.period = period;
  graphs.drawn = Date.now();
  byId("graphs-host").textContent = host;
  for (const button of document.querySelectorAll(".periods button")) {
    button.classList.toggle("active", button.dataset.period === period);
  }
  for (const card of document.querySelectorAll(".host")) {
    card.classList.toggle("selected", card.dataset.host === host);
  }
  const figures = GRAPHS.map((g) => {
    const query = new URLSearchParams({ meter: g.meter, period, width: "560", height: "220", t: String(graphs.drawn) });
    const img = el("img", {
      src: `v1/graphs/hosts/${encodeURIComponent(host)}?${query}`,
      alt: `${g.title} of ${host}, last ${period}`,
      loading: "lazy",
    });
    img.addEventListener("error", () => img.replaceWith(el("p", { class: "empty" }, `${g.title}: no history yet.`)));
    return el("figure", {}, img, el("figcaption", {}, g.title));
  });
  byId("graphs").replaceChildren(...figures);
}

document.addEventListener("click", (event) => {
  const card = event.target.closest(".host");
  if (card) showGraphs(card.dataset.host, graphs.period);
  const button = event.target.closest(".periods button");
  if (button && graphs.host) showGraphs(graphs.host, button.dataset.period);
});

function table(headers, rows, attrs) {
  return el(
    "table",
    attrs || {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows),
  );
}

function renderAlarms(alarms) {
  const firing = alarms.filter((a) => a.state === "alarm").length;
  byId("alarms-summary").textContent = alarms.length ? `${firing} firing · ${alarms.length - firing} other` : "";
  const rows = alarms.map((a) =>
    el(
      "tr",
      { class: `alarm severity-${a.severity}`, "data-alarm": a.key },
      el("td", {}, badge(a.state)),
      el("td", {}, el("span", { class: "rule" }, a.rule), el("span", { class: "entity" }, a.entity)),
      el("td", { class: `severity sev-${a.severity}` }, a.severity),
      el("td", { class: "num" }, a.value === null ? "—" : formatNumber(a.value)),
      el("td", { class: "time" }, formatTime(a.since)),
    ),
  );
  byId("alarms").replaceChildren(
    rows.length
      ? table(["state", "rule / entity", "severity", "value", "since"], rows, { class: "grid alarms" })
      : empty("No alarms firing. All quiet."),
  );
}

function renderHistory(transitions) {
  const rows = transitions.map((t) =>
    el(
      "tr",
      { "data-transition": `${t.rule}/${t.entity}` },
      el("td", { class: "time" }, formatTime(t.time)),
      el("td", {}, el("span", { class: "rule" }, t.rule), el("span", { class: "entity" }, t.entity)),
      el("td", { class: "move" }, badge(t.previous), el("span", { class: "arrow" }, "→"), badge(t.current)),
      el("td", { class: "reason" }, t.reason || (t.value === null ? "" : `value ${formatNumber(t.value)}`)),
    ),
  );
  byId("alarm-history").replaceChildren(
    rows.length ? table(["time", "rule / entity", "change", "why"], rows, { class: "grid history" }) : empty("No alarm has changed state yet."),
  );
}

function describeAction(action) {
  const p = action.parameters || {};
  if (action.type === "migrate") {
    const how = p.live === false ? "cold migrate" : "migrate";
    return [how, el("b", {}, String(p.instance ?? "?")), `${p.source ?? "?"} → ${p.destination ?? "?"}`];
  }
  if (action.type === "change_node_state") {
    return ["set", el("b", {}, String(p.host ?? p.node ?? "?")), `to ${p.state ?? "?"}`];
  }
  if (action.type === "power") {
    return ["power", el("b", {}, String(p.host ?? p.node ?? "?")), String(p.state ?? p.action ?? "")];
  }
  const rest = Object.entries(p).map(([k, v]) => `${k}=${v}`).join(" ");
  return [action.type, rest];
}

function renderAction(action, index, numbers) {
  const after = action.parents.map((id) => (numbers.has(id) ? `#${numbers.get(id)}` : shortId(id)));
  const detail = [action.message, action.explanation].filter(Boolean);
  return el(
    "li",
    { class: `action action-${action.state.toLowerCase()}`, "data-action": action.id, "data-type": action.type },
    el("span", { class: "step" }, `#${index + 1}`),
    el(
      "div",
      { class: "action-body" },
      el("div", { class: "action-what" }, describeAction(action).map((part, i) => [i ? " " : "", part])),
      after.length ? el("div", { class: "after" }, `after ${after.join(", ")}`) : null,
      // Explanations can run long (every rejected host and why): three lines
      // on the page, the whole text on hover.
      detail.length
        ? el("div", { class: "explanation", title: detail.join(" — ") }, detail.join(" — "))
        : null,
    ),
    badge(action.state),
  );
}

function renderPlan(plan) {
  const numbers = new Map(plan.actions.map((a, i) => [a.id, i + 1]));
  const done = plan.actions.filter((a) => a.state === "SUCCEEDED").length;
  const total = plan.actions.length;
  const efficacy = Object.entries(plan.efficacy || {}).map(([k, v]) =>
    el("span", { class: "indicator" }, `${humanKey(k)} ${formatNumber(v)}`),
  );
  return el(
    "article",
    { class: `plan plan-${plan.state.toLowerCase()}`, "data-plan": plan.id },
    el(
      "header",
      {},
      badge(plan.state),
      el("span", { class: "plan-id", title: plan.id }, `plan ${shortId(plan.id)}`),
      el("span", { class: "plan-meta" }, `audit ${shortId(plan.audit_id)} · ${formatTime(plan.created_at)}`),
      el("span", { class: "progress", title: `${done} of ${total} actions succeeded` },
        el("span", { class: "bar" }, el("span", { class: "fill", style: `width:${total ? (100 * done) / total : 0}%` })),
        `${done}/${total}`),
    ),
    plan.message ? el("p", { class: "plan-message" }, plan.message) : null,
    efficacy.length ? el("div", { class: "efficacy" }, efficacy) : null,
    total ? el("ol", { class: "actions" }, plan.actions.map((a, i) => renderAction(a, i, numbers))) : empty("This plan has no actions."),
  );
}

function renderPlans(plans) {
  const ordered = [...plans].sort((a, b) => b.created_at - a.created_at);
  byId("plans").replaceChildren(...(ordered.length ? ordered.map(renderPlan) : [empty("No action plans yet.")]));
}

// --- polling ------------------------------------------------------------------

async function getJSON(path) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(path, { signal: controller.signal, headers: { Accept: "application/json" } });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const message = body && body.error ? body.error.message : response.statusText;
      throw new Error(`${path}: HTTP ${response.status} ${message}`);
    }
    return body;
  } catch (err) {
    if (err.name === "AbortError") throw new Error(`${path}: no answer within ${REQUEST_TIMEOUT_MS / 1000}s`);
    if (err instanceof TypeError) throw new Error(`${path}: API unreachable (${err.message})`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function showProblems(problems) {
  const banner = byId("banner");
  const live = byId("live");
  if (problems.length) {
    banner.replaceChildren(
      el("strong", {}, "The API is not answering properly; showing the last data received. Retrying every second."),
      el("ul", {}, problems.map((p) => el("li", {}, p))),
    );
    banner.hidden = false;
    live.classList.add("down");
    byId("live-text").textContent = "API error";
  } else {
    banner.hidden = true;
    banner.replaceChildren();
    live.classList.remove("down");
    byId("live-text").textContent = `live · ${new Date().toLocaleTimeString("en-GB")}`;
  }
}

async function poll() {
  const names = Object.keys(SOURCES);
  const results = await Promise.allSettled(names.map((name) => getJSON(SOURCES[name])));
  const problems = [];
  results.forEach((result, i) => {
    const panel = PANELS[names[i]];
    const element = byId(panel.element);
    if (result.status === "fulfilled") {
      try {
        panel.render(result.value);
        rendered.add(names[i]);
        element.classList.remove("stale");
      } catch (err) {
        problems.push(`${names[i]}: cannot display (${err.message})`);
        element.classList.add("stale");
      }
    } else {
      problems.push(result.reason.message);
      element.classList.add("stale");
      if (!rendered.has(names[i])) {
        byId(panel.content).replaceChildren(el(panel.content === "status" ? "div" : "p", { class: "empty unavailable" }, "Not available yet."));
      }
    }
  });
  showProblems(problems);
  setTimeout(poll, POLL_MS);
}

document.addEventListener("DOMContentLoaded", poll);
