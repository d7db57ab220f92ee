// The security console: fetch one period's summary with the caller's JWT, then draw it.
// Every piece of data goes in with textContent (never innerHTML): purposes are free text.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
let data = null;

function el(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function setStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function fillTable(id, rows, columns) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  for (const row of rows) {
    const tr = el("tr");
    for (const column of columns) tr.append(el("td", row[column] ?? ""));
    // Every row says whether the chains vouch for it: a record at or after a break is shown
    // as what it is, a claim the trail no longer proves.
    const mark = el("td", row.verified ? "verified" : "UNVERIFIED");
    mark.className = row.verified ? "row-verified" : "row-unverified";
    tr.append(mark);
    if (!row.verified) tr.classList.add("unverified");
    body.append(tr);
  }
}

function drawIntegrity(integrity) {
  const banner = document.getElementById("integrity");
  banner.textContent = `Integrity: ${integrity.headline}`;
  banner.className = integrity.ok ? "integrity-ok" : "integrity-broken";
}

function drawChart(series) {
  const width = 720, height = 220, pad = 32;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  const max = Math.max(1, ...series.map((b) => Math.max(b.redactions, b.reveals)));
  const x = (i) => pad + (series.length < 2 ? 0 : (i * (width - 2 * pad)) / (series.length - 1));
  const y = (v) => height - pad - (v * (height - 2 * pad)) / max;
  for (const [x1, y1, x2, y2] of [[pad, pad, pad, height - pad], [pad, height - pad, width - pad, height - pad]]) {
    const axis = document.createElementNS(SVG, "line");
    Object.entries({ x1, y1, x2, y2 }).forEach(([k, v]) => axis.setAttribute(k, v));
    axis.setAttribute("class", "axis");
    svg.append(axis);
  }
  for (const [label, value] of [[String(max), y(max)], ["0", y(0)]]) {
    const tick = document.createElementNS(SVG, "text");
    tick.setAttribute("x", 2);
    tick.setAttribute("y", value + 4);
    tick.setAttribute("class", "tick");
    tick.textContent = label;
    svg.append(tick);
  }
  for (const [name, at] of [[series[0]?.at, 0], [series[series.length - 1]?.at, series.length - 1]]) {
    if (name === undefined) continue;
    const tick = document.createElementNS(SVG, "text");
    tick.setAttribute("x", Math.min(x(at), width - 90));
    tick.setAttribute("y", height - 10);
    tick.setAttribute("class", "tick");
    tick.textContent = name;
    svg.append(tick);
  }
  for (const key of ["redactions", "reveals"]) {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", `series-${key}`);
    line.setAttribute("points", series.map((b, i) => `${x(i).toFixed(1)},${y(b[key]).toFixed(1)}`).join(" "));
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${key}: ${series.reduce((n, b) => n + b[key], 0)}`;
    line.append(title);
    svg.append(line);
  }
  document.getElementById("chart").replaceChildren(svg);
}

function applyFilters() {
  if (!data) return;
  const subject = document.getElementById("filter-subject").value.trim().toLowerCase();
  const purpose = document.getElementById("filter-purpose").value.trim().toLowerCase();
  const level = document.getElementById("filter-level").value;
  const rows = data.reveals.filter((r) =>
    (!subject || String(r.subject ?? "").toLowerCase().includes(subject)) &&
    (!purpose || String(r.purpose ?? "").toLowerCase().includes(purpose)) &&
    (!level || r.level === level));
  fillTable("reveals", rows, ["time", "subject", "token", "level", "purpose", "event"]);
  document.getElementById("reveal-count").textContent = `(${rows.length} of ${data.reveals.length})`;
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
  const state = document.getElementById("trail-state");
  state.textContent = ok ? "Every chain verifies." : `The trail does not verify. ${problems.join("; ")}`;
  state.className = ok ? "chain-ok" : "chain-broken";
}

async function load(event) {
  event.preventDefault();
  const token = document.getElementById("token").value.trim();
  const days = Number(document.getElementById("range").value);
  const until = new Date();
  const since = new Date(until.getTime() - days * 86400000);
  const query = new URLSearchParams({ since: since.toISOString(), until: until.toISOString() });
  setStatus("Loading…", false);
  let response;
  try {
    response = await fetch(`api/summary?${query}`, { headers: { Authorization: `Bearer ${token}` } });
  } catch (err) {
    setStatus("The server did not answer.", true);
    return;
  }
  if (response.status === 401) {
    document.getElementById("console").hidden = true;
    setStatus("Refused: the token is not valid.", true);
    return;
  }
  if (response.status === 403) {
    document.getElementById("console").hidden = true;
    setStatus("Refused: this token does not carry the security role.", true);
    return;
  }
  if (!response.ok) {
    setStatus(`The server answered ${response.status}.`, true);
    return;
  }
  data = await response.json();
  document.getElementById("console").hidden = false;
  drawIntegrity(data.integrity);
  drawChart(data.series);
  applyFilters();
  fillTable("denied", data.denied, ["time", "subject", "token", "reason", "event"]);
  drawChains(data.chains, data.trail_ok, data.trail_problems);
  setStatus(`Tenant ${data.tenant}, ${data.since} to ${data.until} (per ${data.bucket}).`, false);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login").addEventListener("submit", load);
  for (const id of ["filter-subject", "filter-purpose", "filter-level"]) {
    document.getElementById(id).addEventListener("input", applyFilters);
  }
});
