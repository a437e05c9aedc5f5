// fleetctl dashboard: refreshes the server-rendered page from the JSON API every few seconds
// (the page being shown: its cursor and the page size the server rendered, never the whole
// fleet), sorts and filters through the API's own parameters, and says clearly when the API
// cannot be reached or the session has ended. Plain script, no library; builds every element with
// textContent, never innerHTML, so no hostname can inject markup.
"use strict";

(function () {
  const root = document.getElementById("dashboard");
  if (!root) return;
  const REFRESH_MS = Number(root.dataset.refreshMs) || 5000;
  const SPAN_MS = Number(root.dataset.sparkSpan) || 3600000;
  const PAGE_ROWS = Number(root.dataset.pageRows) || 100;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  const form = $("filters");
  const state = {
    sort: $("f-sort").value || "hostname",
    hostname: $("f-hostname").value,
    status: $("f-status").value,
    // Where the shown page starts (the previous page's next_cursor); "" = the first page.
    cursor: root.dataset.cursor || "",
  };
  let timer = null;
  let stopped = false;
  let lastOk = new Date();
  let inFlight = null;

  // Sparkline history per machine: {cpu: [[t, v]...], mem: [...]}, seeded from the markup.
  const sparks = new Map();
  for (const tr of document.querySelectorAll("#machine-rows tr[data-id]")) {
    const [cpu, mem] = tr.querySelectorAll("svg.spark");
    sparks.set(tr.dataset.id, { cpu: parsePoints(cpu), mem: parsePoints(mem) });
  }

  function parsePoints(svg) {
    if (!svg || !svg.dataset.points) return [];
    return svg.dataset.points.split(";").map((p) => p.split(",").map(Number));
  }

  // Extend a series with a live value: one point per minute, like the stored rollups.
  function extend(series, t, v, from) {
    const minute = t - (t % 60000);
    const last = series[series.length - 1];
    if (last && last[0] >= minute) last[1] = v;
    else series.push([minute, v]);
    while (series.length && series[0][0] < from) series.shift();
  }

  function sparkline(series, from, to, label, cls) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark " + cls);
    svg.setAttribute("viewBox", "0 0 100 24");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    const line = document.createElementNS(SVG, "polyline");
    const span = Math.max(1, to - from);
    const pts = series.map(([t, v]) => {
      const x = ((t - from) / span) * 100;
      const y = 23 - (Math.min(100, Math.max(0, v)) / 100) * 22;
      return Math.round(x * 10) / 10 + "," + Math.round(y * 10) / 10;
    });
    line.setAttribute("points", pts.join(" "));
    const bg = document.createElementNS(SVG, "rect");
    bg.setAttribute("class", "bg");
    bg.setAttribute("width", "100");
    bg.setAttribute("height", "24");
    svg.append(bg, line);
    if (pts.length) {
      const [x, y] = pts[pts.length - 1].split(",");
      const end = document.createElementNS(SVG, "circle");
      end.setAttribute("cx", x);
      end.setAttribute("cy", y);
      end.setAttribute("r", "1.8");
      svg.append(end);
    }
    return svg;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function age(secs) {
    const s = Math.max(0, secs);
    if (s < 60) return Math.round(s) + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  const pct = (v) => v.toFixed(1) + " %";

  // Same markup as dashboard.rs `row`.
  function row(m, now) {
    const from = now - SPAN_MS;
    let s = sparks.get(m.machine_id);
    if (!s) {
      s = { cpu: [], mem: [] };
      sparks.set(m.machine_id, s);
    }
    if (m.status !== "offline") {
      extend(s.cpu, now, m.cpu_percent, from);
      extend(s.mem, now, m.memory_percent, from);
    }
    const tr = el("tr", "st-" + m.status);
    tr.dataset.id = m.machine_id;
    const st = el("td", "status");
    st.append(el("span", "dot"), el("span", "st", m.status));
    st.firstChild.setAttribute("aria-hidden", "true");
    const host = el("td", "host");
    const a = el("a", "", m.hostname);
    a.href = "/machines/" + encodeURIComponent(m.machine_id);
    host.append(a, el("span", "sub", m.machine_id));
    const cpu = el("td", "num");
    cpu.append(el("span", "v cpu", pct(m.cpu_percent)),
      sparkline(s.cpu, from, now, "CPU of " + m.hostname + ", last hour", "s-cpu"));
    const mem = el("td", "num");
    mem.append(el("span", "v mem", pct(m.memory_percent)),
      sparkline(s.mem, from, now, "Memory of " + m.hostname + ", last hour", "s-mem"));
    const disk = el("td", "num hide-sm");
    disk.append(el("span", "v disk", pct(m.disk_percent)));
    const load = el("td", "num hide-sm");
    load.append(el("span", "v load", m.load[0].toFixed(2)));
    tr.append(st, host, cpu, mem, disk, load, el("td", "num age", age(m.last_seen_age_secs)));
    return tr;
  }

  // Same markup as dashboard.rs `cluster_panel`.
  function nodeRow(n, self) {
    const tr = el("tr", "ns-" + n.status);
    tr.dataset.id = n.node_id;
    const name = el("td");
    name.append(el("code", "", n.node_id));
    if (n.leader) name.append(" ", el("span", "badge leader", "leader"));
    if (n.node_id === self) name.append(" ", el("span", "badge self", "this page"));
    const state = el("td", "state");
    const dot = el("span", "dot");
    dot.setAttribute("aria-hidden", "true");
    state.append(dot, n.status);
    tr.append(name, state, el("td", "num", age(n.heartbeat_age)),
      el("td", "hide-sm", n.url), el("td", "hide-sm", n.version));
    return tr;
  }

  class SessionEnded extends Error {}

  async function getJSON(url, signal) {
    let res;
    try {
      res = await fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
        signal,
      });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new Error("no answer from the server");
    }
    if (res.status === 401) throw new SessionEnded();
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      /* not JSON: reported below */
    }
    if (!res.ok || body === null) {
      const why = body && body.error ? body.error : "HTTP " + res.status;
      throw new Error(why);
    }
    return { body, node: res.headers.get("X-Fleet-Node") };
  }

  function listURL() {
    const q = new URLSearchParams({ limit: String(PAGE_ROWS), sort: state.sort });
    if (state.hostname) q.set("hostname", state.hostname);
    if (state.status) q.set("status", state.status);
    if (state.cursor) q.set("cursor", state.cursor);
    return "/api/fleet/machines?" + q.toString();
  }

  // Same URL as dashboard.rs `dashboard_url`.
  function pageURL(cursor) {
    const q = new URLSearchParams();
    if (state.hostname) q.set("hostname", state.hostname);
    if (state.status) q.set("status", state.status);
    if (state.sort !== "hostname") q.set("sort", state.sort);
    if (cursor) q.set("cursor", cursor);
    const s = q.toString();
    return "/dashboard" + (s ? "?" + s : "");
  }

  function renderPager(next) {
    const first = $("page-first");
    first.href = pageURL("");
    first.hidden = !state.cursor;
    const link = $("page-next");
    link.href = pageURL(next || "");
    link.hidden = !next;
  }

  function render(summary, list, cluster, node) {
    const now = Date.parse(summary.generated_at) || Date.now();
    $("t-online").textContent = summary.online;
    $("t-stale").textContent = summary.stale;
    $("t-offline").textContent = summary.offline;
    $("t-total").textContent = summary.total;
    $("t-cpu").textContent = pct(summary.averages.cpu_percent);
    $("t-memory").textContent = pct(summary.averages.memory_percent);
    $("t-disk").textContent = pct(summary.averages.disk_percent);
    $("t-load").textContent = summary.averages.load1.toFixed(2);

    const rows = list.machines.map((m) => row(m, now));
    if (rows.length === 0) {
      const tr = el("tr", "empty-row");
      const td = el("td", "", summary.total === 0
        ? "No machine has reported yet. Start an agent: fleetctl agent --server URL"
        : "No machine matches the filter.");
      td.colSpan = 7;
      tr.append(td);
      rows.push(tr);
    }
    $("machine-rows").replaceChildren(...rows);
    const shown = list.machines.length;
    $("machines-count").textContent = state.cursor
      ? "showing " + shown + " of " + list.total + " matching from here on, " + summary.total + " in the fleet"
      : shown < list.total
        ? "showing " + shown + " of " + list.total + " matching, " + summary.total + " in the fleet"
        : list.total + " of " + summary.total;
    renderPager(list.next_cursor);

    const self = $("served-by").textContent;
    $("node-rows").replaceChildren(...cluster.nodes.map((n) => nodeRow(n, self)));
    $("cluster-summary").textContent = cluster.active_nodes + " of " + cluster.total_nodes +
      " nodes active · " + cluster.backend + " backend · leader " + (cluster.leader || "none");
    $("refreshed-by").textContent = node || cluster.node_id || "?";

    const at = new Date(now);
    const updated = $("updated-at");
    updated.dateTime = at.toISOString();
    updated.textContent = at.toISOString().slice(11, 16) + " UTC";
    $("updated-by").textContent = " by " + (node || "?");
  }

  function markSort() {
    for (const th of document.querySelectorAll("#machines-table th[aria-sort]")) {
      const key = th.querySelector("button.sort").dataset.key;
      const dir = state.sort === key ? "ascending" : state.sort === "-" + key ? "descending" : "none";
      th.setAttribute("aria-sort", dir);
      th.querySelector(".arrow").textContent = dir === "ascending" ? " ▲" : dir === "descending" ? " ▼" : "";
    }
    $("f-sort").value = state.sort;
  }

  // A new sort or filter starts from the first page (a cursor belongs to one sort and filter).
  function remember() {
    state.cursor = "";
    renderPager(null);
    history.replaceState(null, "", pageURL(""));
  }

  function showApiDown(why) {
    const b = $("banner-api");
    b.querySelector(".since").textContent = lastOk.toISOString().slice(11, 19) + " UTC";
    b.querySelector(".detail").textContent = "(" + why + ")";
    b.hidden = false;
  }

  async function refresh() {
    if (stopped) return;
    clearTimeout(timer);
    if (inFlight) inFlight.abort();
    const ctl = new AbortController();
    inFlight = ctl;
    try {
      const [summary, list, cluster] = await Promise.all([
        getJSON("/api/fleet/summary", ctl.signal),
        getJSON(listURL(), ctl.signal),
        getJSON("/api/fleet/cluster/status", ctl.signal),
      ]);
      render(summary.body, list.body, cluster.body, list.node);
      lastOk = new Date();
      $("banner-api").hidden = true;
    } catch (e) {
      if (e.name === "AbortError") return;
      if (e instanceof SessionEnded) {
        stopped = true;
        $("banner-api").hidden = true;
        $("banner-session").hidden = false;
        root.classList.add("ended");
        return;
      }
      showApiDown(e.message);
    } finally {
      if (inFlight === ctl) inFlight = null;
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  for (const b of document.querySelectorAll("button.sort")) {
    b.addEventListener("click", () => {
      const key = b.dataset.key;
      if (state.sort === key) state.sort = "-" + key;
      else if (state.sort === "-" + key) state.sort = key;
      else state.sort = b.dataset.descFirst === "true" ? "-" + key : key;
      markSort();
      remember();
      refresh();
    });
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.hostname = $("f-hostname").value.trim();
    state.status = $("f-status").value;
    remember();
    refresh();
  });
  let typing = null;
  $("f-hostname").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => form.requestSubmit(), 300);
  });
  $("f-status").addEventListener("change", () => form.requestSubmit());

  // A page restored from the back/forward cache after logout must not show private data:
  // reload it, and the server sends the login form instead.
  window.addEventListener("pageshow", (ev) => {
    if (ev.persisted) location.reload();
  });

  timer = setTimeout(refresh, REFRESH_MS);
})();
