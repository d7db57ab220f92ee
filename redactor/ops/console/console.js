// The security console: one period's summary, then pages of each panel, with the caller's JWT.
// Every piece of data goes in with textContent (never innerHTML): purposes are free text.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PANELS = [
  ["alerts", "Alerts"],
  ["reveals", "Reveals"],
  ["denials", "Denied attempts"],
  ["auth_failures", "Agent authentication failures"],
  ["webhooks", "Refused webhooks (signature and limits)"],
  ["commands", "Key and vault commands"],
];
const PAGE = 50;
const state = { token: "", since: "", until: "", tz: "UTC", filters: {}, panels: {} };

function el(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function setStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function params(extra) {
  const query = new URLSearchParams({ since: state.since, until: state.until, tz: state.tz });
  for (const [k, v] of Object.entries(state.filters)) if (v) query.set(k, v);
  for (const [k, v] of Object.entries(extra || {})) query.set(k, v);
  return query;
}

async function api(path, extra) {
  let response;
  try {
    response = await fetch(`${path}?${params(extra)}`, { headers: { Authorization: `Bearer ${state.token}` } });
  } catch (err) {
    setStatus("The server did not answer.", true);
    return null;
  }
  if (response.status === 401 || response.status === 403) {
    document.getElementById("console").hidden = true;
    setStatus(response.status === 401 ? "Refused: the token is not valid." : "Refused: this token does not carry the security role.", true);
    return null;
  }
  if (!response.ok) {
    let why = "";
    try { why = (await response.json()).message || ""; } catch (err) { why = ""; }
    setStatus(`The server answered ${response.status}. ${why}`, true);
    return null;
  }
  return response;
}

function drawIntegrity(integrity) {
  const banner = document.getElementById("integrity");
  banner.textContent = `Integrity: ${integrity.headline}`;
  banner.className = integrity.ok ? "integrity-ok" : "integrity-broken";
}

function niceStep(max, ticks) {
  const raw = Math.max(1, max) / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return Math.max(1, m * power);
  return 10 * power;
}

function drawChart(series, bucket) {
  const width = 900, height = 270, left = 64, right = 56, top = 26, bottom = 48;
  const plotW = width - left - right, plotH = height - top - bottom;
  const box = svg("svg", { width, height, role: "img", class: "chart" });
  const axes = [["redactions", left, "start"], ["reveals", width - right, "end"]];
  const scales = {};
  for (const [key] of axes) {
    const max = Math.max(1, ...series.map((b) => b[key]));
    const step = niceStep(max, 4);
    scales[key] = { top: Math.ceil(max / step) * step, step };
  }
  const x = (i) => left + (series.length < 2 ? plotW / 2 : (i * plotW) / (series.length - 1));
  const y = (key, v) => top + plotH - (v * plotH) / scales[key].top;
  // Grid and the left (redactions) and right (reveals) axes, each with its own ticks.
  for (let v = 0; v <= scales.redactions.top; v += scales.redactions.step) {
    box.append(svg("line", { x1: left, x2: width - right, y1: y("redactions", v), y2: y("redactions", v), class: "grid" }));
    box.append(svg("text", { x: left - 6, y: y("redactions", v) + 4, "text-anchor": "end", class: "tick tick-y" }, v.toLocaleString()));
  }
  for (let v = 0; v <= scales.reveals.top; v += scales.reveals.step) {
    box.append(svg("text", { x: width - right + 6, y: y("reveals", v) + 4, class: "tick tick-y2" }, v.toLocaleString()));
  }
  box.append(svg("line", { x1: left, y1: top, x2: left, y2: top + plotH, class: "axis" }));
  box.append(svg("line", { x1: width - right, y1: top, x2: width - right, y2: top + plotH, class: "axis" }));
  box.append(svg("line", { x1: left, y1: top + plotH, x2: width - right, y2: top + plotH, class: "axis" }));
  // At most ~10 time labels, evenly spaced, in the viewer's zone.
  const every = Math.max(1, Math.ceil(series.length / 10));
  series.forEach((b, i) => {
    if (i % every !== 0 && i !== series.length - 1) return;
    if (i === series.length - 1 && i % every !== 0 && (i % every) < every / 2) return;
    const label = bucket === "hour" ? (b.at.endsWith("00:00") ? b.at.slice(5, 10) : b.at.slice(11, 16)) : b.at.slice(5);
    box.append(svg("line", { x1: x(i), x2: x(i), y1: top + plotH, y2: top + plotH + 4, class: "axis" }));
    box.append(svg("text", { x: x(i), y: top + plotH + 18, "text-anchor": "middle", class: "tick tick-x" }, label));
  });
  box.append(svg("text", { x: left, y: top - 4, "text-anchor": "start", class: "axis-title title-redactions" }, "values redacted"));
  box.append(svg("text", { x: width - right, y: top - 4, "text-anchor": "end", class: "axis-title title-reveals" }, "reveals"));
  box.append(svg("text", { x: left + plotW / 2, y: height - 6, "text-anchor": "middle", class: "axis-title" },
    `${bucket === "hour" ? "hour" : "day"} (${state.tz})`));
  for (const [key] of axes) {
    const line = svg("polyline", {
      class: `series-${key}`,
      points: series.map((b, i) => `${x(i).toFixed(1)},${y(key, b[key]).toFixed(1)}`).join(" "),
    });
    line.append(svg("title", {}, `${key}: ${series.reduce((n, b) => n + b[key], 0)}`));
    box.append(line);
  }
  document.getElementById("chart").replaceChildren(box);
}

function panelSection(name, title) {
  const section = el("section");
  section.id = `panel-${name}`;
  const h2 = el("h2", `${title} `);
  const count = el("span");
  count.className = "count";
  h2.append(count);
  const tools = el("div");
  tools.className = "tools";
  for (const fmt of ["csv", "json"]) {
    const button = el("button", `Export ${fmt.toUpperCase()}`);
    button.type = "button";
    button.className = `export-${fmt}`;
    button.addEventListener("click", () => exportPanel(name, fmt));
    tools.append(button);
  }
  const table = el("table");
  table.id = name;
  table.append(el("thead"), el("tbody"));
  const pager = el("div");
  pager.className = "pager";
  const prev = el("button", "‹ previous");
  prev.type = "button";
  prev.className = "prev";
  prev.addEventListener("click", () => page(name, -1));
  const where = el("span");
  where.className = "where";
  const next = el("button", "next ›");
  next.type = "button";
  next.className = "next";
  next.addEventListener("click", () => page(name, 1));
  pager.append(prev, where, next);
  section.append(h2, tools, table, pager);
  return section;
}

function fillPanel(name, data) {
  const view = state.panels[name];
  view.total = data.total;
  const table = document.getElementById(name);
  const head = el("tr");
  for (const column of data.columns) {
    const th = el("th", column === "time" ? `time (${state.tz})` : column.replace("_", " "));
    if (name !== "alerts") {
      th.className = "sortable";
      th.dataset.column = column;
      if (view.sort === column) th.textContent += view.order === "desc" ? " ▼" : " ▲";
      th.addEventListener("click", () => sortBy(name, column));
    }
    head.append(th);
  }
  if (name !== "alerts") head.append(el("th", "integrity"));
  table.tHead.replaceChildren(head);
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const row of data.rows) {
    const tr = el("tr");
    for (const column of data.columns) tr.append(el("td", row[column] ?? ""));
    if (name !== "alerts") {
      // Every row says whether the chains vouch for it: a record at or after a break is
      // shown as what it is, a claim the trail no longer proves.
      const mark = el("td", row.verified ? "verified" : "UNVERIFIED");
      mark.className = row.verified ? "row-verified" : "row-unverified";
      tr.append(mark);
      if (!row.verified) tr.classList.add("unverified");
    }
    body.append(tr);
  }
  const first = data.total ? data.offset + 1 : 0;
  const last = data.offset + data.rows.length;
  document.querySelector(`#panel-${name} .count`).textContent = `(${data.total.toLocaleString()} in the period)`;
  document.querySelector(`#panel-${name} .where`).textContent = `rows ${first}–${last} of ${data.total.toLocaleString()}`;
  document.querySelector(`#panel-${name} .prev`).disabled = data.offset <= 0;
  document.querySelector(`#panel-${name} .next`).disabled = last >= data.total;
}

