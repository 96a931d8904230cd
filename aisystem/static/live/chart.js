/* The per-minute chart, drawn as inline SVG: bars of messages, red bars of errors, and a line
 * of p50 latency on its own scale (right axis). No library. */
(function () {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";
  var HEIGHT = 160;
  var PAD = { left: 34, right: 46, top: 10, bottom: 20 };

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function niceMax(value) {
    if (value <= 0) { return 1; }
    var step = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (value <= steps[i] * step) { return steps[i] * step; }
    }
    return 10 * step;
  }

  function formatMs(ms) {
    return ms >= 1000 ? (ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + " s" : Math.round(ms) + " ms";
  }

  function axes(svg, countMax, msMax, plotW, plotH) {  // plotW: the drawable width
    svg.appendChild(el("line", { x1: PAD.left, y1: PAD.top + plotH, x2: PAD.left + plotW,
                                 y2: PAD.top + plotH, class: "axis" }));
    svg.appendChild(el("text", { x: PAD.left - 4, y: PAD.top + 8, class: "tick", "text-anchor": "end" },
                       String(countMax)));
    svg.appendChild(el("text", { x: PAD.left - 4, y: PAD.top + plotH, class: "tick",
                                 "text-anchor": "end" }, "0"));
    if (msMax === null) { return; }  // no latency in the window: no scale to label ("1 ms")
    svg.appendChild(el("text", { x: PAD.left + plotW + 4, y: PAD.top + 8, class: "tick latency" },
                       formatMs(msMax)));
  }

  function minuteLabel(minute) {
    var d = new Date(minute * 60000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  /* Replace the content of `svg` with the chart of `buckets` (from Model.perMinute). */
  function draw(svg, buckets) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var WIDTH = Math.max(320, svg.clientWidth || 720);  // one SVG unit per CSS pixel: crisp text
    svg.setAttribute("viewBox", "0 0 " + WIDTH + " " + HEIGHT);
    var plotW = WIDTH - PAD.left - PAD.right, plotH = HEIGHT - PAD.top - PAD.bottom;
    var countMax = niceMax(Math.max.apply(null, buckets.map(function (b) {
      return Math.max(b.messages, b.errors);
    })));
    var msMax = niceMax(Math.max.apply(null, buckets.map(function (b) { return b.p50 || 0; })));
    var slot = plotW / buckets.length, barW = Math.max(2, slot * 0.42);
    var anyLatency = buckets.some(function (b) { return b.p50 !== null; });
    axes(svg, countMax, anyLatency ? msMax : null, plotW, plotH);
    var points = [];
    buckets.forEach(function (b, i) {
      var x = PAD.left + i * slot;
      var h = plotH * b.messages / countMax, eh = plotH * b.errors / countMax;
      var title = minuteLabel(b.minute) + ": " + b.messages + " messages, " + b.errors + " errors" +
        (b.p50 === null ? "" : ", p50 " + formatMs(b.p50));
      var group = el("g", {});
      group.appendChild(el("title", {}, title));
      group.appendChild(el("rect", { x: x + 1, y: PAD.top + plotH - h, width: barW, height: h,
                                     class: "bar messages" }));
      group.appendChild(el("rect", { x: x + 1 + barW, y: PAD.top + plotH - eh, width: barW * 0.8,
                                     height: eh, class: "bar errors" }));
      svg.appendChild(group);
      if (b.p50 !== null) {
        points.push((x + slot / 2).toFixed(1) + "," + (PAD.top + plotH - plotH * b.p50 / msMax).toFixed(1));
      }
      if (i % 5 === 0) {
        svg.appendChild(el("text", { x: x + slot / 2, y: HEIGHT - 4, class: "tick",
                                     "text-anchor": "middle" }, minuteLabel(b.minute)));
      }
    });
    if (points.length) {
      svg.appendChild(el("polyline", { points: points.join(" "), class: "line latency" }));
      points.forEach(function (p) {
        var xy = p.split(",");
        svg.appendChild(el("circle", { cx: xy[0], cy: xy[1], r: 2.5, class: "dot latency" }));
      });
    }
  }

  window.LiveFeed = window.LiveFeed || {};
  window.LiveFeed.drawChart = draw;
  window.LiveFeed.formatMs = formatMs;
})();
