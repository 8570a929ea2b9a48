"""Quire's one Markdown renderer, used by the admin preview, the web, feeds and email.

The public API:

``render_markdown(text, *, papers=None, preview=False) -> str``
    Turn Markdown into sanitized HTML. CommonMark plus tables, footnotes,
    strikethrough, fenced code highlighted by Pygments (``<pre class="highlight">``
    with Pygments' short CSS classes, styled by ``static/css/site.css``; an email
    renderer inlines that stylesheet), heading anchors, images and paper cards for
    ``[[arxiv:…]]``, ``[[doi:…]]`` and ``[[paper:slug]]`` references. Links in paper
    cards are absolute (``SITE_URL``), so the output works in email as it is.
    ``papers`` maps references to ``Paper`` objects; when it is None the references
    are looked up in one query. An unknown reference renders as a visible error
    marker, never silently dropped. The result always passes through nh3 with an
    explicit allowlist: no script, style, iframe, event attribute or
    ``javascript:``/``data:`` URL survives.

``render_issue_body(text) -> RenderedBody``
    Render an issue's body split at its paywall break (a line ``<!-- paywall -->``):
    ``body_html`` (everything), ``free_html`` (above the break), ``paid_html`` (below
    it, empty without a break), the plain text of the free part, the word count and
    the references found in each part.

``markdownify(text) -> str``
    The admin's live preview (``MARKDOWNX_MARKDOWNIFY_FUNCTION``): like
    ``render_markdown`` with unknown references shown as errors and the paywall break
    shown as a marker.

The parts: ``sanitizer`` (the allowlist), ``references`` (paper references and
cards), ``highlighting`` (Pygments), ``markup`` (the Markdown parser and
``render_markdown``) and ``bodies`` (the paywall split and the admin preview).
"""

from .bodies import (
    PAYWALL_RE,
    RenderedBody,
    markdownify,
    render_issue_bodies,
    render_issue_body,
    split_paywall,
)
from .highlighting import pygments_css
from .markup import find_references, html_to_text, render_markdown
from .references import (
    ARXIV_VERSION_RE,
    REFERENCE_RE,
    Reference,
    paper_card_html,
    paper_inline_html,
    paper_keys,
    resolve_references,
)
from .sanitizer import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    ALLOWED_URL_SCHEMES,
    sanitize,
)

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "ALLOWED_URL_SCHEMES",
    "ARXIV_VERSION_RE",
    "PAYWALL_RE",
    "REFERENCE_RE",
    "Reference",
    "RenderedBody",
    "find_references",
    "html_to_text",
    "markdownify",
    "paper_card_html",
    "paper_inline_html",
    "paper_keys",
    "pygments_css",
    "render_issue_bodies",
    "render_issue_body",
    "render_markdown",
    "resolve_references",
    "sanitize",
    "split_paywall",
]
