// The dashboard's pages: the runs list and a run. Plain JS, no build step.
// Data comes from /api/*; /api/watch sends an event whenever a run changes,
// and the page fetches again (debounced), so nothing reloads.
"use strict";

const ACTION_HEADER = { "x-cicd-dashboard": "1" };

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function getJson(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function seconds(from, to) {
  if (!from) return null;
  const end = to ? Date.parse(to) : Date.now();
  return Math.max(0, Math.round((end - Date.parse(from)) / 1000));
}

function shortDuration(s) {
  if (s === null || s === undefined) return "-";
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = s % 60;
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${m}m`;
  if (m) return `${m}m${sec}s`;
  return `${sec}s`;
}

function showError(error) {
  const box = document.getElementById("error");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

// Calls `refresh` after every change the watch reports (at most every 300 ms).
function live(namespace, refresh) {
  const indicator = document.getElementById("live");
  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(refresh, 300); };
  const source = new EventSource("/api/watch" + (namespace ? "?namespace=" + encodeURIComponent(namespace) : ""));
  source.addEventListener("change", soon);
  source.addEventListener("ready", () => { indicator.textContent = "live"; indicator.classList.add("on"); });
  source.addEventListener("problem", (e) => { indicator.textContent = "watch: " + e.data; indicator.classList.remove("on"); });
  source.onerror = () => { indicator.textContent = "reconnecting…"; indicator.classList.remove("on"); };
  return source;
}

// ---- runs list -------------------------------------------------------------

function listPage() {
  const fields = ["namespace", "status", "name"].map((f) => document.getElementById("f-" + f));
  const params = new URLSearchParams(location.search);
  fields.forEach((field) => { field.value = params.get(field.name) || ""; });
  let source = null;
  async function refresh() {
    const query = new URLSearchParams();
    fields.forEach((field) => { if (field.value) query.set(field.name, field.value); });
    history.replaceState(null, "", "/?" + query);
    try {
      const runs = await getJson("/api/runs?" + query);
      showError(null);
      const body = document.querySelector("#runs tbody");
      body.innerHTML = runs.map((run) => `
        <tr class="run" data-name="${esc(run.name)}" data-status="${esc(run.outcome)}">
          <td><a href="/run/${esc(run.namespace)}/${esc(run.kind)}/${esc(run.name)}">${esc(run.name)}</a></td>
          <td>${esc(run.namespace)}</td><td>${esc(run.kind)}</td>
          <td><span class="state s-${esc(run.outcome)}">${esc(run.outcome)}</span></td>
          <td>${esc(run.reason)}</td>
          <td>${shortDuration(seconds(run.created))}</td>
          <td>${shortDuration(seconds(run.started, run.completed))}</td>
        </tr>`).join("");
      document.getElementById("empty").hidden = runs.length > 0;
    } catch (error) { showError(error); }
  }
  function restart() {
    if (source) source.close();
    source = live(document.getElementById("f-namespace").value, refresh);
    refresh();
  }
  fields[0].addEventListener("change", restart);
  fields.slice(1).forEach((field) => field.addEventListener("input", refresh));
  restart();
}

// ---- one run ---------------------------------------------------------------

function drawGraph(graph) {
  const svg = document.getElementById("dag");
  svg.setAttribute("width", graph.width);
  const W = graph.node_width, H = graph.node_height;
  const at = Object.fromEntries(graph.nodes.map((n) => [n.name, n]));
  // An edge that skips a column would cross the nodes in between: it runs
  // in the gap under the lower of its two rows instead (nodes never sit in
  // a gap), so it cannot be mistaken for an edge of a node it passes.
  const LANE = 12;
  let height = graph.height;
  const edges = graph.edges.map((e) => {
    const a = at[e.from], b = at[e.to];
    if (!a || !b) return "";
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x - 6, y2 = b.y + H / 2;
    let d;
    if (b.column - a.column > 1) {
      const lane = Math.max(a.y, b.y) + H + LANE;
      height = Math.max(height, lane + LANE);
      d = `M${x1},${y1} C${x1 + 20},${y1} ${x1 + 20},${lane} ${x1 + 40},${lane} ` +
        `L${x2 - 40},${lane} C${x2 - 20},${lane} ${x2 - 20},${y2} ${x2},${y2}`;
    } else {
      const mid = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
    }
    return `<path class="edge ${e.kind}" data-from="${esc(e.from)}" data-to="${esc(e.to)}"
      d="${d}" marker-end="url(#arrow)"/>`;
  }).join("");
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${graph.width} ${height}`);
  const nodes = graph.nodes.map((n) => {
    const sub = n.reason && n.reason !== n.state ? `${n.state} · ${n.reason}` : n.state;
    const tags = [n.finally ? "finally" : "", n.conditional ? "when" : ""].filter(Boolean).join(" ");
    return `<g class="node s-${esc(n.state)}${n.finally ? " finally" : ""}" data-task="${esc(n.name)}"
        data-state="${esc(n.state)}" transform="translate(${n.x},${n.y})">
      <title>${esc(n.name)}: ${esc(sub)}</title>
      <rect width="${W}" height="${H}"></rect>
      <text x="10" y="19">${esc(n.name.length > 20 ? n.name.slice(0, 19) + "…" : n.name)}</text>
      <text class="sub" x="10" y="36">${esc(sub.length > 26 ? sub.slice(0, 25) + "…" : sub)}</text>
      ${tags ? `<text class="tag" x="${W - 8}" y="14" text-anchor="end">${esc(tags)}</text>` : ""}
    </g>`;
  }).join("");
  svg.innerHTML = `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
    <path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>${edges}${nodes}`;
  svg.querySelectorAll(".node").forEach((node) => node.addEventListener("click", () => {
    const section = document.getElementById("task-" + node.dataset.task);
    if (section) section.scrollIntoView({ behavior: "smooth" });
  }));
}

