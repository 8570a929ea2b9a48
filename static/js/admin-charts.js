/*
 * The admin's charts (Chart.js, vendored in static/vendor/chartjs/): the dashboard,
 * the growth page and an issue's report, each through templates/admin/_chart.html.
 *
 * Each <canvas data-chart="ID"> is drawn from the JSON in the element #ID
 * (Django's json_script), so no figure is written into code. Colours follow the
 * admin's light or dark theme and are redrawn when it changes.
 */
(function () {
  "use strict";

  const PALETTE = {
    light: ["#1d4ed8", "#c2410c", "#15803d", "#7e22ce"],
    dark: ["#93c5fd", "#fdba74", "#86efac", "#d8b4fe"],
  };
  const charts = [];

  function isDark() {
    return document.documentElement.classList.contains("dark");
  }

  function options(spec, sparkline, dark) {
    // Parts of one whole (sources) stack; figures side by side (the hours of a
    // report: people who opened, who clicked, machines) say so with stacked: false.
    const stacked = spec.stacked === undefined ? spec.kind === "bar" : spec.stacked;
    const text = dark ? "#e5e7eb" : "#374151";
    const grid = dark ? "rgba(229, 231, 235, 0.15)" : "rgba(55, 65, 81, 0.12)";
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: {
          display: !sparkline && spec.datasets.length > 1,
          labels: { color: text },
        },
        tooltip: { enabled: true },
      },
      scales: {
        x: {
          stacked: stacked,
          display: !sparkline,
          ticks: { color: text, maxTicksLimit: 8 },
          grid: { color: grid },
        },
        y: {
          stacked: stacked,
          display: !sparkline,
          beginAtZero: true,
          ticks: { color: text, precision: 0 },
          grid: { color: grid },
        },
      },
    };
  }

  function draw(canvas) {
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const spec = JSON.parse(source.textContent);
    const sparkline = canvas.closest(".admin-chart-sparkline") !== null;
    const dark = isDark();
    const colours = dark ? PALETTE.dark : PALETTE.light;
    const chart = new window.Chart(canvas, {
      type: spec.kind === "bar" ? "bar" : "line",
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map((dataset, n) => ({
          label: dataset.label,
          data: dataset.values,
          borderColor: colours[n % colours.length],
          backgroundColor: colours[n % colours.length],
          borderWidth: 2,
          pointRadius: 0,
          tension: 0,
        })),
      },
      options: options(spec, sparkline, dark),
    });
    charts.push(chart);
  }

  function drawAll() {
    while (charts.length) charts.pop().destroy();
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  function start() {
    if (!window.Chart) return;
    drawAll();
    // unfold switches the theme with a class on <html>.
    let dark = isDark();
    new MutationObserver(() => {
      if (isDark() !== dark) {
        dark = isDark();
        drawAll();
      }
    }).observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
