// The issue page's share links: copy the address, and Mastodon on the reader's server.
// Every link and the Mastodon form also work without this script.
(function () {
  var STORAGE_KEY = "quire-mastodon-server";
  var HOST = /^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(?::[0-9]{1,5})?$/;

  // The same reading of what the reader typed as the server's (issues/metadata.py).
  function serverName(typed) {
    var value = (typed || "").trim().toLowerCase();
    value = value.replace(/^[a-z][a-z0-9+.-]*:\/\//, "").split("/")[0];
    value = value.split("@").pop().replace(/\.+$/, "");
    return HOST.test(value) ? value : null;
  }

  function say(status, text) {
    if (status) status.textContent = text;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var status = document.querySelector("[data-share-status]");

    document.querySelectorAll("[data-share-copy]").forEach(function (button) {
      var item = button.closest("[data-share-copy-item]");
      if (item) item.hidden = false;
      button.addEventListener("click", function () {
        var url = button.getAttribute("data-share-copy");
        var shown = function () { say(status, "Copy this link: " + url); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(url).then(function () {
            say(status, "Link copied.");
          }, shown);
        } else {
          shown();
        }
      });
    });

    document.querySelectorAll("[data-share-mastodon]").forEach(function (form) {
      var input = form.querySelector("input[name=instance]");
      var saved = null;
      try { saved = localStorage.getItem(STORAGE_KEY); } catch (e) {}
      if (input && saved && !input.value) input.value = saved;
      form.addEventListener("submit", function (event) {
        var server = serverName(input && input.value);
        // Not a server name: the page it submits to says so.
        if (!server) return;
        event.preventDefault();
        try { localStorage.setItem(STORAGE_KEY, server); } catch (e) {}
        window.location.href = "https://" + server + "/share?text=" +
          encodeURIComponent(form.getAttribute("data-share-mastodon"));
      });
    });
  });
})();
