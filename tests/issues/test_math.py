"""Math in Markdown: MathML for pages and feeds, an image per formula for email."""

import re
import struct
import zlib

import pytest
from django.core.files.storage import default_storage

from issues.rendering import markdownify, render_issue_body, render_markdown
from issues.rendering.mathimages import math_as_images, png_size
from issues.sending.emails.text import email_plain_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _math(html):
    return re.findall(r"<math\b.*?</math>", html, re.S)


# --- MathML ------------------------------------------------------------------------
def test_inline_math_is_mathml_with_its_latex_kept():
    html = render_markdown(r"Euler: $e^{i\pi} + 1 = 0$, famously.")
    [math] = _math(html)
    assert math.startswith('<math display="inline"><semantics><mrow>')
    assert "<msup><mi>e</mi>" in math and "<mi>π</mi>" in math
    assert (
        '<annotation encoding="application/x-tex">e^{i\\pi} + 1 = 0</annotation>'
        in math
    )
    assert html.startswith("<p>Euler: <math") and "famously.</p>" in html


def test_display_math_is_a_block():
    html = render_markdown(
        "Before.\n\n$$\n\\sum_{i=1}^{n} \\frac{1}{i^2}\n$$\n\nAfter."
    )
    [math] = _math(html)
    assert math.startswith('<math display="block">')
    assert "<munderover><mo>∑</mo>" in math
    assert "<mfrac>" in math


def test_a_math_fence_is_display_math():
    html = render_markdown("```math\n\\sqrt[3]{x} + \\sqrt{y}\n```\n")
    [math] = _math(html)
    assert 'display="block"' in math
    assert "<mroot>" in math and "<msqrt>" in math
    assert "<pre" not in html


@pytest.mark.parametrize(
    ("latex", "expected"),
    [
        (r"\frac{a}{b}", ["<mfrac>"]),
        (r"\sum_{k=0}^{\infty} x^k", ["<munderover>", "∞"]),
        (
            r"\begin{pmatrix} 1 & 0 \\ 0 & 1 \end{pmatrix}",
            ["<mtable>", "<mtr>", "<mtd>"],
        ),
        (r"\begin{bmatrix} a & b \end{bmatrix}", ["<mtable>", "[", "]"]),
        (r"\alpha + \beta = \Gamma", ["α", "β", "Γ"]),
        (r"\hat{x} + \vec{v} + \bar{y} + \tilde{z}", ["<mover", "^", "→"]),
        (r"x_i^2", ["<msubsup>"]),
        (r"\mathbb{R}^n", ["ℝ"]),
        (r"\begin{cases} 1 & x > 0 \\ 0 & \text{else} \end{cases}", ["<mtext>else"]),
    ],
)
def test_formulas_render_as_mathml(latex, expected):
    html = render_markdown(f"$${latex}$$")
    [math] = _math(html)
    for part in expected:
        assert part in math, (part, math)


def test_aligned_environments_are_tables_aligned_at_the_ampersand():
    for source in (
        "$$\n\\begin{aligned} a &= b + c \\\\ d &= e \\end{aligned}\n$$",
        "\\begin{align}\na &= b + c \\\\\nd &= e\n\\end{align}",
    ):
        [math] = _math(render_markdown(source))
        assert math.count("<mtr>") == 2
        assert '<mtd columnalign="right">' in math
        assert "<mi>&amp;</mi>" not in math  # no stray visible "&"


def test_dollars_in_prose_stay_prose():
    text = "It costs $5 and $10, or $ 20 $ at most."
    html = render_markdown(text)
    assert "<math" not in html
    assert "$5 and $10" in html


def test_math_is_not_read_inside_code():
    html = render_markdown("`$x$` and\n\n    $$y$$\n")
    assert "<math" not in html


