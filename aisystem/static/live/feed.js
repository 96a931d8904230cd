/* The live feed page: the socket (reconnecting with backoff), pause, filters, and drawing the
 * journeys, the system events, the counters and the chart. Text goes in with textContent only. */
(function () {
  "use strict";

  var LF = window.LiveFeed;
  var MAX_ROWS = 500;
  var TEXT_CHARS = 120;
  var PING_MS = 25000, SILENT_MS = 60000;
  var BACKOFF_FIRST_MS = 500, BACKOFF_MAX_MS = 30000;
  var CHART_MINUTES = 30;

  var root = document.getElementById("live-feed");
  var model = new LF.Model();
  var rows = new Map();  // message id → <tr>
  var filters = { chat: "", workspace: "", transport: "", type: "", status: "" };
  var paused = false, buffered = [];
  var socket = null, attempt = 0, lastHeard = 0, redrawPending = false;

  // --- Small DOM helpers -------------------------------------------------------------------

  function $(id) { return document.getElementById(id); }

  function node(tag, className, text) {
    var n = document.createElement(tag);
    if (className) { n.className = className; }
    if (text !== undefined && text !== null) { n.textContent = text; }
    return n;
  }

  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
  }

  function truncate(text, limit) {
    return text.length <= limit ? text : text.slice(0, limit - 1) + "…";
  }

  // --- Connection state ----------------------------------------------------------------------

  function setState(kind, text) {
    var badge = $("connection");
    badge.className = "state " + kind;
    badge.textContent = text;
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    setState("connecting", attempt ? "reconnecting…" : "connecting…");
    socket = new WebSocket(scheme + window.location.host + root.dataset.socketPath);
    socket.addEventListener("message", onFrame);
    socket.addEventListener("close", onClose);
  }

  function onFrame(message) {
    lastHeard = Date.now();
    var frame;
    try { frame = JSON.parse(message.data); } catch (e) { return; }
    if (frame.type === "history") {
      attempt = 0;
      setState("live", "live");
    }
    if (frame.type === "history" || frame.type === "events") { receive(frame.events || []); }
  }

  function onClose(event) {
    socket = null;
    if (event.code === 4401) {
      setState("refused", "signed out: going to sign-in…");
      window.location.assign(root.dataset.loginUrl);
      return;
    }
    if (event.code === 4403) {
      setState("refused", "this account may not watch the live feed");
      return;
    }
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * Math.pow(2, attempt));
    delay = Math.round(delay * (0.5 + Math.random() / 2));  // jitter: tabs do not reconnect in step
    attempt += 1;
    setState("offline", "disconnected · retrying in " + Math.ceil(delay / 1000) + " s");
    window.setTimeout(connect, delay);
  }

  function keepAlive() {
    if (!socket || socket.readyState !== WebSocket.OPEN) { return; }
    if (Date.now() - lastHeard > SILENT_MS) { socket.close(); return; }  // half-open: start over
    socket.send(JSON.stringify({ type: "ping" }));
  }

  // --- Receiving and pausing ---------------------------------------------------------------

  function receive(events) {
    if (paused) {
      Array.prototype.push.apply(buffered, events);
      $("buffered").textContent = buffered.length + " new while paused";
      return;
    }
    var changed = model.addAll(events);
    changed.journeys.sort(function (a, b) { return a.firstId - b.firstId; });
    changed.journeys.forEach(renderJourney);
    trimRows();
    if (changed.system) { renderSystem(); }
    scheduleRedraw();
  }

  function togglePause() {
    paused = !paused;
    var button = $("pause");
    button.textContent = paused ? "Resume" : "Pause";
    button.setAttribute("aria-pressed", String(paused));
    document.body.classList.toggle("paused", paused);
    if (!paused) {
      var events = buffered;
      buffered = [];
      $("buffered").textContent = "";
      receive(events);
    }
  }

  // --- Journeys ------------------------------------------------------------------------------

  function stepLabel(event) {
    var d = event.data || {};
    switch (event.kind) {
      case "message.received": return "received";
      case "gate.allowed": return "allowed";
      case "gate.denied":
      case "access.denied":
      case "budget.exceeded": return "denied: " + String(d.reason || "").replace(/_/g, " ");
      case "context.built": return "context: " + (d.workspace || "?") + " · " + (d.history || 0) + " turns";
      case "route.planned": return "route: " + (d.type || "?") + " → " + (d.handler || "?");
      case "agent.ok":
        return "agent: " + (d.model || "") + " · " + (d.input_tokens || 0) + "+" +
          (d.output_tokens || 0) + " tok" + (d.tools && d.tools.length ? " · tools " + d.tools.join(", ") : "");
      default: return event.kind;
    }
  }

  function journeySteps(journey) {
    var cell = node("td", "steps");
    journey.events.forEach(function (event, i) {
      if (i) { cell.appendChild(node("span", "arrow", "→")); }
      var isFinal = event.kind.indexOf("message.") === 0 && event.kind !== "message.received";
      var chip = node("span", "step level-" + event.level, isFinal ? journey.statusText : stepLabel(event));
      chip.title = clock(event.created_at) + " " + event.kind + ": " + event.summary;
      cell.appendChild(chip);
    });
    return cell;
  }

  function journeyRow(journey) {
    var tr = node("tr", "journey status-" + journey.status);
    tr.dataset.messageId = journey.messageId;
    tr.dataset.firstId = journey.firstId;
    var text = node("td", "text", truncate(journey.text, TEXT_CHARS));
    text.title = journey.text;
    var cost = journey.tokens ? journey.tokens + " · $" + journey.costUsd.toFixed(4) : "";
    var where = journey.transport + (journey.chatId === null ? "" : " · #" + journey.chatId);
    [
      node("td", "time", journey.startedAt ? clock(journey.startedAt) : clock(journey.events[0].created_at)),
      node("td", "status", journey.statusText),
      node("td", "where", where),
      node("td", "workspace", journey.workspace),
      node("td", "type", journey.type),
      text,
      journeySteps(journey),
      node("td", "latency", journey.latencyMs === null ? "" : LF.formatMs(journey.latencyMs)),
      node("td", "usage", cost),
    ].forEach(function (cell) { tr.appendChild(cell); });
    tr.hidden = !model.matches(journey, filters);
    return tr;
  }

  function renderJourney(journey) {
    var tbody = $("journeys").tBodies[0];
    var tr = journeyRow(journey);
    var old = rows.get(journey.messageId);
    rows.set(journey.messageId, tr);
    if (old) {
      var details = old.nextElementSibling;
      tbody.replaceChild(tr, old);
      if (details && details.classList.contains("details")) { details.replaceWith(detailsRow(journey)); }
      return;
    }
    var before = tbody.firstElementChild;  // newest first: find the first older journey
    while (before && (before.classList.contains("details") || Number(before.dataset.firstId) > journey.firstId)) {
      before = before.nextElementSibling;
    }
    tbody.insertBefore(tr, before);
    $("empty").hidden = true;
  }

  function detailsRow(journey) {
    var tr = node("tr", "details");
    var td = node("td");
    td.colSpan = 9;
    var list = node("ol", "event-list");
    journey.events.forEach(function (event) {
      var item = node("li", "level-" + event.level);
      item.appendChild(node("span", "time", clock(event.created_at)));
      item.appendChild(node("code", "kind", event.kind));
      item.appendChild(node("span", "summary", event.summary));
      item.appendChild(node("pre", "data", JSON.stringify(event.data, null, 1)));
      list.appendChild(item);
    });
    td.appendChild(list);
    tr.appendChild(td);
    tr.hidden = !model.matches(journey, filters);
    return tr;
  }

  function toggleDetails(event) {
    var tr = event.target.closest("tr.journey");
    if (!tr) { return; }
    var next = tr.nextElementSibling;
    if (next && next.classList.contains("details")) { next.remove(); return; }
    var journey = model.journeys.get(Number(tr.dataset.messageId));
    if (journey) { tr.after(detailsRow(journey)); }
  }

  function trimRows() {
    var tbody = $("journeys").tBodies[0];
    while (rows.size > MAX_ROWS) {
      var last = tbody.lastElementChild;
      if (last.classList.contains("details")) { last.remove(); continue; }
      rows.delete(Number(last.dataset.messageId));
      last.remove();
    }
  }

  // --- System events -------------------------------------------------------------------------

  function renderSystem() {
    var list = $("system-events");
    list.textContent = "";
    model.system.slice(-100).reverse().forEach(function (event) {
      var item = node("li", "level-" + event.level);
      item.appendChild(node("span", "time", clock(event.created_at)));
      item.appendChild(node("code", "kind", event.kind));
      item.appendChild(node("span", "summary", event.summary));
      list.appendChild(item);
    });
    $("system-empty").hidden = model.system.length > 0;
  }

  // --- Filters, counters, chart -------------------------------------------------------------

  function applyFilters() {
    Object.keys(filters).forEach(function (name) { filters[name] = $("filter-" + name).value; });
    rows.forEach(function (tr, messageId) {
      var journey = model.journeys.get(messageId);
      var hidden = !journey || !model.matches(journey, filters);
      tr.hidden = hidden;
      var next = tr.nextElementSibling;
      if (next && next.classList.contains("details")) { next.hidden = hidden; }
    });
    scheduleRedraw();
  }

  function refreshOptions() {
    var options = model.options();
    Object.keys(options).forEach(function (name) {
      var select = $("filter-" + name);
      var have = new Set(Array.from(select.options).map(function (o) { return o.value; }));
      Array.from(options[name]).sort().forEach(function (value) {
        if (have.has(value)) { return; }
        var option = node("option", null, name === "chat" ? "#" + value : value);
        option.value = value;
        select.appendChild(option);
      });
    });
  }

  function renderCounters() {
    var c = model.counters(filters);
    var shown = {
      messages: c.messages, inflight: c.inFlight, answered: c.answered, delivered: c.delivered,
      rejected: c.rejected, failed: c.failed, deferred: c.deferred, errors: c.errors,
      p50: c.p50 === null ? "–" : LF.formatMs(c.p50), tokens: c.tokens, cost: "$" + c.cost.toFixed(4),
    };
    Object.keys(shown).forEach(function (name) {
      var cell = root.querySelector('[data-counter="' + name + '"]');
      if (cell) { cell.textContent = String(shown[name]); }
    });
  }

  function redraw() {
    redrawPending = false;
    refreshOptions();
    renderCounters();
    LF.drawChart($("chart"), model.perMinute(CHART_MINUTES, Date.now(), filters));
  }

  function scheduleRedraw() {
    if (redrawPending) { return; }
    redrawPending = true;
    window.setTimeout(function () { window.requestAnimationFrame(redraw); }, 250);
  }

  // --- Start -----------------------------------------------------------------------------------

  $("pause").addEventListener("click", togglePause);
  $("filters").addEventListener("change", applyFilters);
  $("filters").addEventListener("reset", function () { window.setTimeout(applyFilters, 0); });
  $("journeys").tBodies[0].addEventListener("click", toggleDetails);
  window.setInterval(keepAlive, PING_MS);
  window.setInterval(scheduleRedraw, 15000);  // the chart's minutes move on without events
  window.addEventListener("resize", scheduleRedraw);
  redraw();
  connect();
})();
