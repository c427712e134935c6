// hearken floor page. No build step: plain script, served from the binary.
// Data: GET /api/floor, GET /api/conversations/{key}, GET /api/events (Server-Sent Events read
// with fetch, so that a bearer token can go in a header). Text from the server is only ever set
// with textContent, never parsed as HTML.
"use strict";

(function () {
  const COMPONENTS = [
    ["patience", "Pat", "Patience"],
    ["talk_balance", "Talk", "Talk balance"],
    ["inquiry", "Inq", "Inquiry"],
    ["acknowledgement", "Ack", "Acknowledgement"],
    ["empathy", "Emp", "Empathy"],
    ["understanding", "Und", "Understanding"],
    ["customer_experience", "CX", "Customer experience"],
  ];
  const KINDS = [
    "interruption", "overtalk", "long_monologue", "dead_air", "customer_repeating",
    "empathy_missed", "frustration_rising", "escalation_risk", "premature_solution",
    "closed_question_streak", "unanswered_question", "side_issue_dropped", "fast_speech",
    "dismissive_language",
  ];
  const SEVERITY_RANK = { info: 1, warning: 2, critical: 3 };
  // Rows drawn at most: a wall screen shows the worst calls; filters narrow the rest.
  const MAX_ROWS = 300;
  const FEED_MAX = 100;

  const $ = (id) => document.getElementById(id);
  const rows = new Map(); // key -> row data
  const rowEls = new Map(); // key -> <tr>
  let feed = []; // newest last
  let totalLive = 0;
  let showText = false;
  let token = sessionStorage.getItem("hearken-token") || "";
  let openKey = null;
  let detailTimer = null;
  let renderQueued = false;

  // ---------- small helpers ----------
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "tabindex" || k === "title") el.setAttribute(k, v);
        else el[k] = v;
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const label = (s) => s.replace(/_/g, " ");
  function band(score) {
    if (!score || score.confidence <= 0) return ["none", "no evidence yet"];
    if (score.overall >= 75) return ["good", "good"];
    if (score.overall >= 55) return ["fair", "fair"];
    return ["risk", "at risk"];
  }
  function componentBand(v) {
    return v >= 75 ? "good" : v >= 55 ? "fair" : "risk";
  }
  function clock(ms) {
    if (ms === null || ms === undefined) return "–";
    const s = Math.max(0, Math.round(ms / 1000));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
  function sevBadge(sev) {
    return h("span", { class: `sev sev-${sev}`, text: sev });
  }
  function authHeaders() {
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  // ---------- filters ----------
  const filters = { sort: "score", kind: "", severity: "", agent: "", queue: "", search: "", ended: true };
  function readFilters() {
    filters.sort = $("sort").value;
    filters.kind = $("kind").value;
    filters.severity = $("severity").value;
    filters.agent = $("agent").value.trim().toLowerCase();
    filters.queue = $("queue").value.trim().toLowerCase();
    filters.search = $("search").value.trim().toLowerCase();
    filters.ended = $("show-ended").checked;
  }
  function alertMatches(kind, severity) {
    if (filters.kind && kind !== filters.kind) return false;
    if (filters.severity && (SEVERITY_RANK[severity] || 0) < SEVERITY_RANK[filters.severity]) return false;
    return true;
  }
  function rowMatches(r) {
    if (!filters.ended && r.state === "ended") return false;
    if (filters.agent && !r.agent.toLowerCase().includes(filters.agent)) return false;
    if (filters.queue && !r.queue.toLowerCase().includes(filters.queue)) return false;
    if (filters.search && !r.conversation_id.toLowerCase().includes(filters.search)) return false;
    if (filters.kind || filters.severity) {
      const kinds = Object.entries(r.alert_kinds || {});
      if (!kinds.some(([k, s]) => alertMatches(k, s))) return false;
    }
    return true;
  }
  function compare(a, b) {
    switch (filters.sort) {
      case "alert": {
        const ta = a.latest_alert ? a.latest_alert.raised_at_ms : -1;
        const tb = b.latest_alert ? b.latest_alert.raised_at_ms : -1;
        return tb - ta || a.key - b.key;
      }
      case "frustration": {
        const fa = a.customer ? a.customer.frustration : -1;
        const fb = b.customer ? b.customer.frustration : -1;
        return fb - fa || a.key - b.key;
      }
      case "duration":
        return b.offset_ms - a.offset_ms || a.key - b.key;
      case "id":
        return a.conversation_id.localeCompare(b.conversation_id) || a.key - b.key;
      default: {
        // Lowest score first; calls without a score yet last.
        const sa = a.score ? a.score.overall : 1000;
        const sb = b.score ? b.score.overall : 1000;
        return sa - sb || a.key - b.key;
      }
    }
  }

  // ---------- the floor ----------
  function sparkline(points) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 100 30");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    if (points.length < 2) {
      svg.setAttribute("aria-label", "not enough points for a trend yet");
      return svg;
    }
    const first = points[0];
    const last = points[points.length - 1];
    const word = last > first + 2 ? "rising" : last < first - 2 ? "falling" : "steady";
    svg.setAttribute("aria-label", `score trend ${word}: ${first.toFixed(0)} to ${last.toFixed(0)}`);
    const line = document.createElementNS(ns, "polyline");
    const step = 100 / (points.length - 1);
    line.setAttribute("points", points.map((p, i) => `${(i * step).toFixed(1)},${(30 - (p / 100) * 30).toFixed(1)}`).join(" "));
    svg.append(line);
    return svg;
  }

  function componentBars(score) {
    const grid = h("div", { class: "components" });
    for (const [name, short, long] of COMPONENTS) {
      const c = score ? score.components.find((x) => x.component === name) : null;
      const known = c && c.confidence > 0;
      const fill = h("div", { class: known ? `fill ${componentBand(c.score)}` : "fill" });
      fill.style.height = known ? `${Math.max(2, Math.min(100, c.score))}%` : "0";
      const value = known ? c.score.toFixed(0) : "–";
      grid.append(
        h("div", { class: known ? "comp" : "comp none", title: `${long}: ${known ? value : "no evidence yet"}`, "data-component": name },
          h("div", { class: "bar", "aria-hidden": "true" }, fill),
          h("span", { text: `${short} ${value}` }))
      );
    }
    return grid;
  }

  function customerCell(c) {
    if (!c) return h("td", { class: "customer muted", text: "–" });
    const arrow = { improving: "↑ improving", steady: "→ steady", worsening: "↓ worsening" }[c.trend] || "–";
    const meter = h("span", { class: "meter", "aria-hidden": "true" }, h("span"));
    meter.firstChild.style.width = `${Math.round(c.frustration * 100)}%`;
    return h("td", { class: "customer" },
      h("div", null, `sentiment ${c.sentiment >= 0 ? "+" : ""}${c.sentiment.toFixed(2)}`),
      h("div", null, "frustration ", meter, ` ${Math.round(c.frustration * 100)}%`),
      h("div", { class: c.trend === "worsening" ? "band-risk" : "muted" }, arrow));
  }

  function rowElement(r) {
    const [bandClass, bandText] = band(r.score);
    const a = r.latest_alert;
    const tr = h("tr", {
      tabindex: "0",
      "data-key": r.key,
      "data-conversation-id": r.conversation_id,
      "data-state": r.state,
      "aria-label": `Conversation ${r.conversation_id}, score ${r.score ? r.score.overall.toFixed(1) : "none yet"}. Enter to open.`,
    },
      h("td", null,
        h("div", { class: "cid", text: r.conversation_id }),
        h("div", { class: "sub", text: [r.agent && `agent ${r.agent}`, r.queue && `queue ${r.queue}`].filter(Boolean).join(" · ") || "no agent or queue given" }),
        h("div", { class: "sub", text: `${r.channel.toLowerCase()} · ${clock(r.offset_ms)} · ${r.utterance_count} utt.${r.state === "ended" ? ` · ENDED (${r.end_reason})` : ""}` })),
      h("td", null,
        h("div", { class: "score" },
          h("span", { class: "score-value", text: r.score ? r.score.overall.toFixed(1) : "–" }),
          h("span", { class: `band band-${bandClass}`, text: bandText })),
        r.score ? h("div", { class: "sub", text: `confidence ${r.score.confidence.toFixed(2)}` }) : null),
      h("td", null, sparkline(r.trend)),
      h("td", null, componentBars(r.score)),
      customerCell(r.customer),
      h("td", { class: "latest-alert" },
        a ? h("div", { class: "alert-msg", "data-kind": a.kind, "data-severity": a.severity, title: `${a.message}. Tip: ${a.coaching_tip}` }, sevBadge(a.severity), label(a.kind), h("span", { class: "sub", text: ` at ${clock(a.offset_ms)}` })) : h("span", { class: "muted", text: "none" }),
        r.alert_count > 1 ? h("div", { class: "sub", text: `${r.alert_count} alerts in all` }) : null)
    );
    tr.addEventListener("click", () => openConversation(r.key));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openConversation(r.key); }
      else if (e.key === "ArrowDown" && tr.nextElementSibling) { e.preventDefault(); tr.nextElementSibling.focus(); }
      else if (e.key === "ArrowUp" && tr.previousElementSibling) { e.preventDefault(); tr.previousElementSibling.focus(); }
    });
    tr._version = r._version;
    return tr;
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; render(); });
  }

  function render() {
    readFilters();
    const all = [...rows.values()];
    const shown = all.filter(rowMatches).sort(compare);
    const drawn = shown.slice(0, MAX_ROWS);
    const body = $("floor-rows");
    const focusedKey = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : undefined;
    const wanted = [];
    for (const r of drawn) {
      let tr = rowEls.get(r.key);
      if (!tr || tr._version !== r._version) {
        const fresh = rowElement(r);
        if (tr) tr.replaceWith(fresh);
        tr = fresh;
        rowEls.set(r.key, tr);
      }
      wanted.push(tr);
    }
    const keep = new Set(wanted);
    for (const [key, tr] of rowEls) {
      if (!keep.has(tr)) { tr.remove(); if (!rows.has(key)) rowEls.delete(key); }
    }
    // Re-order only what moved.
    wanted.forEach((tr, i) => { if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null); });
    if (focusedKey !== undefined) { const f = rowEls.get(Number(focusedKey)); if (f && document.activeElement !== f && f.isConnected) f.focus({ preventScroll: true }); }

    $("stat-live").textContent = totalLive === null || totalLive === undefined ? all.filter((r) => r.state === "live").length : totalLive;
    $("stat-shown").textContent = shown.length;
    $("empty").hidden = all.length > 0;
    $("floor-caption").textContent = shown.length > MAX_ROWS ? `Showing the first ${MAX_ROWS} of ${shown.length}: filter to narrow.` : "";
    fillLists(all);
    renderFeed();
  }

  function fillLists(all) {
    for (const [id, field] of [["agents", "agent"], ["queues", "queue"]]) {
      const values = [...new Set(all.map((r) => r[field]).filter(Boolean))].sort().slice(0, 200);
      const list = $(id);
      if (list._values === values.join("\n")) continue;
      list._values = values.join("\n");
      list.replaceChildren(...values.map((v) => h("option", { value: v })));
    }
  }

  function renderFeed() {
    const items = feed.filter((a) => alertMatches(a.kind, a.severity)).slice(-FEED_MAX).reverse();
    $("stat-alerts").textContent = feed.length;
    const ol = $("feed");
    const sig = items.map((a) => a.alert_id + a.key).join("|");
    if (ol._sig === sig) return;
    ol._sig = sig;
    ol.replaceChildren(...items.map((a) => {
      const open = h("button", { class: "link", type: "button", text: a.conversation_id });
      open.addEventListener("click", () => openConversation(a.key));
      return h("li", { "data-kind": a.kind, "data-severity": a.severity, "data-key": a.key },
        h("div", null, sevBadge(a.severity), h("strong", { text: label(a.kind) }), " · ", open, a.agent ? ` · ${a.agent}` : "", h("span", { class: "muted", text: ` at ${clock(a.offset_ms)}` })),
        h("div", { class: "alert-msg", text: a.message }),
        a.coaching_tip ? h("div", { class: "tip", text: a.coaching_tip }) : null);
    }));
  }

  let version = 0;
  function putRow(r) {
    r._version = ++version;
    rows.set(r.key, r);
    if (openKey === r.key) scheduleDetail();
  }
  function addAlerts(list) {
    for (const a of list) feed.push(a);
    if (feed.length > FEED_MAX * 2) feed = feed.slice(-FEED_MAX);
  }

  // ---------- the conversation view ----------
  let charts = [];
  function scheduleDetail() {
    if (detailTimer) return;
    detailTimer = setTimeout(() => { detailTimer = null; loadDetail(); }, 400);
  }
  function openConversation(key) {
    if (location.hash !== `#/c/${key}`) location.hash = `#/c/${key}`;
    else route();
  }
  function closeConversation() {
    const key = openKey;
    openKey = null;
    $("detail").hidden = true;
    for (const c of charts) c.destroy();
    charts = [];
    if (location.hash) history.pushState(null, "", location.pathname);
    const tr = rowEls.get(key);
    if (tr && tr.isConnected) tr.focus();
  }
  function route() {
    const m = /^#\/c\/(\d+)$/.exec(location.hash);
    if (!m) { if (openKey !== null) closeConversation(); return; }
    openKey = Number(m[1]);
    $("detail").hidden = false;
    loadDetail(true);
  }

  async function loadDetail(focus) {
    if (openKey === null) return;
    const key = openKey;
    let d;
    try {
      const res = await fetch(`/api/conversations/${key}`, { headers: authHeaders() });
      if (!res.ok) {
        const err = await res.json().catch(() => ({}));
        $("detail-title").textContent = `Conversation ${key}`;
        $("detail-meta").textContent = err.message || `not available (${res.status})`;
        return;
      }
      d = await res.json();
    } catch (e) {
      return;
    }
    if (openKey !== key) return;
    $("detail-title").textContent = `${d.conversation_id} — ${d.score ? d.score.overall.toFixed(1) : "no score yet"} (${band(d.score)[1]})`;
    $("detail-meta").textContent = [d.agent && `agent ${d.agent}`, d.queue && `queue ${d.queue}`, d.channel.toLowerCase(), clock(d.offset_ms), d.state === "ended" ? `ended (${d.end_reason})` : "live", `${d.utterance_count} utterances`, `${d.alert_count} alerts`].filter(Boolean).join(" · ");
    $("text-note").textContent = showText ? "(text masked for card data)" : "(text hidden: the server runs without --ui-show-text)";
    drawCharts(d);
    drawUtterances(d);
    drawAlerts(d);
    if (focus) $("detail").focus();
  }

  function chartWidth(el) {
    return Math.max(280, el.clientWidth || el.parentElement.clientWidth - 16);
  }

  function drawCharts(d) {
    for (const c of charts) c.destroy();
    charts = [];
    if (typeof uPlot === "undefined") return;
    const xs = d.history.map((_, i) => i + 1);
    const ids = d.history.map((p) => p.utterance_id);
    const alertAt = d.alerts.map((a) => {
      const ids2 = a.evidence_utterance_ids;
      let at = -1;
      for (const u of ids2) { const i = ids.lastIndexOf(u); if (i > at) at = i; }
      return { x: at + 1, a };
    }).filter((m) => m.x > 0);
    const markers = {
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx;
          ctx.save();
          for (const m of alertAt) {
            const x = u.valToPos(m.x, "x", true);
            const color = { critical: "#f87171", warning: "#fbbf24", info: "#60a5fa" }[m.a.severity] || "#9aa8c2";
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.lineWidth = 2;
            ctx.setLineDash([4, 4]);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            ctx.setLineDash([]);
            ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui`;
            const text = `${m.a.severity.toUpperCase()} ${label(m.a.kind)}`;
            const width = ctx.measureText(text).width;
            const left = x + 4 + width > u.bbox.left + u.bbox.width ? x - 4 - width : x + 4;
            ctx.fillText(text, left, u.bbox.top + 12 * devicePixelRatio * (1 + (alertAt.indexOf(m) % 4)));
          }
          ctx.restore();
        }],
      },
    };
    const axes = [
      { label: "utterance", stroke: "#9aa8c2", grid: { stroke: "#24324f" }, ticks: { stroke: "#24324f" }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] },
      { label: "score", stroke: "#9aa8c2", grid: { stroke: "#24324f" }, ticks: { stroke: "#24324f" } },
    ];
    const scoreEl = $("chart-score");
    scoreEl.replaceChildren();
    scoreEl.setAttribute("aria-label", `Overall score after each of ${xs.length} utterances; ${alertAt.length} alerts marked`);
    charts.push(new uPlot({
      width: chartWidth(scoreEl), height: 240,
      scales: { x: { time: false }, y: { range: [0, 100] } },
      axes, plugins: [markers], legend: { live: false },
      series: [{ label: "utterance" }, { label: "overall", stroke: "#60a5fa", width: 2 }],
    }, [xs, d.history.map((p) => p.overall)], scoreEl));
    const compEl = $("chart-components");
    compEl.replaceChildren();
    const palette = ["#60a5fa", "#22c55e", "#f59e0b", "#a78bfa", "#f472b6", "#2dd4bf", "#f87171"];
    charts.push(new uPlot({
      width: chartWidth(compEl), height: 240,
      scales: { x: { time: false }, y: { range: [0, 100] } },
      axes, legend: { live: false },
      series: [{ label: "utterance" }, ...COMPONENTS.map(([, , long], i) => ({ label: long, stroke: palette[i], width: 1.5 }))],
    }, [xs, ...COMPONENTS.map((_, i) => d.history.map((p) => p.components[i]))], compEl));
  }

  function drawUtterances(d) {
    const body = $("utterance-rows");
    body.replaceChildren(...d.utterances.map((u, i) => h("tr", { "data-utterance-id": u.utterance_id },
      h("td", { text: String(d.utterance_count - d.utterances.length + i + 1) }),
      h("td", { text: clock(u.offset_ms) }),
      h("td", { class: `role-${u.role}`, text: u.role }),
      h("td", null, ...(u.behaviours.length ? u.behaviours.map((b) => h("span", { class: "chip", "data-behaviour": b.behaviour, title: `confidence ${b.confidence.toFixed(2)}` },
        label(b.behaviour), b.duration_ms ? ` ${(b.duration_ms / 1000).toFixed(1)}s` : "", b.evidence ? h("q", { text: b.evidence }) : null)) : [h("span", { class: "muted", text: "–" })])),
      h("td", { class: u.text === null || u.text === undefined ? "utterance-text muted" : "utterance-text", text: u.text === null || u.text === undefined ? "hidden" : u.text })
    )));
  }

  function drawAlerts(d) {
    const ol = $("detail-alerts");
    if (!d.alerts.length) { ol.replaceChildren(h("li", { class: "muted", text: "No alerts." })); return; }
    ol.replaceChildren(...d.alerts.slice().reverse().map((a) => h("li", { "data-kind": a.kind },
      h("div", null, sevBadge(a.severity), h("strong", { text: label(a.kind) }), h("span", { class: "muted", text: ` at ${clock(a.offset_ms)} · ${a.evidence_utterance_ids.join(", ")}` })),
      h("div", { class: "alert-msg", text: a.message }),
      a.coaching_tip ? h("div", { class: "tip", text: a.coaching_tip }) : null)));
  }

  // ---------- the live connection ----------
  function setConnection(state, text) {
    const el = $("connection");
    el.dataset.state = state;
    el.textContent = text;
  }

  function applySnapshot(s) {
    showText = s.show_text;
    totalLive = s.live;
    rows.clear();
    for (const r of s.rows) putRow(r);
    feed = s.alerts.slice();
    scheduleRender();
    if (openKey !== null) scheduleDetail();
  }

  function applyBatch(b) {
    totalLive = b.live;
    for (const r of b.rows) putRow(r);
    for (const k of b.removed) rows.delete(k);
    addAlerts(b.alerts);
    if (b.skipped) $("feed-note").textContent = `(${b.skipped} more in the last update not listed)`;
    scheduleRender();
  }

  let retry = 1000;
  async function connect() {
    setConnection("connecting", "connecting…");
    let res;
    try {
      res = await fetch("/api/events", { headers: { Accept: "text/event-stream", ...authHeaders() } });
    } catch (e) {
      return reconnect("server unreachable");
    }
    if (res.status === 401 || res.status === 403) {
      const err = await res.json().catch(() => ({}));
      $("token-form").hidden = false;
      $("token-error").textContent = token ? `not accepted (${err.error || res.status})` : "";
      setConnection("closed", "needs a token");
      return;
    }
    if (!res.ok) {
      const err = await res.json().catch(() => ({}));
      return reconnect(err.message || `refused (${res.status})`);
    }
    $("token-form").hidden = true;
    setConnection("live", "live");
    retry = 1000;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let notice = null;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (!data.length) continue;
          const payload = JSON.parse(data.join("\n"));
          if (name === "floor") applySnapshot(payload);
          else if (name === "batch") applyBatch(payload);
          else if (name === "notice") notice = payload;
        }
      }
    } catch (e) {
      // The connection broke; reconnect below.
    }
    reconnect(notice ? notice.message : "connection lost");
  }
  function reconnect(why) {
    setConnection("retrying", `${why}; retrying in ${Math.round(retry / 1000)} s`);
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 30000);
  }

  // ---------- wiring ----------
  function init() {
    const kind = $("kind");
    for (const k of KINDS) kind.append(h("option", { value: k, text: label(k) }));
    for (const id of ["sort", "kind", "severity", "show-ended"]) $(id).addEventListener("change", scheduleRender);
    for (const id of ["agent", "queue", "search"]) {
      $(id).addEventListener("input", scheduleRender);
      $(id).addEventListener("change", scheduleRender);
    }
    $("detail-close").addEventListener("click", closeConversation);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && openKey !== null) { e.preventDefault(); closeConversation(); }
      else if (e.key === "/" && !(e.target instanceof HTMLInputElement)) { e.preventDefault(); $("search").focus(); }
    });
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      token = $("token").value.trim();
      sessionStorage.setItem("hearken-token", token);
      connect();
    });
    window.addEventListener("hashchange", route);
    route();
    connect();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