function kvRows(pairs) {
  return pairs.length ? pairs.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join("") : `<tr><td class="muted">none</td></tr>`;
}

function stepState(step) {
  const exit = step.exit_code === null || step.exit_code === undefined ? "" : step.exit_code === 0 ? " exit0" : " exitbad";
  return `<span class="state s-${esc(step.state)}${exit}">${esc(step.state)}${step.reason ? " · " + esc(step.reason) : ""}</span>`;
}

let tasksHtml = "";

function drawTasks(detail) {
  const html = detail.tasks.map((task) => `
    <div class="task" id="task-${esc(task.task)}">
      <h3>${esc(task.task)} <span class="state s-${esc(task.run.outcome)}">${esc(task.run.outcome)}</span>
        <span class="muted">${esc(task.run.name)}${task.pods.length > 1 ? ` · ${task.pods.length} attempts` : ""}</span></h3>
      <table class="steps"><tr><th>Step</th><th>State</th><th>Exit</th><th>Started</th><th>Took</th><th>Log</th></tr>
      ${task.steps.map((step) => `<tr class="step" data-step="${esc(task.task)}/${esc(step.name)}">
        <td>${esc(step.name)}</td><td>${stepState(step)}</td><td>${step.exit_code ?? "-"}</td>
        <td>${step.started ? new Date(step.started).toLocaleTimeString() : "-"}</td>
        <td>${shortDuration(seconds(step.started, step.finished))}</td>
        <td><button type="button" class="open-log" data-label="${esc(task.task)}/${esc(step.name)}"
             data-pod="${esc(step.pod)}" data-container="${esc(step.container)}" data-done="${step.finished ? 1 : 0}">logs</button></td>
      </tr>`).join("")}
      </table>
      ${task.pods.length > 1 ? `<p class="muted">Earlier attempts: ${task.pods.slice(0, -1).map(esc).join(", ")}</p>` : ""}
    </div>`).join("") || `<p class="muted">No task run yet.</p>`;
  // Replaced only when something changed, so a button being clicked stays put.
  if (tasksHtml !== html) { document.getElementById("tasks").innerHTML = html; tasksHtml = html; }
}

const openLogs = new Map();

