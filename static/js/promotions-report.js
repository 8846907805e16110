/* The promotions report's chart (templates/admin/marketing/report.html): discount by funder (stacked)
   and revenue per promotion, from the JSON of the page's json_script tag. Apache ECharts is vendored in
   static/vendor/echarts/. */
(function () {
  "use strict";
  var source = document.getElementById("promotions-chart-data");
  var target = document.getElementById("promotions-chart");
  if (!source || !target || typeof echarts === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  var narrow = target.clientWidth < 600;
  var chart = echarts.init(target, dark ? "dark" : null, { renderer: "svg" });
  var yuan = function (value) { return "¥" + Number(value).toFixed(2); };
  chart.setOption({
    backgroundColor: "transparent",
    animation: false,
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: yuan },
    legend: { top: 0, data: [data.labels.platform, data.labels.merchant, data.labels.revenue] },
    grid: { left: 8, right: 8, top: narrow ? 56 : 40, bottom: 8, containLabel: true },
    xAxis: {
      type: "category",
      data: data.names,
      axisLabel: { interval: 0, rotate: data.names.length > 3 || narrow ? 30 : 0, width: 110, overflow: "truncate" }
    },
    yAxis: [
      { type: "value", name: "¥", axisLabel: { formatter: function (v) { return v; } } },
      { type: "value", name: "¥", splitLine: { show: false } }
    ],
    series: [
      { name: data.labels.platform, type: "bar", stack: "discount", data: data.platform, color: "#417690" },
      { name: data.labels.merchant, type: "bar", stack: "discount", data: data.merchant, color: "#e0a43a" },
      { name: data.labels.revenue, type: "line", yAxisIndex: 1, data: data.revenue, color: "#3a9e5f", symbolSize: 8 }
    ]
  });
  // The admin's sidebar appears after the first layout: follow the container's width, not the window's.
  if (typeof ResizeObserver !== "undefined") {
    new ResizeObserver(function () { chart.resize(); }).observe(target);
  } else {
    window.addEventListener("resize", function () { chart.resize(); });
  }
})();
