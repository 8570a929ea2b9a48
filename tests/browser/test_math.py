"""Math shows in Chromium as MathML (MathML Core): no script, under the strict CSP,
on the reader's page and in the editor's live preview."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.browser.test_csp import Watched
from tests.factories.issues import IssueFactory

pytestmark = pytest.mark.django_db(transaction=True)

BODY = r"""Euler's identity, $e^{i\pi} + 1 = 0$, and a fraction $\frac{a}{b}$ inline.

$$
\sum_{i=1}^{n} \frac{1}{i^2} = \frac{\pi^2}{6}
$$

$$
\begin{aligned} f(x) &= (x + 1)^2 \\ &= x^2 + 2x + 1 \end{aligned}
$$

A broken one, $x^$, shows as its source.
"""

BOXES = """() => [...document.querySelectorAll(".prose math")].map((m) => {
  const r = m.getBoundingClientRect();
  return {display: m.getAttribute("display"), width: r.width, height: r.height,
          mathml: m instanceof MathMLElement};
})"""


def test_a_reader_sees_each_formula_laid_out_with_no_script(page, live_server):
    watched = Watched(page)
    issue = IssueFactory(title="Sums", slug="sums", body=BODY, published=True)

    watched.visit(issue.get_absolute_url())

    boxes = page.evaluate(BOXES)
    assert [box["display"] for box in boxes] == ["inline", "inline", "block", "block"]
    for box in boxes:
        assert box["mathml"]
        assert box["width"] > 5 and box["height"] > 5, box
    euler, fraction, series, aligned = boxes
    # Laid out as math, not as a line of text: the fraction stacks, and the
    # display formulas (a sum with limits, two aligned rows) are taller still.
    assert fraction["height"] > euler["height"]
    assert series["height"] > fraction["height"]
    assert aligned["height"] > 1.5 * euler["height"]
    # Aligned rows line up at their "=" (columnalign, which MathML Core leaves to
    # the stylesheet), drawn with the vendored math font.
    equals = page.evaluate(
        """[...document.querySelectorAll(".prose mtable mo")]
             .filter((m) => m.textContent === "=")
             .map((m) => m.getBoundingClientRect().left)"""
    )
    assert len(equals) == 2 and abs(equals[0] - equals[1]) < 1, equals
    assert page.evaluate(
        """async () => { await document.fonts.ready;
             return document.fonts.check('16px "STIX Two Math"'); }"""
    )
    # The LaTeX annotation is kept, and not shown.
    annotation = page.locator("annotation").first
    assert annotation.get_attribute("encoding") == "application/x-tex"
    assert not annotation.is_visible()
    expect(page.locator(".prose .math-source code")).to_have_text("$x^$")
    assert watched.problems == []


def test_the_live_preview_shows_math_and_flags_a_formula_that_does_not_parse(page):
    get_user_model().objects.create_superuser("author", "a@example.org", "s3cret-pass!")
    page.goto("/admin/login/?next=/admin/issues/issue/add/")
    page.get_by_label("Username").fill("author")
    page.get_by_label("Password").fill("s3cret-pass!")
    page.get_by_role("button", name="Log in").click()

    page.locator("#id_body").fill(r"Inline $\frac{1}{2}$ and $$\sqrt{x}$$")
    preview = page.locator(".markdownx-preview")
    expect(preview.locator("math")).to_have_count(2)
    box = preview.locator("math").first.bounding_box()
    assert box and box["width"] > 5 and box["height"] > 5

    page.locator("#id_body").fill(r"Broken $x^$ here")
    expect(preview.locator(".math-error")).to_contain_text("does not parse")
    expect(preview.locator(".math-error code")).to_have_text("$x^$")
