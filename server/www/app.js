// app.js — the Anchorage drift status page. No framework, no build step:
// fetch /api/v1/drift, draw one card per contract with the latest verdict,
// a table of statistics and a <canvas> line chart per statistic over the
// recorded history. Refreshes every 5 seconds: the first fetch asks for 24
// hours of history, later ones only for what is new since the last one
// (plus a minute), merged into the page's copy, so an open page costs a
// few KB per refresh instead of the whole day's reports of every contract.
// Works offline (everything is served by the server itself).
"use strict";

const STATS = [
  ["centroid_distance", "centroid distance", "above"],
  ["drifted_components", "drifted components (share)", "above"],
  ["mmd", "MMD p-value", "below"],
  ["classifier_auc", "classifier ROC AUC", "above"],
  ["top1_score_shift", "top-1 score shift (share)", "above"],
];

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return Number(v).toPrecision(3);
}

function drawChart(canvas, hist, key) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 260, h = canvas.clientHeight || 110;
  canvas.width = w * dpr;
  canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const pts = hist.filter(r => r.stats[key] && r.stats[key].computed &&
                               r.stats[key].value !== null);
  g.font = "10px sans-serif";
  g.fillStyle = "#7a8591";
  if (pts.length === 0) {
    g.fillText("no data yet", 8, h / 2);
    return 0;
  }
  const t0 = pts[0].time, t1 = pts[pts.length - 1].time;
  let lo = Infinity, hi = -Infinity;
  for (const r of pts) {
    const s = r.stats[key];
    for (const v of [s.value, s.threshold]) {
      if (v === null) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (hi === lo) { hi += 0.5; lo -= 0.5; }
  const pad = 18;
  const X = t => t1 === t0 ? w / 2 : pad + (w - 2 * pad) * (t - t0) / (t1 - t0);
  const Y = v => h - 12 - (h - 24) * (v - lo) / (hi - lo);
  g.strokeStyle = "#eceff3";
  g.beginPath(); g.moveTo(pad, h - 12); g.lineTo(w - pad, h - 12); g.stroke();
  g.fillText(fmt(hi), 2, 10);
  g.fillText(fmt(lo), 2, h - 2);
  // threshold, dashed
  g.strokeStyle = "#d98b00";
  g.setLineDash([4, 3]);
  g.beginPath();
  pts.forEach((r, i) => {
    const y = Y(r.stats[key].threshold);
    i ? g.lineTo(X(r.time), y) : g.moveTo(X(r.time), y);
  });
  g.stroke();
  g.setLineDash([]);
  // value
  g.strokeStyle = "#1f5fa8";
  g.lineWidth = 1.5;
  g.beginPath();
  pts.forEach((r, i) => {
    const y = Y(r.stats[key].value);
    i ? g.lineTo(X(r.time), y) : g.moveTo(X(r.time), y);
  });
  g.stroke();
  for (const r of pts) {
    g.fillStyle = r.stats[key].fired ? "#c0392b" : "#1f5fa8";
    g.beginPath();
    g.arc(X(r.time), Y(r.stats[key].value), 2.5, 0, 2 * Math.PI);
    g.fill();
  }
  return pts.length;
}

function card(c) {
  const l = c.latest;
  const status = l ? l.status : "none";
  const id = "c-" + c.collection + "-" + c.contract;
  const verdict = el("span", {class: "verdict " + status,
                              "data-status": status,
                              id: "verdict-" + c.collection + "-" + c.contract},
                     l ? status : "no report yet");
  const head = el("h2", {}, c.collection + " / " + c.name, verdict);
  const ids = el("div", {class: "ids"},
    "contract " + c.contract + " · " + c.metric + " · dim " + c.dim + " · " +
    c.state + " · " + c.vectors + " vectors" +
    (l ? " · window " + l.window + " (" + l.window_flagged + " flagged) · " +
         l.nfired + " of 5 fired · report " +
         new Date(l.time * 1000).toLocaleString() : ""));
  const box = el("div", {class: "card", id: id}, head, ids);
  if (l) {
    const tb = el("table", {},
      el("tr", {}, el("th", {}, "statistic"), el("th", {}, "value"),
         el("th", {}, "threshold"), el("th", {}, "fires when"),
         el("th", {}, "verdict")));
    for (const [key, label, dir] of STATS) {
      const s = l.stats[key];
      const tr = el("tr", {class: s.fired ? "fired" : "", "data-stat": key},
        el("td", {}, label), el("td", {}, s.computed ? fmt(s.value) : "–"),
        el("td", {}, s.computed ? fmt(s.threshold) : "–"),
        el("td", {}, dir),
        el("td", {}, !s.computed ? "n/a" : s.fired ? "fired" : "ok"));
      tb.append(tr);
    }
    box.append(tb);
  }
  const charts = el("div", {class: "charts"});
  box.append(charts);
  let drawn = 0;
  for (const [key, label] of STATS) {
    const cv = el("canvas", {"data-stat": key});
    charts.append(el("div", {class: "chart"}, el("div", {class: "t"}, label), cv));
  }
  return [box, () => {
    for (const cv of charts.querySelectorAll("canvas"))
      drawn += drawChart(cv, c.history, cv.getAttribute("data-stat"));
    box.setAttribute("data-points", String(drawn));
  }];
}

// A server with API keys wants one for the drift API: given once in the
// address (/#key=...), kept for the tab's session and taken out of the
// address bar.
function authHeaders() {
  const m = location.hash.match(/^#key=(.+)$/);
  if (m) {
    sessionStorage.setItem("anchorage-key", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  const k = sessionStorage.getItem("anchorage-key");
  return k ? {"Authorization": "Bearer " + k} : {};
}

// collection + NUL + contract -> that contract's reports, oldest first
let historyCache = new Map();
let lastFetch = 0; // performance.now() of the last good fetch, ms

// Merge the reports of c.history newer than the cached ones, keep 24 h
// (by the server's clock: report times), and point c.history at the result.
function mergeHistory(c, next) {
  const key = c.collection + "\u0000" + c.contract;
  const old = historyCache.get(key) || [];
  const last = old.length ? old[old.length - 1].time : -Infinity;
  let h = old.concat((c.history || []).filter(r => r.time > last));
  if (h.length) {
    const cut = h[h.length - 1].time - 24 * 3600;
    h = h.filter(r => r.time >= cut);
  }
  next.set(key, h);
  c.history = h;
}

async function refresh() {
  const meta = document.getElementById("meta");
  try {
    const now = performance.now();
    const secs = lastFetch > 0 ? (now - lastFetch) / 1000 + 60 : 24 * 3600;
    const hours = Math.min(24, Math.max(secs / 3600, 0.001)).toFixed(4);
    const r = await fetch("/api/v1/drift?hours=" + hours,
                          {cache: "no-store", headers: authHeaders()});
    if (r.status === 401 || r.status === 403)
      throw new Error("HTTP " + r.status + ": this server has API keys; " +
                      "open this page as /#key=YOUR_READ_KEY");
    if (!r.ok) throw new Error("HTTP " + r.status);
    const data = await r.json();
    const next = new Map();
    for (const c of data.contracts) mergeHistory(c, next);
    historyCache = next; // contracts gone (retired) leave the cache
    lastFetch = now;
    const main = document.getElementById("contracts");
    main.replaceChildren();
    const draws = [];
    if (data.contracts.length === 0)
      main.append(el("p", {class: "empty"}, "No contracts registered yet."));
    for (const c of data.contracts) {
      const [box, draw] = card(c);
      main.append(box);
      draws.push(draw);
    }
    for (const d of draws) d();
    const worst = data.contracts.map(c => c.latest ? c.latest.status : "none");
    meta.textContent = data.contracts.length + " contract(s) · " +
      worst.filter(s => s === "drift").length + " drifting · updated " +
      new Date().toLocaleTimeString();
    document.body.setAttribute("data-ready", "1");
  } catch (e) {
    meta.textContent = "cannot load /api/v1/drift: " + e.message;
  }
}

refresh();
setInterval(refresh, 5000);
