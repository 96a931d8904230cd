/* The live feed's model: events in, journeys (one per message), system events and figures out.
 * No DOM here. Events are pipeline.events.event_payload dicts; each id is taken once. */
(function () {
  "use strict";

  var MAX_JOURNEYS = 2000;
  var MAX_SYSTEM = 500;
  var FINAL_PREFIX = "message.";

  function Journey(messageId) {
    this.messageId = messageId;
    this.firstId = Infinity;
    this.events = [];
    this.transport = "";
    this.chatId = null;
    this.workspace = "";
    this.type = "";
    this.text = "";
    this.who = "";
    this.startedAt = null;
    this.status = "received";  // received → answered / rejected / failed / deferred / ignored
    this.statusText = "received";
    this.delivered = false;
    this.latencyMs = null;
    this.tokens = 0;
    this.costUsd = 0;
    this.model = "";
  }

  /* Fold one event into the journey's facts; events may arrive out of id order. */
  Journey.prototype.add = function (event) {
    var data = event.data || {};
    this.events.push(event);
    this.events.sort(function (a, b) { return a.id - b.id; });
    this.firstId = Math.min(this.firstId, event.id);
    this.transport = this.transport || event.transport;
    if (this.chatId === null) { this.chatId = event.chat_id; }
    var handler = STEP_FACTS[event.kind] || (event.kind.indexOf(FINAL_PREFIX) === 0 ? finalFacts : null);
    if (handler) { handler(this, event, data); }
  };

  var STEP_FACTS = {
    "message.received": function (j, event, data) {
      j.text = data.text || "";
      j.type = j.type || data.kind || "";
      j.who = event.summary;
      j.startedAt = new Date(event.created_at);
    },
    "context.built": function (j, event, data) { j.workspace = data.workspace || ""; },
    "route.planned": function (j, event, data) { j.type = data.type || j.type; },
    "gate.denied": function (j) { j.status = j.status === "received" ? "rejected" : j.status; },
  };
  // The gate's denials carry their catalog names now; "gate.denied" remains for stored rows.
  STEP_FACTS["access.denied"] = STEP_FACTS["budget.exceeded"] = STEP_FACTS["gate.denied"];

  function agentFacts(j, event, data) {
    j.tokens += (data.input_tokens || 0) + (data.output_tokens || 0);
    j.model = data.model || j.model;
  }
  ["agent.ok", "agent.failed", "agent.unavailable", "agent.cancelled"].forEach(function (kind) {
    STEP_FACTS[kind] = agentFacts;
  });

  function finalFacts(j, event, data) {
    var status = event.kind.slice(FINAL_PREFIX.length);
    if (status === "received") { return; }
    var label = status;
    if (status === "deferred_answered" || (status === "answered" && data.deferred)) {
      status = "answered";
      label = "answered later";
      j.delivered = !data.queued;
    } else {
      j.delivered = Boolean(data.delivered);
    }
    j.status = status;
    j.statusText = label + (j.delivered ? " · delivered" : "");
    if (data.timings_ms && typeof data.timings_ms.total === "number") {
      j.latencyMs = data.timings_ms.total;
    }
    var cost = parseFloat(data.cost_usd);
    if (!isNaN(cost)) { j.costUsd = Math.max(j.costUsd, cost); }
  }

  function Model() {
    this.seen = new Set();
    this.journeys = new Map();  // message id → Journey
    this.system = [];  // events without a message, newest last
    this.events = [];  // every event kept, for the chart and the counters
  }

  /* Take a batch; return the journeys and whether system events changed, for redrawing. */
  Model.prototype.addAll = function (events) {
    var touched = new Set();
    var systemChanged = false;
    for (var i = 0; i < events.length; i++) {
      var event = events[i];
      if (typeof event.id !== "number" || this.seen.has(event.id)) { continue; }
      this.seen.add(event.id);
      this.events.push(event);
      if (event.message_id === null || event.message_id === undefined) {
        this.system.push(event);
        systemChanged = true;
        continue;
      }
      var journey = this.journeys.get(event.message_id);
      if (!journey) {
        journey = new Journey(event.message_id);
        this.journeys.set(event.message_id, journey);
      }
      journey.add(event);
      touched.add(journey);
    }
    this.trim();
    return { journeys: Array.from(touched), system: systemChanged };
  };

  /* Bound memory on a page left open for days: the oldest journeys and events go first. */
  Model.prototype.trim = function () {
    while (this.journeys.size > MAX_JOURNEYS) {
      var oldest = this.journeys.keys().next().value;
      this.journeys.delete(oldest);
    }
    if (this.system.length > MAX_SYSTEM) { this.system.splice(0, this.system.length - MAX_SYSTEM); }
    var keep = MAX_JOURNEYS * 8;
    if (this.events.length > keep) { this.events.splice(0, this.events.length - keep); }
    if (this.seen.size > keep * 2) { this.seen = new Set(this.events.map(function (e) { return e.id; })); }
  };

  Model.prototype.matches = function (journey, filters) {
    return (!filters.chat || String(journey.chatId) === filters.chat) &&
      (!filters.workspace || journey.workspace === filters.workspace) &&
      (!filters.transport || journey.transport === filters.transport) &&
      (!filters.type || journey.type === filters.type) &&
      (!filters.status || journey.status === filters.status);
  };

  function median(values) {
    if (!values.length) { return null; }
    var sorted = values.slice().sort(function (a, b) { return a - b; });
    var mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }

  /* Counters over the journeys that pass the filters. */
  Model.prototype.counters = function (filters) {
    var c = { messages: 0, answered: 0, delivered: 0, rejected: 0, failed: 0, deferred: 0,
              inFlight: 0, tokens: 0, cost: 0, p50: null, errors: 0 };
    var latencies = [];
    var self = this;
    this.journeys.forEach(function (j) {
      if (!self.matches(j, filters)) { return; }
      c.messages += 1;
      if (j.status === "received") { c.inFlight += 1; }
      if (j.status in c) { c[j.status] += 1; }
      if (j.delivered) { c.delivered += 1; }
      c.tokens += j.tokens;
      c.cost += j.costUsd;
      if (j.latencyMs !== null) { latencies.push(j.latencyMs); }
    });
    c.p50 = median(latencies);
    c.errors = this.errorEvents(filters).length;
    return c;
  };

  /* Error-level events: a message's when its journey passes the filters, every system one. */
  Model.prototype.errorEvents = function (filters) {
    var self = this;
    return this.events.filter(function (event) {
      if (event.level !== "error") { return false; }
      var journey = event.message_id === null ? null : self.journeys.get(event.message_id);
      return !journey || self.matches(journey, filters);
    });
  };

  /* Per-minute figures for the last `minutes` minutes: messages, p50 latency, errors. */
  Model.prototype.perMinute = function (minutes, now, filters) {
    var end = Math.floor(now / 60000);
    var buckets = [];
    for (var m = end - minutes + 1; m <= end; m++) {
      buckets.push({ minute: m, messages: 0, errors: 0, latencies: [], p50: null });
    }
    var first = end - minutes + 1;
    var self = this;
    function bucketOf(when) {
      var minute = Math.floor(new Date(when).getTime() / 60000);
      return minute < first || minute > end ? null : buckets[minute - first];
    }
    this.journeys.forEach(function (j) {
      if (!self.matches(j, filters) || !j.startedAt) { return; }
      var bucket = bucketOf(j.startedAt);
      if (!bucket) { return; }
      bucket.messages += 1;
      if (j.latencyMs !== null) { bucket.latencies.push(j.latencyMs); }
    });
    this.errorEvents(filters).forEach(function (event) {
      var bucket = bucketOf(event.created_at);
      if (bucket) { bucket.errors += 1; }
    });
    buckets.forEach(function (b) { b.p50 = median(b.latencies); });
    return buckets;
  };

  /* The values each filter can take, from what has been seen. */
  Model.prototype.options = function () {
    var sets = { chat: new Set(), workspace: new Set(), transport: new Set(), type: new Set(),
                 status: new Set() };
    this.journeys.forEach(function (j) {
      if (j.chatId !== null) { sets.chat.add(String(j.chatId)); }
      if (j.workspace) { sets.workspace.add(j.workspace); }
      if (j.transport) { sets.transport.add(j.transport); }
      if (j.type) { sets.type.add(j.type); }
      sets.status.add(j.status);
    });
    return sets;
  };

  window.LiveFeed = window.LiveFeed || {};
  window.LiveFeed.Model = Model;
  window.LiveFeed.median = median;
})();