def test_a_formula_that_does_not_parse_is_an_error_in_preview_and_code_for_readers():
    preview = markdownify("Broken: $x^$ here.")
    assert 'class="math-error"' in preview
    assert "does not parse" in preview and "<code>$x^$</code>" in preview
    saved = render_markdown("Broken: $x^$ here.")
    assert saved == (
        '<p>Broken: <span class="math-source"><code>$x^$</code></span> here.</p>\n'
    )


def test_links_and_macros_in_formulas_are_refused_with_the_reason():
    preview = markdownify(r"$\href{https://example.org}{x}$ $\def\a{b}\a$")
    assert preview.count('class="math-error"') == 2
    assert r"\href is not supported" in preview and r"\def is not supported" in preview
    saved = render_markdown(r"$\href{javascript:alert(1)}{x}$")
    assert "<math" not in saved and "href=" not in saved


def test_a_formula_over_the_limits_shows_as_its_source(settings):
    settings.QUIRE_MATH_MAX_CHARS = 100
    long = "$" + "x+" * 60 + "y$"
    assert "<math" not in render_markdown(long)
    assert "at most 100 are allowed" in markdownify(long)
    deep = "$" + "{" * 30 + "x" + "}" * 30 + "$"
    assert "nests braces 30 deep" in markdownify(deep)


def test_formulas_past_the_count_limit_show_as_code(settings):
    settings.QUIRE_MATH_MAX_FORMULAS = 3
    html = render_markdown(" ".join(f"$x_{n}$" for n in range(5)))
    assert len(_math(html)) == 3
    assert html.count('class="math-source"') == 2


def test_huge_lengths_are_dropped_from_the_mathml():
    html = render_markdown(r"$\hspace{100000em}x \hspace{1em} y$")
    assert 'width="100000em"' not in html
    assert 'width="1em"' in html


def test_text_in_a_formula_is_text_not_markup():
    html = render_markdown(r"$\text{<b>bold</b> & x < y}$")
    assert "<b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_an_issue_body_stores_mathml_on_both_sides_of_the_paywall():
    rendered = render_issue_body("Free $a^2$.\n\n<!-- paywall -->\n\nPaid $b^2$.")
    assert "<msup><mi>a</mi>" in rendered.free_html
    assert "<msup><mi>b</mi>" in rendered.paid_html
    # The readable text (search, word count) is the formula as it reads, without
    # its LaTeX source a second time.
    assert rendered.free_text == "Free a 2 ."


# --- Email images ------------------------------------------------------------------
def _images(html):
    return re.findall(r"<img [^>]*>", html)


def _attr(tag, name):
    return re.search(rf'\s{name}="([^"]*)"', tag)[1]


def _stored_png(tag):
    name = _attr(tag, "src").removeprefix("/media/")
    with default_storage.open(name, "rb") as f:
        return f.read()


def test_each_formula_becomes_a_png_at_twice_its_size():
    html = render_markdown(r"Narrow $x$, wide $a + b + c + d + e + f + g + h$.")
    email = math_as_images(html)
    narrow, wide = _images(email)
    for tag, latex in ((narrow, "x"), (wide, "a + b + c + d + e + f + g + h")):
        png = _stored_png(tag)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = png_size(png)
        assert int(_attr(tag, "width")) == round(width / 2)
        assert int(_attr(tag, "height")) == round(height / 2)
        assert _attr(tag, "alt") == latex
        assert re.fullmatch(r"/media/math/[0-9a-f]{64}\.png", _attr(tag, "src"))
        assert "vertical-align:-" in _attr(tag, "style")
    assert png_size(_stored_png(wide))[0] > 4 * png_size(_stored_png(narrow))[0]
    assert "<math" not in email


def _depth(tag):
    return float(re.search(r"vertical-align:-([\d.]+)px", _attr(tag, "style"))[1])


def test_a_taller_formula_makes_a_taller_png():
    flat = _images(math_as_images(render_markdown("$a+b$")))[0]
    nested = render_markdown(r"$\frac{\frac{a}{b}}{\frac{c}{d}}$")
    tall = _images(math_as_images(nested))[0]
    assert png_size(_stored_png(tall))[1] > png_size(_stored_png(flat))[1]
    # A fraction reaches below the baseline: its image sits lower.
    assert _depth(tall) > _depth(flat)


