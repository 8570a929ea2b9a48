"""Math in Markdown: ``$…$``, ``$$…$$``, a ```` ```math ```` fence and amsmath
environments, rendered as MathML (latex2mathml) with the LaTeX kept as an
annotation; and the MathML the sanitizer admits.

Readers' browsers lay MathML out themselves (MathML Core): no script, nothing for
the CSP to allow. Email programs do not, so the email gets an image per formula
(``issues.rendering.mathimages``), made from the annotation.

A formula that does not parse, or is over a limit (``QUIRE_MATH_MAX_*``), shows
as an error in the author's preview and as its source, in code, to readers.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from xml.etree.ElementTree import Element, SubElement, tostring

from django.conf import settings
from latex2mathml.converter import convert_to_element
from mdit_py_plugins.amsmath import amsmath_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin

from .limits import brace_depth

TEX_ENCODING = "application/x-tex"

# --- What the sanitizer admits -------------------------------------------------------
# Presentation MathML as latex2mathml writes it. Not annotation-xml: it can hold
# HTML (an integration point), and nothing Quire writes needs it. Not maction
# (toggles, tooltips) and no href, xlink, style, class or event attribute.
MATHML_TAGS = {
    "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext",
    "mspace", "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot", "mtable", "mtr",
    "mtd", "mover", "munder", "munderover", "mstyle", "mpadded", "mphantom",
    "menclose", "merror",
}  # fmt: skip
_COMMON = {"mathvariant", "displaystyle", "scriptlevel", "mathcolor"}
MATHML_ATTRIBUTES: dict[str, set[str]] = {
    "math": {"display"} | _COMMON,
    "annotation": {"encoding"},
    "mo": {"stretchy", "fence", "separator", "form", "lspace", "rspace", "largeop",
           "movablelimits", "symmetric", "minsize", "maxsize", "accent"} | _COMMON,
    "mfrac": {"linethickness"} | _COMMON,
    "mspace": {"width", "height", "depth"} | _COMMON,
    "mpadded": {"width", "height", "depth", "lspace", "voffset"} | _COMMON,
    "mover": {"accent"} | _COMMON,
    "munder": {"accentunder"} | _COMMON,
    "munderover": {"accent", "accentunder"} | _COMMON,
    "mtable": {"columnalign", "rowalign", "columnspacing", "rowspacing",
               "columnlines", "rowlines", "frame"} | _COMMON,
    "mtr": {"columnalign", "rowalign"} | _COMMON,
    "mtd": {"columnalign", "rowalign", "columnspan", "rowspan"} | _COMMON,
    "menclose": {"notation"} | _COMMON,
}  # fmt: skip
for _tag in MATHML_TAGS:
    MATHML_ATTRIBUTES.setdefault(_tag, set()).update(_COMMON)

# Lengths stay small: "\hspace{100000em}" would make a page (or an email image)
# as wide as a city. Values are a few words, numbers or colours, never a URL.
_LENGTH = re.compile(r"-?(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})(?:em|ex|px|pt|mu|%)?")
_LENGTH_ATTRIBUTES = {"width", "height", "depth", "lspace", "rspace", "voffset",
                      "minsize", "maxsize", "linethickness"}  # fmt: skip
_MAX_LENGTH = 50.0  # in the length's own unit (em, px, …); a percentage: 500
_WORDS = re.compile(r"[A-Za-z0-9 .#%-]{1,100}")
_COLOR = re.compile(r"#[0-9A-Fa-f]{3,8}|[A-Za-z]{1,20}")


def filter_mathml_attribute(tag: str, name: str, value: str) -> str | None:
    """Return a MathML attribute's value if it is safe and small, else None."""
    value = value.strip()
    if name == "display":
        return value if value in ("block", "inline") else None
    if name == "encoding":
        return value if value == TEX_ENCODING else None
    if name in ("mathcolor",):
        return value if _COLOR.fullmatch(value) else None
    if name in _LENGTH_ATTRIBUTES:
        if value in ("thin", "medium", "thick", "0"):
            return value
        if not _LENGTH.fullmatch(value):
            return None
        number = float(value.rstrip("emxptu%") or 0)
        limit = _MAX_LENGTH * (10 if value.endswith("%") else 1)
        return value if abs(number) <= limit else None
    return value if _WORDS.fullmatch(value) else None


