// The live send panel on an issue's admin page: polls the send's JSON status and
// updates the figures, the progress bar, the failures and the buttons in place.
(function () {
  "use strict";
  var panel = document.getElementById("send-panel");
  if (!panel) return;
  var url = panel.getAttribute("data-status-url");
  var INTERVAL = 2000;

  function field(name) {
    return panel.querySelector('[data-field="' + name + '"]');
  }

  function setText(name, value) {
    var el = field(name);
    if (el) el.textContent = value;
  }

  function formatEta(seconds) {
    if (!seconds) return "–";
    if (seconds < 90) return seconds + " s";
    var minutes = Math.round(seconds / 60);
    if (minutes < 90) return minutes + " min";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function showButtons(data) {
    panel.querySelectorAll("[data-show-when]").forEach(function (button) {
      var when = button.getAttribute("data-show-when");
      var show =
        (when === "sending" && data.status === "sending") ||
        (when === "paused" && data.status === "paused") ||
        (when === "failures" && data.failed > 0) ||
        (when === "paused_reason" && !!data.paused_reason) ||
        (when === "active" && data.active) ||
        (when === "finished" && !data.active);
      button.hidden = !show;
    });
  }

  function renderProblems(rows) {
    var body = field("problems");
    if (!body) return;
    body.textContent = "";
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      var status = row.status + (row.possibly_duplicate ? " (possibly duplicated)" : "");
      [row.email, status, String(row.attempts), row.error].forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    body.closest("table").hidden = rows.length === 0;
  }

  function render(data) {
    if (!data.status) return;
    if (!field("sent")) {
      // The send began after this page was loaded (a scheduled issue went out, or
      // it was published in another tab): say so rather than stay silent.
      var notice = panel.querySelector(".send-started");
      if (notice) notice.hidden = false;
      return;
    }
    ["status_display", "sent", "total", "percent", "queued", "failed", "bounced",
     "skipped", "rate", "possibly_duplicated", "paused_reason", "complaint_rate",
     "complaints", "accepted", "complaint_limit", "bounce_rate", "hard_bounces",
     "attempted", "bounce_limit", "min_sample"].forEach(function (name) {
      setText(name, data[name]);
    });
    // A rate over its limit is marked (styled by issue-admin.css).
    panel.querySelectorAll("[data-over-when]").forEach(function (el) {
      if (data[el.getAttribute("data-over-when")]) el.setAttribute("data-over", "true");
      else el.removeAttribute("data-over");
    });
    setText("eta", formatEta(data.eta_seconds));
    var bar = field("progress");
    if (bar) {
      bar.max = data.total || 1;
      bar.value = data.sent;
      bar.textContent = data.percent + "%";
    }
    var dup = panel.querySelector(".send-duplicates");
    if (dup) dup.hidden = !data.possibly_duplicated;
    renderProblems(data.problems || []);
    showButtons(data);
    panel.setAttribute("data-active", data.active ? "true" : "false");
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) render(data);
        // Keep polling while the send runs; slow down once it is finished.
        setTimeout(poll, data && data.active ? INTERVAL : INTERVAL * 5);
      })
      .catch(function () { setTimeout(poll, INTERVAL * 5); });
  }

  poll();
})();