// Streams one step's log into its own box (kept across refreshes).
async function openLog(namespace, label, pod, container, follow) {
  const key = pod + "/" + container;
  if (openLogs.has(key)) { openLogs.get(key).scrollIntoView(); return; }
  const base = `/api/logs/${encodeURIComponent(namespace)}/${encodeURIComponent(pod)}/${encodeURIComponent(container)}`;
  const box = document.createElement("div");
  box.className = "logbox";
  box.dataset.key = key;
  box.innerHTML = `<h3>[${esc(label)}] <span class="muted">${esc(pod)}</span>
    <a href="${base}?download=true" download>download</a></h3><pre class="log" data-label="${esc(label)}"></pre>`;
  const logs = document.getElementById("logs");
  if (!openLogs.size) logs.innerHTML = "";
  logs.appendChild(box);
  openLogs.set(key, box);
  const pre = box.querySelector("pre");
  try {
    let response = await fetch(`${base}?follow=${follow}`);
    // A step whose container has not started yet answers 400: wait for it.
    for (let tries = 0; follow && response.status === 400 && tries < 120; tries++) {
      pre.textContent = "(waiting for the step to start)";
      await new Promise((resolve) => setTimeout(resolve, 1000));
      response = await fetch(`${base}?follow=${follow}`);
    }
    pre.textContent = "";
    if (!response.ok) {
      const body = await response.json().catch(() => ({ error: response.statusText }));
      pre.textContent = "error: " + body.error;
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent += decoder.decode(value, { stream: true });
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
    box.classList.add("ended");
  } catch (error) { pre.textContent += "\n(log stream ended: " + error.message + ")"; }
}

async function action(path, what) {
  const result = document.getElementById("action-result");
  result.hidden = false;
  result.classList.remove("bad");
  result.textContent = what + "…";
  try {
    const body = await getJson(path, { method: "POST", headers: ACTION_HEADER });
    result.textContent = body.message;
    return body;
  } catch (error) {
    result.classList.add("bad");
    result.textContent = what + " failed: " + error.message;
    return null;
  }
}

function runPage() {
  const [, , namespace, kind, name] = location.pathname.split("/").map(decodeURIComponent);
  const base = `/api/run/${encodeURIComponent(namespace)}/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`;
  document.title = `${name} · cicd dashboard`;
  async function refresh() {
    try {
      const d = await getJson(base);
      showError(null);
      const s = d.summary;
      document.getElementById("run-name").textContent = s.name;
      const badge = document.getElementById("run-status");
      badge.textContent = s.reason && s.reason !== s.outcome ? `${s.outcome} · ${s.reason}` : s.outcome;
      badge.className = "badge s-" + s.outcome;
      badge.dataset.state = s.outcome;
      document.getElementById("run-meta").textContent =
        `${s.kind} in ${s.namespace} · age ${shortDuration(seconds(s.created))} · took ${shortDuration(seconds(s.started, s.completed))}`;
      const failure = document.getElementById("failure");
      failure.hidden = !(s.outcome === "Failed" && s.message);
      failure.textContent = s.message;
      document.getElementById("cancel").disabled = s.outcome === "Succeeded" || s.outcome === "Failed";
      document.getElementById("graph-section").hidden = !(d.graph || d.graph_error);
      const graphError = document.getElementById("graph-error");
      graphError.hidden = !d.graph_error;
      graphError.textContent = d.graph_error || "";
      if (d.graph) drawGraph(d.graph);
      document.getElementById("params").innerHTML = kvRows(d.params);
      document.getElementById("results").innerHTML = kvRows(d.results);
      drawTasks(d);
      document.getElementById("events").innerHTML = d.events.length
        ? `<tr><th>Type</th><th>Reason</th><th>Object</th><th>Message</th></tr>` + d.events.map((e) =>
          `<tr><td>${esc(e.type)}</td><td>${esc(e.reason)}</td><td>${esc(e.object)}</td><td>${esc(e.message)}</td></tr>`).join("")
        : `<tr><td class="muted">none</td></tr>`;
    } catch (error) { showError(error); }
  }
  document.getElementById("cancel").addEventListener("click", async () => { await action(base + "/cancel", "cancel"); refresh(); });
  document.getElementById("rerun").addEventListener("click", async () => {
    const body = await action(base + "/rerun", "rerun");
    if (body) {
      const link = document.createElement("a");
      link.href = `/run/${encodeURIComponent(body.namespace)}/${encodeURIComponent(body.kind)}/${encodeURIComponent(body.name)}`;
      link.textContent = " open " + body.name;
      link.id = "rerun-link";
      document.getElementById("action-result").appendChild(link);
    }
  });
  document.getElementById("tasks").addEventListener("click", (event) => {
    const button = event.target.closest(".open-log");
    if (button) openLog(namespace, button.dataset.label, button.dataset.pod, button.dataset.container, button.dataset.done !== "1");
  });
  live(namespace, refresh);
  refresh();
}

if (document.body.dataset.page === "list") listPage();
if (document.body.dataset.page === "run") runPage();
