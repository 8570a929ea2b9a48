"""Quire's one Markdown renderer, used by the admin preview, the web, feeds and email.

The public API:

``render_markdown(text, *, papers=None, preview=False) -> str``
    Turn Markdown into sanitized HTML. CommonMark plus tables, footnotes,
    strikethrough, fenced code highlighted by Pygments (``<pre class="highlight">``
    with Pygments' short CSS classes, styled by ``static/css/site.css``; an email
    renderer inlines that stylesheet), heading anchors, images and paper cards for
    ``[[arxiv:…]]``, ``[[doi:…]]`` and ``[[paper:slug]]`` references. Links to the
    site are site-relative (``/papers/convnext/``), so stored HTML survives a move
    to another address; emails and feeds make them absolute
    (``newsletter.links.absolutize``) and drop the heading permalinks
    (``without_heading_anchors``).
    ``papers`` maps references to ``Paper`` objects; when it is None the references
    are looked up in one query. An unknown reference renders as plain text
    (``arXiv:2201.03545``), never an error marker and never silently dropped;
    ``preview=True`` (the admin's live preview) shows it as an error instead.
    The result always passes through nh3 with an explicit allowlist: no script,
    style, iframe, event attribute or ``javascript:``/``data:`` URL survives.

``render_issue_body(text) -> RenderedBody``
    Render an issue's body split at its paywall break (a line ``<!-- paywall -->``):
    ``body_html`` (everything), ``free_html`` (above the break), ``paid_html`` (below
    it, empty without a break), the plain text of the free part, the word count,
    the references found in each part and the headings (``headings``: level, id,
    text and whether it lies below the break) for the page's table of contents.
    Heading ids start with ``h-`` and are unique across the break; the sanitizer
    gives the prefix to any other id but the footnotes', so that nothing an author
    writes names a property of ``window`` or ``document`` (DOM clobbering).

``find_unknown_references(text) -> list[Reference]``
    The references in Markdown that name no paper; publishing refuses an issue
    with any (``issues.sending.services.UnknownReferencesError``).

``find_images_without_alt(text) -> list[Image]``
    The body's images with no alt text, each named by its place and address
    (``Image.problem``, ``missing_alt_message``); publishing refuses an issue with
    any (``issues.sending.services.MissingAltTextError``). Captioned images become
    numbered figures and footnotes get sidenotes (``figures``); emails and feeds
    drop the sidenotes (``without_sidenotes``).

``markdownify(text) -> str``
    The admin's live preview (``MARKDOWNX_MARKDOWNIFY_FUNCTION``): like
    ``render_markdown`` with unknown references shown as errors and the paywall break
    shown as a marker.

``check_markdown(text)``
    Raise ``ContentTooLarge`` (its message names the line and the fix) for text over
    Quire's limits: length, nesting, table size (``QUIRE_BODY_MAX_*``,
    ``QUIRE_TABLE_MAX_*``). Every function above checks first and, for such text,
    returns a notice saying what is too large instead of parsing it; the model
    fields' validator (``validate_markdown_limits``) refuses it on save.

The parts: ``sanitizer`` (the allowlist), ``references`` (paper references and
cards), ``highlighting`` (Pygments), ``markup`` (the Markdown parser and
``render_markdown``), ``bodies`` (the paywall split and the admin preview),
``figures`` (figures, alt text and sidenotes), ``limits`` and ``htmltree`` (the
limits, measured on the Markdown and on the HTML before the sanitizer), ``rawtext``
(an unclosed <script> or <style> shown as text, not hiding the rest), ``math``
(``$…$`` and ``$$…$$`` as MathML, and the MathML the sanitizer admits) and
``mathimages`` (each formula as a stored PNG, for email: ``math_as_images(html)``).
"""

from .bodies import (
    PAYWALL_RE,
    RenderedBody,
    find_images_without_alt,
    markdownify,
    render_issue_body,
    split_paywall,
)
from .figures import Image, missing_alt_message, without_sidenotes
from .highlighting import pygments_css
from .limits import ContentTooLarge, check_markdown, validate_markdown_limits
from .markup import (
    find_references,
    find_unknown_references,
    readable_text,
    render_markdown,
    without_heading_anchors,
)
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
    "ContentTooLarge",
    "Image",
    "PAYWALL_RE",
    "REFERENCE_RE",
    "Reference",
    "RenderedBody",
    "check_markdown",
    "find_images_without_alt",
    "find_references",
    "find_unknown_references",
    "readable_text",
    "markdownify",
    "missing_alt_message",
    "paper_card_html",
    "paper_inline_html",
    "paper_keys",
    "pygments_css",
    "render_issue_body",
    "render_markdown",
    "resolve_references",
    "sanitize",
    "split_paywall",
    "validate_markdown_limits",
    "without_heading_anchors",
    "without_sidenotes",
]
