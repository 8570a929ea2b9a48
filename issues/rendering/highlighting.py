"""Fenced code highlighted by Pygments, with its stylesheet."""

from __future__ import annotations

import html
from functools import cache

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound


# --- Code highlighting ---------------------------------------------------------------
@cache
def _formatter() -> HtmlFormatter:
    return HtmlFormatter(nowrap=True)


def highlight_code(code: str, lang: str, _attrs) -> str:
    lang = (lang or "").strip().split()[0] if lang and lang.strip() else ""
    if not lang:
        return ""
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return ""
    body = highlight(code, lexer, _formatter())
    return (
        f'<pre class="highlight"><code class="language-{html.escape(lang)}">'
        f"{body}</code></pre>\n"
    )


def pygments_css() -> str:
    """Return the stylesheet for highlighted code (light theme)."""
    return _formatter().get_style_defs(".highlight")
