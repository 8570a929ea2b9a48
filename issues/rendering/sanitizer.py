"""The sanitizer every rendered HTML passes through, and its allowlist."""

from __future__ import annotations

import re
from functools import cache

import nh3

from .math import MATHML_ATTRIBUTES, MATHML_TAGS, filter_mathml_attribute

# --- The sanitizer's allowlist -------------------------------------------------------
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "section", "small",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul",
}  # fmt: skip
_CLASSED = {"code", "div", "hr", "li", "ol", "pre", "section", "span", "sup", "a"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title", "id"},
    "abbr": {"title"},
    "figure": {"id"},
    "img": {"src", "alt", "title", "width", "height"},
    "li": {"id"},
    "ol": {"start"},
    "td": {"style", "colspan", "rowspan"},
    "th": {"style", "colspan", "rowspan", "scope"},
    **{f"h{n}": {"id"} for n in range(1, 7)},
}
for _tag in _CLASSED:
    ALLOWED_ATTRIBUTES.setdefault(_tag, set()).add("class")
# Math: the MathML that issues.rendering.math writes, with its own attribute filter.
ALLOWED_TAGS |= MATHML_TAGS
for _tag, _names in MATHML_ATTRIBUTES.items():
    ALLOWED_ATTRIBUTES.setdefault(_tag, set()).update(_names)
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}

# The ids rendered HTML may carry: headings' (prefixed "h-" by the renderer), the
# footnote plugin's (fn1, fnref1, fnref1:2) and figures' (figure-1). An element with
# id="cookie" or id="location" would be a name on window (DOM clobbering), so any
# other id, one an author wrote in raw HTML, gets the headings' prefix as well.
_SAFE_ID = re.compile(r"h-[^\s]+|fn[0-9]+|fnref[0-9]+(?::[0-9]+)?|figure-[0-9]+")
_ID_PREFIX = "h-"


def _filter_attribute(tag: str, name: str, value: str) -> str | None:
    if tag in MATHML_TAGS:
        return filter_mathml_attribute(tag, name, value)
    if name != "id":
        return value
    value = "-".join(value.split())
    if not value:
        return None
    return value if _SAFE_ID.fullmatch(value) else _ID_PREFIX + value


@cache
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes=ALLOWED_URL_SCHEMES,
        filter_style_properties={"text-align"},
        set_tag_attribute_values={
            "img": {"loading": "lazy"},
            # A code block wider than the page scrolls; keyboard users reach
            # (and scroll) it only if it can take focus.
            "pre": {"tabindex": "0"},
        },
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def sanitize(html_text: str) -> str:
    """Return the HTML with everything outside Quire's allowlist removed."""
    return _cleaner().clean(html_text)
