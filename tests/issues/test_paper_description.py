"""A paper page describes the paper, in its meta and Open Graph tags, with the
opening of its summary: plain text, short, whatever the summary holds."""

from html import escape
from html.parser import HTMLParser

import pytest

from issues.models import DESCRIPTION_CHARS
from tests.factories.issues import PaperFactory

pytestmark = pytest.mark.django_db

NAMES = ("description", "og:description", "twitter:description")


class _Head(HTMLParser):
    def __init__(self):
        super().__init__()
        self.meta: dict[str, list[str]] = {}
        self.elements: list[tuple[str, dict]] = []  # inside <head>
        self.in_head = False

    def handle_endtag(self, tag):
        self.in_head = self.in_head and tag != "head"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.in_head = self.in_head or tag == "head"
        if self.in_head:
            self.elements.append((tag, attrs))
        if tag == "meta":
            key = attrs.get("name") or attrs.get("property")
            self.meta.setdefault(key, []).append(attrs.get("content"))


def head_of(client, paper) -> _Head:
    response = client.get(paper.get_absolute_url())
    assert response.status_code == 200
    parser = _Head()
    parser.feed(response.content.decode())
    return parser


def descriptions(head: _Head) -> set[str]:
    for name in NAMES:
        assert len(head.meta.get(name, [])) == 1, name
    return {head.meta[name][0] for name in NAMES}


def test_a_paper_is_described_by_the_opening_of_its_summary(client):
    paper = PaperFactory(
        summary="## Why it matters\n\nA **pure ConvNet** that matches Swin.[^1]\n\n"
        "[^1]: On ImageNet."
    )
    (description,) = descriptions(head_of(client, paper))
    assert description.startswith("Why it matters A pure ConvNet that matches Swin.")
    assert "#" not in description and "↩" not in description


def test_a_long_summary_is_cut_to_a_short_description(client):
    paper = PaperFactory(summary=" ".join(f"word{n}" for n in range(500)))
    (description,) = descriptions(head_of(client, paper))
    assert len(description) <= DESCRIPTION_CHARS
    assert description.startswith("word0 word1 word2")
    assert description.endswith("…")


def test_a_paper_without_summary_is_described_by_its_authors_and_year(client):
    paper = PaperFactory(summary="", authors=["Zhuang Liu", "Hanzi Mao"], year=2022)
    assert descriptions(head_of(client, paper)) == {"Zhuang Liu, Hanzi Mao (2022)"}


@pytest.mark.parametrize(
    "summary",
    [
        '"><script>alert(1)</script>',
        "<img src=x onerror=alert(1)> and <svg onload=alert(1)>",
        "\" onmouseover='alert(1)' data-x=\"",
        "`<style>body{display:none}</style>` &amp; &lt;b&gt; & < > \" '",
        "[click](javascript:alert(1)) <iframe src=//evil.example></iframe>",
    ],
)
def test_a_hostile_summary_stays_text_inside_the_description(client, summary):
    paper = PaperFactory(summary=summary, title="Plain title")
    head = head_of(client, paper)
    (description,) = descriptions(head)

    # Nothing left the attribute: the head holds only its own elements, the only
    # scripts are the site's own files, and no element has an event attribute.
    names = [name for name, _ in head.elements]
    assert not {"img", "svg", "iframe", "style"} & set(names)
    scripts = [
        attrs.get("src", "") for name, attrs in head.elements if name == "script"
    ]
    assert scripts and all(src.startswith("/static/js/") for src in scripts)
    assert not any(a.startswith("on") for _, attrs in head.elements for a in attrs)
    page = client.get(paper.get_absolute_url()).content.decode()
    assert "<script>alert" not in page and "onerror=alert" not in page
    # What remains is text, escaped in each of the three attributes.
    assert page.count(f'content="{escape(description)}"') == 3
    assert len(description) <= DESCRIPTION_CHARS


def test_markup_characters_in_a_summary_are_escaped_once(client):
    paper = PaperFactory(summary='Tom & Jerry say `a < b` and "quote"')
    (description,) = descriptions(head_of(client, paper))
    page = client.get(paper.get_absolute_url()).content.decode()

    assert description == 'Tom & Jerry say a < b and "quote"'
    assert 'content="Tom &amp; Jerry say a &lt; b and &quot;quote&quot;"' in page
