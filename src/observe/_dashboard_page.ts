/**
 * The dashboard page: one self-contained HTML document (inline CSS and
 * script, no build step, nothing fetched from elsewhere) that reads
 * `/api/plugins` every second and `/events` as Server-Sent Events.
 *
 * Every string that comes from a plugin (names, ids, function names, error
 * messages, message payloads) reaches the page through `textContent`, never
 * as markup; the server's Content-Security-Policy only runs the script and
 * style that carry the response's nonce.
 *
 * @module
 */

/** The page, with `nonce` on its one `<style>` and one `<script>`. */
export function dashboardPage(nonce: string): string {
  return PAGE.replaceAll("__NONCE__", nonce);
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>wasmplug dashboard</title>
<style nonce="__NONCE__">
:root {
  --bg: #f6f7f9; --panel: #fff; --text: #1b1f24; --muted: #5c6670; --line: #dde1e6;
  --accent: #5b4bdb; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e;
  --bad-bg: #ffebe9; --warn-bg: #fff8c5;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --panel: #161b22; --text: #e6edf3; --muted: #8d96a0; --line: #30363d;
    --accent: #a39bff; --ok: #3fb950; --warn: #d29922; --bad: #f85149;
    --bad-bg: #3b1519; --warn-bg: #3a2d0b;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
header { display: flex; align-items: center; gap: 16px; padding: 14px 24px;
  background: var(--panel); border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0; }
header h1 span { color: var(--accent); }
#status { margin-left: auto; font-size: 13px; color: var(--muted); }
#status::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%;
  margin-right: 6px; background: var(--warn); }
#status.live::before { background: var(--ok); }
#status.down::before { background: var(--bad); }
main { padding: 20px 24px; display: grid; gap: 20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .label { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card.alert .value { color: var(--bad); }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
section h2 { font-size: 14px; margin: 0; padding: 10px 14px; border-bottom: 1px solid var(--line); }
section h2 small { font-weight: normal; color: var(--muted); margin-left: 8px; }
table { width: 100%; border-collapse: collapse; }
th, td { padding: 7px 14px; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.name { font-weight: 600; max-width: 320px; overflow: hidden; text-overflow: ellipsis; }
td.id { color: var(--muted); font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
tr.anomalous td { background: var(--warn-bg); }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  border: 1px solid var(--line); }
.state.ready, .state.running { color: var(--ok); border-color: var(--ok); }
.state.paused, .state.initializing, .state.created { color: var(--warn); border-color: var(--warn); }
.state.error, .state.stopped { color: var(--bad); border-color: var(--bad); }
.empty { padding: 14px; color: var(--muted); }
.columns { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 20px; }
@media (max-width: 900px) { .columns { grid-template-columns: 1fr; } }
ol { list-style: none; margin: 0; padding: 0; max-height: 420px; overflow-y: auto; }
li { display: grid; grid-template-columns: 70px 112px minmax(0, 1fr); gap: 8px; padding: 5px 14px;
  border-bottom: 1px solid var(--line); font-size: 13px; }
li time { color: var(--muted); font-variant-numeric: tabular-nums; }
li .type { font-weight: 600; }
li .text { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#anomalies li .text { white-space: normal; }
li.anomaly { background: var(--warn-bg); }
li.anomaly .type { color: var(--warn); }
li.error { background: var(--bad-bg); }
li.error .type { color: var(--bad); }
#dropped { color: var(--muted); font-size: 12px; }
.toggle { float: right; font-weight: normal; font-size: 12px; color: var(--muted); }
.toggle input { vertical-align: -2px; margin: 0 4px 0 0; }
</style>
</head>
<body>
<header>
  <h1><span>wasmplug</span> dashboard</h1>
  <div id="status">connecting</div>
</header>
<main>
  <div class="cards">
    <div class="card"><div class="label">Plugins</div><div class="value" id="total-plugins">0</div></div>
    <div class="card"><div class="label">Calls/s</div><div class="value" id="total-rate">–</div></div>
    <div class="card"><div class="label">Calls</div><div class="value" id="total-calls">0</div></div>
    <div class="card" id="errors-card"><div class="label">Failed calls</div><div class="value" id="total-errors">0</div></div>
    <div class="card" id="anomalies-card"><div class="label">Anomalies seen</div><div class="value" id="total-anomalies">0</div></div>
  </div>
  <section>
    <h2>Plugins</h2>
    <table>
      <thead><tr>
        <th>Name</th><th>ID</th><th>State</th><th class="num">Calls/s</th><th class="num">Calls</th>
        <th class="num">Errors</th><th class="num">p50</th><th class="num">p99</th><th class="num">Max</th>
        <th class="num">Fuel</th><th class="num">Memory</th><th class="num">Anomalies</th>
      </tr></thead>
      <tbody id="plugins"></tbody>
    </table>
    <div class="empty" id="no-plugins">No plugins loaded.</div>
  </section>
  <div class="columns">
    <section>
      <h2>Anomalies <small>since this page opened</small></h2>
      <ol id="anomalies"></ol>
      <div class="empty" id="no-anomalies">None so far.</div>
    </section>
    <section>
      <h2>Recent events <small id="dropped"></small>
        <label class="toggle"><input type="checkbox" id="show-calls"> successful calls</label></h2>
      <ol id="events"></ol>
      <div class="empty" id="no-events">Waiting for events…</div>
    </section>
  </div>
</main>
<script nonce="__NONCE__">
"use strict";
(() => {
  const MAX_EVENTS = 100;
  const MAX_ANOMALIES = 50;
  const REFRESH_MS = 1000;
  const $ = (id) => document.getElementById(id);
  const rows = new Map();
  const previous = new Map();
  const anomalyCounts = new Map();
  const anomalyTimes = new Map();
  const names = new Map();
  let pendingEvents = [];
  let anomaliesSeen = 0;
  let droppedEvents = 0;
  let refreshQueued = false;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function short(x) { return String(Number(x.toPrecision(3))); }
  function formatNs(ns) {
    if (!(ns > 0)) return "–";
    if (ns < 1e3) return ns.toFixed(0) + " ns";
    if (ns < 1e6) return short(ns / 1e3) + " µs";
    if (ns < 1e9) return short(ns / 1e6) + " ms";
    return short(ns / 1e9) + " s";
  }
  function formatMs(ms) { return formatNs(ms * 1e6); }
  function formatBytes(bytes) {
    if (!(bytes > 0)) return "0 B";
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
    return (i === 0 ? bytes.toFixed(0) : short(bytes)) + " " + units[i];
  }
  function formatCount(n) {
    if (!(n >= 0)) return "–";
    if (n < 1e4) return Math.round(n).toLocaleString("en-US");
    const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [size, unit] of units) if (n >= size) return short(n / size) + unit;
    return String(n);
  }
  function formatRate(rate) {
    if (rate === undefined) return "–";
    return rate < 10 ? rate.toFixed(1) : formatCount(rate);
  }
  function formatValue(metric, value) {
    if (metric === "duration") return formatMs(value);
    if (metric === "memory") return formatBytes(value);
    if (metric === "error_rate") return (value * 100).toFixed(1) + " %";
    return formatCount(value);
  }

  function rowFor(id) {
    let row = rows.get(id);
    if (row) return row;
    const tr = el("tr");
    const cells = {};
    for (const [key, className] of [
      ["name", "name"], ["id", "id"], ["state", ""], ["rate", "num"], ["calls", "num"],
      ["errors", "num"], ["p50", "num"], ["p99", "num"], ["max", "num"], ["fuel", "num"],
      ["memory", "num"], ["anomalies", "num"],
    ]) {
      cells[key] = el("td", className);
      tr.append(cells[key]);
    }
    tr.dataset.pluginId = id;
    row = { tr, cells };
    rows.set(id, row);
    return row;
  }

  function render(plugins) {
    const now = performance.now();
    const seen = new Set();
    const body = $("plugins");
    let totalCalls = 0, totalErrors = 0, totalRate = 0, anyRate = false;
    for (const plugin of plugins) {
      seen.add(plugin.id);
      names.set(plugin.id, plugin.name);
      const m = plugin.metrics;
      const row = rowFor(plugin.id);
      const before = previous.get(plugin.id);
      let rate;
      if (before && now > before.at) {
        rate = Math.max(0, (m.callCount - before.calls) * 1000 / (now - before.at));
        totalRate += rate;
        anyRate = true;
      }
      previous.set(plugin.id, { calls: m.callCount, at: now });
      const c = row.cells;
      c.name.textContent = plugin.name;
      c.name.title = plugin.name;
      c.id.textContent = plugin.id;
      c.state.replaceChildren(el("span", "state " + plugin.state, plugin.state));
      c.rate.textContent = formatRate(rate);
      c.calls.textContent = formatCount(m.callCount);
      c.errors.textContent = formatCount(m.failureCount);
      c.p50.textContent = formatNs(m.p50ExecutionTimeNs);
      c.p99.textContent = formatNs(m.p99ExecutionTimeNs);
      c.max.textContent = formatNs(m.maxExecutionTimeNs);
      c.fuel.textContent = formatCount(m.fuelConsumed);
      c.memory.textContent = formatBytes(m.currentMemoryBytes);
      c.anomalies.textContent = formatCount(anomalyCounts.get(plugin.id) || 0);
      const last = anomalyTimes.get(plugin.id);
      row.tr.classList.toggle("anomalous", last !== undefined && Date.now() - last < 60000);
      body.append(row.tr);
      totalCalls += m.callCount;
      totalErrors += m.failureCount;
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        rows.delete(id);
        previous.delete(id);
      }
    }
    $("no-plugins").hidden = plugins.length > 0;
    $("total-plugins").textContent = String(plugins.length);
    $("total-calls").textContent = formatCount(totalCalls);
    $("total-errors").textContent = formatCount(totalErrors);
    $("errors-card").classList.toggle("alert", totalErrors > 0);
    $("total-rate").textContent = anyRate ? formatRate(totalRate) : "–";
  }

  async function refresh() {
    refreshQueued = false;
    try {
      const response = await fetch("api/plugins", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
    } catch {
      setStatus("down", "server unreachable");
    }
  }
  function refreshSoon() {
    if (refreshQueued) return;
    refreshQueued = true;
    setTimeout(refresh, 100);
  }

  function describe(event) {
    const d = event.detail || {};
    switch (event.type) {
      case "executed":
        return d.function + "() " + (d.success ? "ok" : "failed") + " in " + formatMs(d.durationMs) +
          (d.error ? ": " + d.error : "");
      case "state_changed": return d.from + " → " + d.to;
      case "error":
        return (d.function ? d.function + ": " : "") +
          (d.error && d.error.message !== undefined ? d.error.message : String(d.error));
      case "anomaly":
        return (d.function ? d.function + "() " : "") + d.metric + " " + formatValue(d.metric, d.value) + " vs baseline " +
          formatValue(d.metric, d.baseline) + " (score " + Number(d.score).toFixed(1) + ")";
      case "message":
        return "to " + d.to + ": " + (d.data && d.data.text !== undefined ? d.data.text : "");
      case "loaded": case "initialized": case "unloaded": return d.name;
      default: return JSON.stringify(d);
    }
  }
  function entry(event) {
    const item = el("li", event.type === "anomaly" ? "anomaly"
      : event.type === "error" || (event.type === "executed" && event.detail && !event.detail.success)
      ? "error" : "");
    const time = new Date(event.time);
    item.append(
      el("time", "", time.toLocaleTimeString("en-GB", { hour12: false })),
      el("span", "type", event.type),
    );
    const plugin = names.get(event.pluginId);
    const text = el("span", "text", (plugin ?? event.pluginId) + " · " + describe(event));
    text.title = text.textContent;
    item.append(text);
    return item;
  }
  function prepend(list, items, max) {
    list.prepend(...items);
    while (list.children.length > max) list.lastElementChild.remove();
  }
  function flushEvents() {
    const batch = pendingEvents.slice(-MAX_EVENTS);
    pendingEvents = [];
    if (batch.length === 0) return;
    const anomalies = batch.filter((event) => event.type === "anomaly");
    prepend($("events"), batch.map(entry).reverse(), MAX_EVENTS);
    $("no-events").hidden = true;
    if (anomalies.length > 0) {
      prepend($("anomalies"), anomalies.map(entry).reverse(), MAX_ANOMALIES);
      $("no-anomalies").hidden = true;
    }
    if (droppedEvents > 0) {
      $("dropped").textContent = droppedEvents + " dropped on a slow connection";
    }
  }
  setInterval(flushEvents, 200);

  // Every call makes two state changes and an "executed" event (a failed one
  // also an "error" event): list what a person needs to see.
  function listed(event) {
    const d = event.detail || {};
    if (event.type === "executed") return d.success === true && $("show-calls").checked;
    if (event.type === "state_changed") return d.from !== "running" && d.to !== "running";
    return true;
  }
  function onEvent(event) {
    if (event.type === "loaded") names.set(event.pluginId, event.detail.name);
    if (event.type === "anomaly") {
      anomaliesSeen++;
      anomalyCounts.set(event.pluginId, (anomalyCounts.get(event.pluginId) || 0) + 1);
      anomalyTimes.set(event.pluginId, Date.now());
      $("total-anomalies").textContent = formatCount(anomaliesSeen);
      $("anomalies-card").classList.add("alert");
    }
    if (!listed(event)) return;
    if (event.type !== "executed") refreshSoon();
    pendingEvents.push(event);
    if (pendingEvents.length > 4 * MAX_EVENTS) pendingEvents = pendingEvents.slice(-MAX_EVENTS);
  }

  function setStatus(kind, text) {
    const status = $("status");
    status.className = kind;
    status.textContent = text;
  }
  function connect() {
    const source = new EventSource("events");
    source.onopen = () => setStatus("live", "live");
    source.onerror = () => setStatus("down", "reconnecting…");
    source.onmessage = (message) => {
      try { onEvent(JSON.parse(message.data)); } catch { /* not an event */ }
    };
    source.addEventListener("dropped", (message) => {
      try { droppedEvents += JSON.parse(message.data).count; } catch { /* ignore */ }
    });
  }

  connect();
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
</script>
</body>
</html>
`;
