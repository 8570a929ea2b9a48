// The editor's live preview: "add this paper" on an unknown [[arxiv:…]] or
// [[doi:…]] reference adds the paper from arXiv or Crossref in one click, then asks
// the preview to render again (it shows the paper's card). Without this script the
// link opens the admin's "Add paper from id" page, filled in.
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function say(link, text, failed) {
    var note = document.createElement("span");
    note.className = failed ? "paper-ref-add-error" : "paper-ref-add-note";
    note.setAttribute("role", "status");
    note.textContent = text;
    link.replaceWith(note);
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.paper-ref-add");
    if (!link || !link.closest(".markdownx-preview")) {
      return;
    }
    var widget = link.closest(".markdownx");
    var editor = widget ? widget.querySelector("textarea") : null;
    var address = new URL(link.href, window.location.href);
    var identifier = address.searchParams.get("identifier");
    if (!editor || !identifier) {
      return; // the link's own page does it
    }
    event.preventDefault();
    if (link.getAttribute("aria-busy") === "true") {
      return;
    }
    link.setAttribute("aria-busy", "true");
    link.textContent = "adding…";
    var endpoint = address.pathname.replace(/\/?$/, "/") + "create/";
    fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "X-CSRFToken": csrfToken(),
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ identifier: identifier }).toString(),
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (data) {
            if (!response.ok) {
              say(link, data.error || "The paper could not be added (HTTP " + response.status + ").", true);
              return;
            }
            say(link, data.created ? "added “" + data.title + "”" : "“" + data.title + "” was already here", false);
            // markdownx renders the preview again on the editor's input event.
            editor.dispatchEvent(new Event("input", { bubbles: true }));
          });
      })
      .catch(function () {
        say(link, "The paper could not be added: the site did not answer.", true);
      });
  });
})();
