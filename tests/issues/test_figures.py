"""Captioned images as numbered figures, images without alt text, and sidenotes."""

import re
from collections import Counter
from html import unescape

import pytest
from django.urls import reverse

from issues.rendering import (
    find_images_without_alt,
    markdownify,
    readable_text,
    render_issue_body,
    render_markdown,
    without_sidenotes,
)
from issues.sending.emails import render_segment
from issues.sending.models import Delivery
from tests.factories.issues import IssueFactory

pytestmark = pytest.mark.django_db

IDS = re.compile(r'\sid="([^"]*)"')


def ids_of(html: str) -> list[str]:
    return IDS.findall(html)


# --- figures --------------------------------------------------------------------------


def test_a_captioned_image_becomes_a_numbered_figure_and_a_plain_one_stays():
    html = render_markdown(
        '![Loss falls](loss.png "Training loss by step")\n\n'
        "![A cat](cat.png)\n\n"
        '![Accuracy](acc.png "Accuracy")\n'
    )
    assert (
        '<figure id="figure-1"><img src="loss.png" alt="Loss falls" loading="lazy">'
        '<figcaption><span class="figure-label">Figure 1.</span> Training loss by '
        "step</figcaption></figure>"
    ) in html
    assert '<p><img src="cat.png" alt="A cat" loading="lazy"></p>' in html
    assert '<figure id="figure-2"><img src="acc.png" alt="Accuracy"' in html
    assert "Figure 2.</span> Accuracy</figcaption>" in html
    # The caption is said once: no title on the image inside a figure.
    assert 'title="' not in html
    assert html.count("<figure") == 2


def test_an_image_without_a_title_is_rendered_as_before():
    assert render_markdown("![A cat](cat.png)") == (
        '<p><img src="cat.png" alt="A cat" loading="lazy"></p>\n'
    )


def test_a_caption_is_text_html_and_quotes_in_it_are_escaped():
    html = render_markdown(
        '![x" onerror="alert(1)](c.png "<b>bold</b> & \\"quoted\\" <script>x</script>")'
    )
    assert "<b>" not in html and "<script" not in html
    # No attribute of its own: outside quoted values, no "onerror=".
    assert not re.search(r"<[^>]*\sonerror\s*=", re.sub(r'"[^"]*"', '""', html))
    assert (
        '<figcaption><span class="figure-label">Figure 1.</span> '
        '&lt;b&gt;bold&lt;/b&gt; &amp; "quoted" &lt;script&gt;x&lt;/script&gt;'
        "</figcaption>"
    ) in html
    # The quotes stay inside the alt attribute, as text.
    assert 'alt="x&quot; onerror=&quot;alert(1)"' in html


def test_a_javascript_image_is_no_figure_and_no_image():
    html = render_markdown('![chart](javascript:alert(1) "Caption")')
    assert "<figure" not in html and "<img" not in html
    assert "javascript:" not in html.replace("![chart](javascript:", "")


def test_a_captioned_image_in_a_sentence_cuts_the_paragraph_around_its_figure():
    html = render_markdown('Before the chart ![Chart](c.png "Results") and after.')
    assert html == (
        "<p>Before the chart</p>\n"
        '<figure id="figure-1"><img src="c.png" alt="Chart" loading="lazy">'
        '<figcaption><span class="figure-label">Figure 1.</span> Results'
        "</figcaption></figure>\n"
        "<p>and after.</p>\n"
    )


def test_a_captioned_image_inside_a_link_stays_an_image():
    html = render_markdown('[![Chart](c.png "Results")](https://example.org/)')
    assert "<figure" not in html
    assert '<a href="https://example.org/"' in html and 'title="Results"' in html


def test_figures_and_footnotes_number_on_across_the_paywall_break():
    rendered = render_issue_body(
        'Free[^a].\n\n![One](1.png "First")\n\n[^a]: Free note.\n\n'
        "<!-- paywall -->\n\n"
        'Paid[^b].\n\n![Two](2.png "Second")\n\n[^b]: Paid note.\n'
    )
    assert 'id="figure-1"' in rendered.free_html
    assert 'id="figure-2"' in rendered.paid_html and "Figure 2.</span>" in (
        rendered.paid_html
    )
    assert 'href="#fn2" id="fnref2"' in rendered.paid_html
    assert '<ol class="footnotes-list" start="2">' in rendered.paid_html
    assert '<li id="fn2"' in rendered.paid_html
    ids = ids_of(rendered.body_html)
    assert not [i for i, n in Counter(ids).items() if n > 1], ids
    assert {"figure-1", "figure-2", "fn1", "fn2", "fnref1", "fnref2"} <= set(ids)


# --- sidenotes ------------------------------------------------------------------------

NOTED = (
    "A claim[^1] and another[^long].\n\n"
    "Again the first[^1].\n\n"
    "[^1]: See [the paper](https://example.org/p) and `code`.\n"
    "[^long]: A note\n\n    with two paragraphs.\n"
)


