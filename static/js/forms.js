// Forms on pages cached for every anonymous reader carry no CSRF token (a shared
// cache must not hand one reader's token to another; see issues/shared_pages.py).
// When such a form is sent, fetch this reader's token first, then send it.
(function () {
  var script = document.currentScript;
  var url = (script && script.getAttribute("data-csrf-url")) || "/csrf/";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var input = form.querySelector('input[name="csrfmiddlewaretoken"]');
    if (!input || input.value || form.getAttribute("data-csrf-pending")) return;
    event.preventDefault();
    form.setAttribute("data-csrf-pending", "1");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (data) { input.value = data.token; })
      .catch(function () {})
      .then(function () { form.submit(); });
  });
})();