# --- LaTeX to MathML -----------------------------------------------------------------
class FormulaError(ValueError):
    """A formula that cannot be shown as math; the message says why."""


# Macro definitions expand without bound ("\def\a{\a\a}\def\b{\a\a}…" doubles at
# each step); no formula in a newsletter needs them.
_MACRO_DEFINITION = re.compile(
    r"\\(?:def|gdef|edef|xdef|let|newcommand|renewcommand|providecommand|"
    r"DeclareMathOperator|newenvironment|renewenvironment|futurelet|expandafter|"
    r"csname|catcode|input|include|write|openout|href|url)(?![A-Za-z])"
)
# Environments latex2mathml lays out as one line with a visible "&": written as
# the ones it sets as a table, which MathML Core draws aligned.
_ENVIRONMENTS = {
    "aligned": "align*", "align": "align*", "alignat": "align*",
    "alignat*": "align*", "flalign": "align*", "flalign*": "align*",
    "equation": None, "equation*": None,
    "gather": "gather*", "gathered": "gather*", "gather*": "gather*",
    "multline": "gather*", "multline*": "gather*",
}  # fmt: skip
_BEGIN_END = re.compile(r"\\(begin|end)\{([A-Za-z]+\*?)\}")


def check_formula(latex: str) -> None:
    """Raise FormulaError if a formula is over Quire's limits or defines macros."""
    max_chars = settings.QUIRE_MATH_MAX_CHARS
    if len(latex) > max_chars:
        raise FormulaError(
            f"This formula is {len(latex):,} characters long; at most "
            f"{max_chars:,} are allowed. Split it into several formulas."
        )
    deepest = brace_depth(latex)
    if deepest > settings.QUIRE_MATH_MAX_DEPTH:
        raise FormulaError(
            f"This formula nests braces {deepest} deep; at most "
            f"{settings.QUIRE_MATH_MAX_DEPTH} levels are allowed."
        )
    found = _MACRO_DEFINITION.search(latex)
    if found:
        raise FormulaError(
            f"{found[0]} is not supported in formulas: write the formula out, "
            "and links in the text around it."
        )