def test_each_footnote_gets_one_sidenote_after_its_first_reference():
    html = render_markdown(NOTED)
    assert html.count('class="sidenote"') == 2
    first = html.index('id="fnref1"')
    note = html.index('<span class="sidenote"><span class="sidenote-number">1</span>')
    assert first < note < html.index("another")
    assert (
        '<span class="sidenote-number">1</span> See <a href="https://example.org/p"'
    ) in html
    assert "<code>code</code>.</span>" in html
    assert '<span class="sidenote-number">2</span> A note with two paragraphs.' in (
        html
    )
    # The endnotes stay, marked to hide where the sidenotes show.
    assert '<section class="footnotes sidenoted">' in html
    assert '<li id="fn1" class="footnote-item">' in html
    # No id twice: the copies carry none.
    ids = ids_of(html)
    assert len(ids) == len(set(ids))


def test_a_note_cited_where_no_sidenote_fits_keeps_the_part_to_endnotes():
    html = render_markdown("## A heading[^1]\n\nText[^2].\n\n[^1]: One.\n\n[^2]: Two.")
    assert 'class="sidenote"' not in html
    assert '<section class="footnotes">' in html


def test_a_note_citing_another_shows_its_number_without_a_second_id():
    html = render_markdown("Text[^a].\n\nMore[^b].\n\n[^a]: See[^b].\n\n[^b]: Two.")
    ids = ids_of(html)
    assert len(ids) == len(set(ids))
    assert '<sup class="footnote-ref">[2]</sup>' in html


def test_the_notes_are_read_once_in_the_text_email_and_feeds_drop_the_copies():
    rendered = render_issue_body(NOTED)
    assert rendered.free_text.count("See the paper") == 1
    stripped = without_sidenotes(rendered.body_html)
    assert 'class="sidenote' not in stripped and "sidenote-number" not in stripped
    assert stripped.count("https://example.org/p") == 1
    assert readable_text(stripped) == readable_text(rendered.body_html)


def test_the_preview_shows_endnotes_only():
    html = markdownify(NOTED)
    assert 'class="sidenote"' not in html and "sidenoted" not in html
    assert '<section class="footnotes">' in html


# --- alt text -------------------------------------------------------------------------


def test_images_without_alt_are_named_by_place_address_and_figure():
    body = (
        "![A cat](cat.png)\n\n"
        '![](chart.png "Results")\n\n'
        "<!-- paywall -->\n\n"
        "Inline ![ ](dog.png) here.\n"
    )
    missing = find_images_without_alt(body)
    assert [image.problem for image in missing] == [
        "Image 2 (Figure 1, chart.png) has no alt text: describe it in "
        "![…](chart.png).",
        "Image 3 (dog.png) has no alt text: describe it in ![…](dog.png).",
    ]
    assert find_images_without_alt("![A cat](cat.png) and no other") == []


def test_the_preview_marks_an_image_without_alt_beside_it():
    html = markdownify('Intro.\n\n![A cat](cat.png)\n\n![](chart.png "Results")')
    assert html.count('class="image-alt-error"') == 1
    warning = html.index('class="image-alt-error"')
    assert html.index('src="chart.png"') < warning < html.index("<figcaption>")
    assert "Image 2 (Figure 1, chart.png) has no alt text" in html
    # Readers' HTML never carries the warning.
    assert "image-alt-error" not in render_markdown("![](chart.png)")


def test_a_hostile_address_in_the_preview_warning_is_escaped():
    html = markdownify('![](x.png?a="><script>alert(1)</script>)')
    assert "<script" not in html


# --- email ----------------------------------------------------------------------------


@pytest.mark.parametrize("segment", Delivery.Segment.values)
def test_the_email_carries_the_figure_with_inlined_styles_and_endnotes(segment):
    issue = IssueFactory(
        body='Text[^1].\n\n![A loss curve](/media/loss.png "Training loss")\n\n'
        "[^1]: The note.\n"
    )
    email = render_segment(issue=issue, segment=segment)
    html = email.html
    figure = re.search(r"<figure\b[^>]*>.*?</figure>", html, re.S)
    assert figure is not None
    assert 'id="figure-1"' in figure[0]
    assert re.search(r'<figcaption style="[^"]*font-size: 15px', figure[0])
    assert re.search(r'<img [^>]*style="[^"]*max-width: 100%', figure[0])
    assert "Figure 1.</span> Training loss</figcaption>" in figure[0]
    assert 'src="http' in figure[0]  # made absolute for a mail program
    assert 'class="sidenote"' not in html and "sidenote-number" not in html
    assert html.count("The note.") == 1 and 'id="fn1"' in html
    assert "Figure 1. Training loss" in email.text


@pytest.mark.parametrize("feed", ["issues:feed_rss", "issues:feed_atom"])
def test_feeds_carry_figures_and_endnotes_without_sidenotes(client, feed):
    IssueFactory(
        slug="noted",
        published=True,
        body='Text[^1].\n\n![A chart](/media/c.png "Results")\n\n[^1]: The note.\n',
    )
    text = unescape(client.get(reverse(feed)).content.decode())
    assert '<figure id="figure-1">' in text and "Figure 1.</span> Results" in text
    assert 'class="sidenote"' not in text and "sidenote-number" not in text
    assert text.count("The note.") == 1
