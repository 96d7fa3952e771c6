// Draws the Metrics tab's plots with uPlot from the points the page embeds
// (GET /api/instances/{id}/metrics?range=…, in #metrics-data). Each chart
// div names its field in its id (chart-<field>) and, when bytes, its unit.
(function () {
  "use strict";
  var data = document.getElementById("metrics-data");
  if (!data || typeof uPlot === "undefined") { return; }
  var metrics = JSON.parse(data.textContent);
  var points = metrics.points || [];
  var xs = points.map(function (p) { return Date.parse(p.at) / 1000; });
  function bytes(v) {
    if (v == null) { return "–"; }
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
  }
  document.querySelectorAll(".chart[id^='chart-']").forEach(function (div) {
    var field = div.id.slice("chart-".length);
    var format = div.dataset.unit === "bytes" ? bytes : function (v) { return v == null ? "–" : String(Math.round(v * 10) / 10); };
    var ys = points.map(function (p) { return p[field] == null ? null : p[field]; });
    var opts = {
      title: div.dataset.title, width: Math.max(div.clientWidth - 16, 300), height: 180,
      series: [{}, { label: div.dataset.title, stroke: "#2f6feb", fill: "rgba(47,111,235,0.08)", width: 1.5, value: function (u, v) { return format(v); } }],
      axes: [{}, { size: 84, values: function (u, vals) { return vals.map(format); } }]
    };
    new uPlot(opts, [xs, ys], div);
    div.dataset.points = String(points.length);
  });
})();