def _rewrite_environments(latex: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match[2]
        if name not in _ENVIRONMENTS:
            return match[0]
        target = _ENVIRONMENTS[name]
        if target is None:
            return ""
        if target == "gather*":
            return r"\begin{array}{c}" if match[1] == "begin" else r"\end{array}"
        return rf"\{match[1]}{{{target}}}"

    return _BEGIN_END.sub(replace, latex)


def _clean_tree(element: Element) -> None:
    """Put the converter's entities back as characters; keep allowed attributes."""
    for node in element.iter():
        if node.text:
            node.text = html.unescape(node.text)
        if node.tail:
            node.tail = html.unescape(node.tail)
        allowed = MATHML_ATTRIBUTES.get(node.tag)
        if allowed is None:
            # Anything else the converter might write shows as a plain row.
            node.tag, allowed = "mrow", MATHML_ATTRIBUTES["mrow"]
        for name in list(node.attrib):
            value = filter_mathml_attribute(node.tag, name, node.attrib[name])
            if name not in allowed or value is None:
                del node.attrib[name]
            else:
                node.attrib[name] = value


def _presentation(latex: str, *, display: bool) -> Element:
    """Return the formula's MathML tree, without its annotation."""
    latex = latex.strip()
    if not latex:
        raise FormulaError("This formula is empty.")
    check_formula(latex)
    try:
        tree = convert_to_element(
            _rewrite_environments(latex), display="block" if display else "inline"
        )
    except RecursionError:
        raise FormulaError("This formula nests too deep to lay out.") from None
    except Exception as exc:  # latex2mathml's errors share no base class
        reason = type(exc).__name__.removesuffix("Error")
        detail = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", reason).lower()
        raise FormulaError(f"This formula does not parse ({detail}).") from None
    _clean_tree(tree)
    math = Element("math", {"display": "block" if display else "inline"})
    row = SubElement(math, "mrow")
    row.extend(list(tree))
    return math


@lru_cache(maxsize=4096)
def latex_to_mathml(latex: str, *, display: bool) -> str:
    """Return a formula as MathML, its LaTeX kept as an annotation.

    Raises FormulaError for a formula that does not parse or is over a limit.
    """
    math = _presentation(latex, display=display)
    semantics = Element("semantics")
    semantics.extend(list(math))
    annotation = SubElement(semantics, "annotation", {"encoding": TEX_ENCODING})
    annotation.text = latex.strip()
    math[:] = [semantics]
    return tostring(math, encoding="unicode", short_empty_elements=False)


def presentation_mathml(latex: str, *, display: bool) -> str:
    """Return a formula as bare MathML (no annotation), for a typesetter to draw.

    Raises FormulaError as latex_to_mathml does.
    """
    math = _presentation(latex, display=display)
    return tostring(math, encoding="unicode", short_empty_elements=False)


# --- Markdown ------------------------------------------------------------------------
def math_plugin(md) -> None:
    """Add math to a markdown-it parser: dollars, amsmath, the ```math fence."""
    # No space inside the dollars and no digit next to them, so prose about
    # money ("costs $5 and $10") stays prose.
    dollarmath_plugin(
        md,
        allow_labels=False,
        allow_space=False,
        allow_digits=False,
        allow_blank_lines=False,
        double_inline=True,
    )
    amsmath_plugin(md)
    md.core.ruler.after("block", "math_fence", _math_fences)
    md.add_render_rule("math_inline", _render_inline)
    md.add_render_rule("math_inline_double", _render_display)
    md.add_render_rule("math_block", _render_display)
    md.add_render_rule("amsmath", _render_display)


def _math_fences(state) -> None:
    for token in state.tokens:
        if token.type == "fence" and token.info.strip().lower() == "math":
            token.type = "math_block"


def _render_inline(self, tokens, idx, options, env) -> str:
    return render_formula(tokens[idx].content, display=False, env=env)


def _render_display(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    out = render_formula(token.content, display=True, env=env)
    return out + "\n" if token.block else out


def render_formula(latex: str, *, display: bool, env: dict) -> str:
    """Return a formula as MathML, or, when it cannot be, an error or its source.

    env: the render's environment; its "preview" shows errors to the author, and
    it counts the formulas against QUIRE_MATH_MAX_FORMULAS.
    """
    count = env["math_count"] = env.get("math_count", 0) + 1
    try:
        if count > settings.QUIRE_MATH_MAX_FORMULAS:
            raise FormulaError(
                f"This text has more than {settings.QUIRE_MATH_MAX_FORMULAS:,} "
                "formulas; the rest show as code."
            )
        return latex_to_mathml(latex, display=display)
    except FormulaError as exc:
        return _formula_fallback(latex, str(exc), display=display, env=env)


def _formula_fallback(latex: str, reason: str, *, display: bool, env: dict) -> str:
    marks = "$$" if display else "$"
    source = f"<code>{html.escape(marks + latex.strip() + marks)}</code>"
    if env.get("preview"):
        return f'<span class="math-error">{html.escape(reason)} {source}</span>'
    # Readers see what the author wrote, not a broken page.
    tag = "div" if display else "span"
    return f'<{tag} class="math-source">{source}</{tag}>'