async function loadPanel(name) {
  const view = state.panels[name];
  const response = await api(`api/panel/${name}`, { offset: view.offset, limit: PAGE, sort: view.sort, order: view.order });
  if (!response) return;
  const data = await response.json();
  drawIntegrity(data.integrity);
  fillPanel(name, data);
}

function page(name, direction) {
  const view = state.panels[name];
  view.offset = Math.max(0, view.offset + direction * PAGE);
  loadPanel(name);
}

function sortBy(name, column) {
  const view = state.panels[name];
  view.order = view.sort === column && view.order === "desc" ? "asc" : "desc";
  view.sort = column;
  view.offset = 0;
  loadPanel(name);
}

async function exportPanel(name, fmt) {
  const view = state.panels[name];
  const response = await api(`api/panel/${name}`, { format: fmt, sort: view.sort, order: view.order });
  if (!response) return;
  const blob = await response.blob();
  const link = el("a");
  link.href = URL.createObjectURL(blob);
  link.download = `redactor-${name}.${fmt}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function drawChains(chains, ok, problems) {
  const body = document.querySelector("#chains tbody");
  body.replaceChildren();
  for (const chain of chains) {
    const tr = el("tr");
    tr.append(el("td", chain.chain), el("td", chain.records));
    const broken = chain.broken;
    const status = el("td", broken ? `BROKEN at seq ${broken.seq}: ${broken.kind}` : (chain.closed ? "verified, closed" : "verified, open"));
    status.className = broken ? "chain-broken" : "chain-ok";
    tr.append(status);
    tr.className = broken ? "chain-broken" : "chain-ok";
    body.append(tr);
  }
  const trail = document.getElementById("trail-state");
  trail.textContent = ok ? "Every chain verifies." : `The trail does not verify. ${problems.join("; ")}`;
  trail.className = ok ? "chain-ok" : "chain-broken";
}

async function loadSummary() {
  setStatus("Loading…", false);
  const response = await api("api/summary");
  if (!response) return;
  const data = await response.json();
  document.getElementById("console").hidden = false;
  drawIntegrity(data.integrity);
  drawChart(data.series, data.bucket);
  const totals = data.totals;
  document.getElementById("totals").textContent =
    `${totals.reveals.toLocaleString()} reveals, ${totals.denials.toLocaleString()} denials, ` +
    `${totals.alerts.toLocaleString()} alerts, ${data.unverified.toLocaleString()} unverified records in the period.`;
  for (const [name] of PANELS) {
    const view = state.panels[name];
    view.offset = 0;
    view.sort = "time";
    view.order = "desc";
    fillPanel(name, data.panels[name]);
  }
  drawChains(data.chains, data.trail_ok, data.trail_problems);
  setStatus(`Tenant ${data.tenant}, ${data.since} to ${data.until} (${data.zone}, per ${data.bucket}).`, false);
}

function login(event) {
  event.preventDefault();
  state.token = document.getElementById("token").value.trim();
  const days = Number(document.getElementById("range").value);
  const until = new Date();
  state.until = until.toISOString();
  state.since = new Date(until.getTime() - days * 86400000).toISOString();
  loadSummary();
}

let filterTimer = null;
function filtersChanged() {
  state.filters = {};
  for (const input of document.querySelectorAll("[data-filter]")) state.filters[input.dataset.filter] = input.value.trim();
  clearTimeout(filterTimer);
  filterTimer = setTimeout(loadSummary, 250);
}

document.addEventListener("DOMContentLoaded", () => {
  try {
    state.tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch (err) {
    state.tz = "UTC";
  }
  const holder = document.getElementById("panels");
  for (const [name, title] of PANELS) {
    state.panels[name] = { offset: 0, sort: "time", order: "desc", total: 0 };
    holder.append(panelSection(name, title));
  }
  document.getElementById("login").addEventListener("submit", login);
  document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
  for (const input of document.querySelectorAll("[data-filter]")) input.addEventListener("input", filtersChanged);
});
