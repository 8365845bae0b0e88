/* Bulwark's live console: one socket to /ws/console/, the dashboard on the admin index, and live figures on
   the breaker and job changelists and on rate-limit, cache and breaker policy pages. No framework; uPlot
   (vendored, MIT) draws the charts. Action controls are rendered by the server for operators only: this
   script never adds one. */
(function () {
  "use strict";
  var state = {};
  var charts = {};
  var retryMs = 1000;

  function merge(data) {
    Object.keys(data).forEach(function (section) {
      var items = data[section] || {};
      var into = state[section] = state[section] || {};
      Object.keys(items).forEach(function (key) {
        if (items[key] === null) { delete into[key]; } else { into[key] = items[key]; }
      });
    });
  }

  function text(el, value) { if (el) { el.textContent = (value === null || value === undefined) ? "–" : value; } }

  function setConnection(label) {
    var el = document.getElementById("console-connection");
    if (el) { el.textContent = label; el.dataset.connection = label; }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/console/");
    socket.onopen = function () { retryMs = 1000; setConnection("live"); };
    socket.onmessage = function (message) {
      var payload = JSON.parse(message.data);
      if (payload.type !== "state") { return; }
      merge(payload.data || {});
      render(payload.data || {});
      var updated = document.getElementById("console-updated");
      if (updated) { updated.textContent = new Date().toLocaleTimeString(); }
    };
    socket.onclose = function (event) {
      if (event.code === 4401 || event.code === 4403) { setConnection("refused"); return; }
      setConnection("reconnecting");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    };
  }

  function render(changed) {
    if (document.getElementById("console")) { renderConsole(changed); }
    renderChangelists();
    renderPolicyPage();
  }

  /* ---- the dashboard ---------------------------------------------------------------------------------- */
  function renderConsole(changed) {
    var cards = state.cards || {};
    Object.keys(cards).forEach(function (name) {
      document.querySelectorAll('[data-card="' + name + '"]').forEach(function (card) { card.dataset.state = cards[name]; });
    });
    Object.keys(state.health || {}).forEach(function (name) {
      var card = document.querySelector('.health-card[data-card="' + name + '"]');
      if (card) { text(card.querySelector('[data-figure="value"]'), state.health[name].value); }
    });
    if (changed.breakers) { renderBreakers(); }
    if (changed.jobs) { renderJobs(); }
    if (changed.endpoints) { renderEndpoints(); }
    if (changed.audit) { renderAudit(); }
    if (changed.anomalies) { renderList(".anomalies", (state.anomalies || {}).open, function (a) { return a.series + " (score " + a.score + ")"; }, "None open."); }
    if (changed.chart || !charts.latency) { renderCharts(); }
  }

  function renderBreakers() {
    var body = document.querySelector(".breaker-board tbody");
    if (!body) { return; }
    var breakers = state.breakers || {};
    body.querySelectorAll("tr[data-breaker]").forEach(function (row) {
      var breaker = breakers[row.dataset.breaker];
      if (!breaker) { row.dataset.state = "deleted"; text(row.querySelector(".breaker-state"), "deleted"); return; }
      row.dataset.state = breaker.state;
      text(row.querySelector(".breaker-state"), breaker.state);
      text(row.querySelector(".breaker-rate"), breaker.failure_rate_pct === null ? null : breaker.failure_rate_pct + "%");
      text(row.querySelector(".breaker-calls"), breaker.calls);
    });
  }

  function renderJobs() {
    var body = document.querySelector("table.jobs tbody");
    if (!body) { return; }
    var jobs = Object.keys(state.jobs || {}).map(function (k) { return state.jobs[k]; });
    jobs.sort(function (a, b) { return b.id - a.id; });
    body.textContent = "";
    jobs.slice(0, 10).forEach(function (job) {
      var row = document.createElement("tr");
      row.dataset.job = job.id;
      row.dataset.status = job.status;
      var name = document.createElement("td");
      var link = document.createElement("a");
      link.href = "/admin/bulwark_jobs/jobrun/" + job.id + "/change/";
      link.textContent = "#" + job.id + " " + job.type;
      name.appendChild(link);
      var status = document.createElement("td");
      status.className = "job-status";
      status.textContent = job.status;
      var progressCell = document.createElement("td");
      var bar = document.createElement("progress");
      bar.max = 100; bar.value = job.progress;
      var label = document.createElement("span");
      label.className = "job-progress";
      label.textContent = " " + job.progress + "%";
      progressCell.appendChild(bar); progressCell.appendChild(label);
      row.appendChild(name); row.appendChild(status); row.appendChild(progressCell);
      body.appendChild(row);
    });
  }

  function renderEndpoints() {
    var body = document.querySelector("table.endpoints tbody");
    if (!body) { return; }
    var rows = (state.endpoints || {}).top || [];
    body.textContent = "";
    rows.forEach(function (item) {
      var row = document.createElement("tr");
      var cell = document.createElement("td");
      var label = item.method + " " + item.route;
      if (item.url) { var a = document.createElement("a"); a.href = item.url; a.textContent = label; cell.appendChild(a); } else { cell.textContent = label; }
      row.appendChild(cell);
      [item.rps, item.p95_ms, item.error_rate_pct].forEach(function (v) { var td = document.createElement("td"); text(td, v); row.appendChild(td); });
      body.appendChild(row);
    });
    if (!rows.length) { var empty = document.createElement("tr"); var td = document.createElement("td"); td.colSpan = 4; td.textContent = "No traffic in the last minute."; empty.appendChild(td); body.appendChild(empty); }
  }

  function renderAudit() {
    renderList(".audit", (state.audit || {}).recent, function (e) { return e.at.slice(0, 19) + " " + e.actor + " · " + e.action + " · " + e.object; }, "No events yet.", function (e) { return e.url; });
  }

  function renderList(selector, items, label, emptyText, href) {
    var list = document.querySelector("ul" + selector);
    if (!list) { return; }
    list.textContent = "";
    (items || []).forEach(function (item) {
      var li = document.createElement("li");
      if (href) { var a = document.createElement("a"); a.href = href(item); a.textContent = label(item); li.appendChild(a); } else { li.textContent = label(item); }
      list.appendChild(li);
    });
    if (!(items || []).length) { var li = document.createElement("li"); li.className = "empty"; li.textContent = emptyText; list.appendChild(li); }
  }

  /* ---- charts ------------------------------------------------------------------------------------------ */
  function column(rows, i) { return rows.map(function (r) { return r[i]; }); }

  function drawChart(name, options, data) {
    var container = document.querySelector('[data-chart-container="' + name + '"]');
    if (!container || typeof uPlot === "undefined") { return; }
    if (charts[name]) { charts[name].setData(data); return; }
    options.width = Math.max(260, container.clientWidth || 360);
    options.height = 180;
    charts[name] = new uPlot(options, data, container);
    var canvas = container.querySelector("canvas");
    if (canvas) { canvas.dataset.chart = name; }
  }

  function renderCharts() {
    var chart = state.chart || {};
    var minutes = chart.minutes || [];
    var x = column(minutes, 0);
    drawChart("latency", {series: [{}, {label: "p50", stroke: "#2a7"}, {label: "p95", stroke: "#e90"}, {label: "p99", stroke: "#d33"}]},
      [x, column(minutes, 2), column(minutes, 3), column(minutes, 4)]);
    drawChart("traffic", {series: [{}, {label: "rps", stroke: "#36c", scale: "rps"}, {label: "errors %", stroke: "#d33", scale: "%"}],
      axes: [{}, {scale: "rps", label: "rps"}, {scale: "%", label: "errors %", side: 1, grid: {show: false}}]},
      [x, column(minutes, 1), column(minutes, 5)]);
    var system = chart.system || {samples: [], forecast_cpu: [], forecast_memory: []};
    var byTime = {};
    function put(at, index, value) { (byTime[at] = byTime[at] || [null, null, null, null, null])[index] = value; }
    system.samples.forEach(function (s) { put(s[0], 0, s[1]); put(s[0], 1, s[2]); });
    system.forecast_cpu.forEach(function (f) { put(f[0], 2, f[1]); put(f[0], 3, f[2]); put(f[0], 4, f[3]); });
    var times = Object.keys(byTime).map(Number).sort(function (a, b) { return a - b; });
    var data = [times];
    for (var i = 0; i < 5; i++) { data.push(times.map(function (t) { return byTime[t][i]; })); }
    drawChart("system", {
      series: [{}, {label: "CPU", stroke: "#36c"}, {label: "memory", stroke: "#a3c"},
               {label: "CPU forecast", stroke: "#36c", dash: [4, 4]},
               {label: "CPU 80% low", stroke: "rgba(51,102,204,0.3)"}, {label: "CPU 80% high", stroke: "rgba(51,102,204,0.3)"}],
      bands: [{series: [5, 4], fill: "rgba(51,102,204,0.15)"}],
      scales: {y: {range: [0, 100]}}}, data);
  }

  /* ---- changelists and policy pages -------------------------------------------------------------------- */
  function rowsByPk() {
    var rows = {};
    document.querySelectorAll("#result_list tbody tr").forEach(function (row) {
      var box = row.querySelector("input.action-select");
      var link = row.querySelector("th a, td a");
      var pk = box ? box.value : (link && (link.getAttribute("href").match(/\/(\d+)\/change\//) || [])[1]);
      if (pk) { rows[pk] = row; }
    });
    return rows;
  }

  function renderChangelists() {
    var body = document.body.classList;
    if (!body.contains("change-list")) { return; }
    if (body.contains("model-breakerpolicy")) {
      var rows = rowsByPk();
      Object.keys(state.breakers || {}).forEach(function (name) {
        var breaker = state.breakers[name], row = rows[String(breaker.id)];
        if (!row) { return; }
        row.dataset.breaker = name;
        row.dataset.state = breaker.state;
        text(row.querySelector("td.field-live_state"), breaker.state);
        text(row.querySelector("td.field-live_failure_rate"), breaker.failure_rate_pct === null ? null : breaker.failure_rate_pct + "% of " + breaker.calls);
      });
    }
    if (body.contains("model-jobrun")) {
      var jobRows = rowsByPk();
      Object.keys(state.jobs || {}).forEach(function (pk) {
        var job = state.jobs[pk], row = jobRows[pk];
        if (!row) { return; }
        row.dataset.status = job.status;
        var bar = row.querySelector("td.field-progress_bar progress");
        if (bar) { bar.value = job.progress; bar.nextSibling && (bar.nextSibling.textContent = " " + job.progress + "%"); }
        var status = row.querySelector("td.field-status_badge");
        if (status) { status.textContent = job.status; }
      });
    }
  }

  function liveBox() {
    var box = document.getElementById("live-figures");
    if (!box) {
      var content = document.getElementById("content-main");
      if (!content) { return null; }
      box = document.createElement("div");
      box.id = "live-figures";
      box.className = "module live-figures";
      content.insertBefore(box, content.firstChild);
    }
    return box;
  }

  function renderPolicyPage() {
    var body = document.body.classList;
    if (!body.contains("change-form")) { return; }
    var match = location.pathname.match(/\/(\d+)\/change\/$/);
    if (!match) { return; }
    var pk = match[1], policies = state.policies || {}, box;
    if (body.contains("model-ratelimitpolicy")) {
      var figures = policies["ratelimit:" + pk] || {minutes: []};
      var last = figures.minutes[figures.minutes.length - 1] || [null, 0, 0];
      box = liveBox();
      if (box) { box.dataset.live = "ratelimit"; box.textContent = "Live, this minute: " + last[1] + " allowed, " + last[2] + " denied per minute (" + figures.minutes.length + " recent minutes with traffic)"; }
    } else if (body.contains("model-cachepolicy")) {
      var cache = policies["caching:" + pk] || {hit_ratio: null, lookups: 0};
      box = liveBox();
      if (box) { box.dataset.live = "caching"; box.textContent = "Live hit ratio, last 10 minutes: " + (cache.hit_ratio === null ? "–" : (100 * cache.hit_ratio).toFixed(1) + " %") + " of " + cache.lookups + " lookups"; }
    } else if (body.contains("model-breakerpolicy")) {
      Object.keys(state.breakers || {}).forEach(function (name) {
        var breaker = state.breakers[name];
        if (String(breaker.id) !== pk) { return; }
        box = liveBox();
        if (box) { box.dataset.live = "breaker"; box.dataset.state = breaker.state; box.textContent = "Live: " + breaker.state + ", failure rate " + (breaker.failure_rate_pct === null ? "not yet computed" : breaker.failure_rate_pct + " %") + " of " + breaker.calls + " calls"; }
      });
    }
  }

  function start() {
    var initial = document.getElementById("console-state");
    if (initial) { merge(JSON.parse(initial.textContent)); renderCharts(); }
    connect();
  }

  if (document.readyState !== "complete") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
