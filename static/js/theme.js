// Light/dark theme: follows the system unless the reader picked one (kept locally).
(function () {
  var root = document.documentElement;
  var saved = null;
  try { saved = localStorage.getItem("quire-theme"); } catch (e) {}
  if (saved === "light" || saved === "dark") root.setAttribute("data-theme", saved);
  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("[data-theme-toggle]");
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        var current = root.getAttribute("data-theme") ||
          (window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
        var next = current === "dark" ? "light" : "dark";
        root.setAttribute("data-theme", next);
        try { localStorage.setItem("quire-theme", next); } catch (e) {}
      });
    });
  });
})();
