// "Copy reference" in an issue's "Cite this issue": shown only where the
// clipboard can be written; the reference stays selectable text without it.
(function () {
  if (!navigator.clipboard) return;
  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) return;
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () { button.textContent = "Copied"; },
        function () { button.textContent = "Could not copy: select the text"; }
      );
      setTimeout(function () { button.textContent = label; }, 3000);
    });
  });
})();