def test_a_formula_is_stored_once_however_often_it_is_shown(media):
    html = render_markdown("$x^2$ and $x^2$\n\n$y$")
    math_as_images(html)
    stored = sorted((media / "math").iterdir())
    assert len(stored) == 2
    mtimes = [path.stat().st_mtime_ns for path in stored]
    again = math_as_images(html)
    assert [path.stat().st_mtime_ns for path in sorted((media / "math").iterdir())] == (
        mtimes
    )
    assert len(set(_attr(tag, "src") for tag in _images(again))) == 2


def test_display_math_is_a_centred_image():
    email = math_as_images(render_markdown("$$\\int_0^1 x\\,dx$$"))
    assert 'class="math-block" style="display:block;text-align:center' in email
    [tag] = _images(email)
    assert "math-display" in _attr(tag, "class")


def test_the_png_holds_its_depth_and_is_a_valid_png():
    [tag] = _images(math_as_images(render_markdown(r"$\frac{1}{2}$")))
    png = _stored_png(tag)
    # Every chunk's CRC checks out, the one Quire adds included.
    pos = 8
    kinds = []
    while pos < len(png):
        length = struct.unpack(">I", png[pos : pos + 4])[0]
        kind = png[pos + 4 : pos + 8]
        data = png[pos + 8 : pos + 8 + length]
        crc = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])[0]
        assert zlib.crc32(kind + data) == crc
        kinds.append(kind)
        pos += 12 + length
    assert kinds[0] == b"IHDR" and b"tEXt" in kinds and kinds[-1] == b"IEND"


def test_a_formula_too_large_to_draw_stays_as_its_source(settings):
    settings.QUIRE_MATH_MAX_CHARS = 5000
    wide = "$$" + " + ".join(f"x_{{{n}}}" for n in range(600)) + "$$"
    email = math_as_images(render_markdown(wide))
    assert "<img" not in email
    assert "<code>$$x_{0} + x_{1}" in email


def test_the_plain_text_part_carries_the_latex():
    email = math_as_images(
        render_markdown("Inline $\\alpha^2$ here.\n\n$$\n\\frac{a}{b}\n$$\n")
    )
    text = email_plain_text(email)
    assert "Inline $\\alpha^2$ here." in text
    assert "\n$$\\frac{a}{b}$$\n" in text


# --- The sanitizer's MathML ---------------------------------------------------------
def test_the_sanitizer_keeps_mathml_but_not_its_links_styles_or_html_annotations():
    from issues.rendering import sanitize

    html = sanitize(
        '<math display="block" onclick="alert(1)"><mrow>'
        '<mi href="javascript:alert(1)" xlink:href="javascript:alert(1)" '
        'mathcolor="url(javascript:alert(1))" style="color:red" class="x" '
        'mathvariant="bold">x</mi><mspace width="99999em"></mspace>'
        '<mspace width="2em"></mspace>'
        '<maction actiontype="toggle"><mi>y</mi></maction></mrow>'
        '<annotation-xml encoding="text/html"><img src=x onerror=alert(1)>'
        "</annotation-xml>"
        '<annotation encoding="text/html">z</annotation></math>'
    )
    assert html.startswith('<math display="block"><mrow><mi mathvariant="bold">x</mi>')
    for gone in ("href", "onclick", "onerror", "style", "class", "url(", "99999em",
                 "annotation-xml", "maction", "text/html"):  # fmt: skip
        assert gone not in html, gone
    assert '<mspace width="2em">' in html
    assert "<mi>y</mi>" in html  # the content of what is dropped stays


def test_raw_mathml_cannot_smuggle_html_through_mtext():
    html = render_markdown(
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"
        "</style></mglyph></table></mtext></math>"
    )
    assert "onerror" not in html and "<style" not in html and "<mglyph" not in html
