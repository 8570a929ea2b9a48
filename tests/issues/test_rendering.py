import re
from pathlib import Path

import pytest

from issues.models import Issue, Paper
from issues.rendering import (
    ALLOWED_TAGS,
    find_references,
    markdownify,
    render_issue_body,
    render_markdown,
    sanitize,
)
from tests.factories.issues import IssueFactory, PaperFactory

pytestmark = pytest.mark.django_db

HOSTILE = (
    Path(__file__).parent.parent / "fixtures" / "issues" / "hostile_markdown.txt"
).read_text()
HOSTILE_CASES = [case.strip("\n") for case in HOSTILE.split("-----8<-----")]

# What must never come out of the renderer, whatever went in.
FORBIDDEN_TAGS = (
    "script|iframe|style|object|embed|form|input|meta|base|link|svg|textarea"
    "|template|video|audio|body|isindex|noscript"
)
URL_ATTRS = "href|src|srcset|action|background"
DANGEROUS = [
    re.compile(rf"<\s*({FORBIDDEN_TAGS})\b", re.I),
    # Event attributes: quoted values are skipped whole, since an alt text or a
    # title may say "onerror=" as text (the quotes in it escaped).
    re.compile(r'<(?:[^>"]|"[^"]*")*?\son[a-z]+\s*=', re.I),
    re.compile(rf"""({URL_ATTRS})\s*=\s*["']?\s*(javascript|vbscript|data):""", re.I),
    re.compile(r"<[^>]*\sstyle\s*=\s*\"[^\"]*(url|position|expression)", re.I),
    # MathML may stay, but never the parts that carry HTML, links or scripts.
    re.compile(r"<\s*(annotation-xml|maction|mglyph|malignmark)\b", re.I),
    re.compile(r"<m[a-z]*\b[^>]*\s(href|xlink:href|src|style|class)\s*=", re.I),
]
_ANY_TAG = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)")


def _only_allowed_tags(html):
    names = {name.lower() for name in _ANY_TAG.findall(html)}
    assert names <= ALLOWED_TAGS, names - ALLOWED_TAGS


@pytest.mark.parametrize("source", HOSTILE_CASES, ids=range(len(HOSTILE_CASES)))
def test_hostile_markdown_never_renders_a_script(source):
    for render in (render_markdown, markdownify):
        html = render(source)
        for pattern in DANGEROUS:
            assert not pattern.search(html), (pattern.pattern, html)
        _only_allowed_tags(html)


def test_hostile_corpus_is_not_trivially_empty():
    # The corpus keeps the harmless parts of its inputs: it is sanitized, not erased.
    html = render_markdown('<a href="https://ok.example" onclick="alert(1)">ok</a>')
    assert 'href="https://ok.example"' in html
    assert ">ok</a>" in html
    assert len(HOSTILE_CASES) > 50


def test_paywall_body_is_sanitized_in_both_parts():
    rendered = render_issue_body(
        "free <script>alert(1)</script>\n\n<!-- paywall -->\n\n"
        "<img src=x onerror=alert(1)>"
    )
    for html in (rendered.body_html, rendered.free_html, rendered.paid_html):
        assert "<script" not in html and "onerror" not in html


def test_tables_footnotes_and_strikethrough_render():
    html = render_markdown(
        "| model | top-1 |\n|---|---:|\n| ConvNeXt-T | 82.1 |\n\n"
        "~~old~~ new[^1]\n\n[^1]: A footnote.\n"
    )
    assert "<table>" in html and "<th>model</th>" in html
    assert 'style="text-align:right"' in html
    assert "<s>old</s>" in html
    assert 'class="footnote-ref"' in html and "A footnote." in html


def test_fenced_code_is_highlighted_by_pygments():
    html = render_markdown("```python\ndef f(x):\n    return x\n```\n")
    assert '<pre class="highlight" tabindex="0"><code class="language-python">' in html
    assert '<span class="k">def</span>' in html


def test_code_in_an_unknown_language_is_escaped_plainly():
    html = render_markdown("```nosuchlang\n<b>x</b>\n```\n")
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_headings_get_anchors():
    html = render_markdown("## Trend of the month\n\n## Trend of the month\n")
    assert '<h2 id="h-trend-of-the-month">' in html
    assert 'href="#h-trend-of-the-month"' in html
    assert 'id="h-trend-of-the-month-1"' in html


def test_images_keep_alt_text_and_load_lazily():
    html = render_markdown("![A cat on a laptop](/media/markdownx/cat.png)")
    assert 'alt="A cat on a laptop"' in html
    assert 'src="/media/markdownx/cat.png"' in html
    assert 'loading="lazy"' in html


def test_a_reference_alone_in_a_paragraph_renders_a_paper_card(settings):
    settings.SITE_URL = "https://news.example"
    PaperFactory(
        title="A ConvNet for the 2020s",
        slug="convnext",
        arxiv_id="2201.03545",
        authors=["Zhuang Liu", "Hanzi Mao"],
        venue="CVPR",
    )
    html = render_markdown("[[arxiv:2201.03545]]")
    assert 'class="paper-card"' in html
    # Site-relative: stored HTML must survive the site moving to another address.
    assert 'href="/papers/convnext/"' in html
    assert "news.example" not in html
    assert "A ConvNet for the 2020s" in html
    assert 'href="https://arxiv.org/abs/2201.03545"' in html


def test_a_reference_inside_a_sentence_renders_inline():
    PaperFactory(title="MaxViT", slug="maxvit", arxiv_id="2204.01697",
                 authors=["Zhengzhong Tu", "Hossein Talebi"], year=2022)  # fmt: skip
    html = render_markdown("As [[arxiv:2204.01697v2]] shows, grids work.")
    assert 'class="paper-ref"' in html and "(Tu et al., 2022)" in html
    assert "paper-card" not in html


def test_references_by_doi_and_slug_resolve_case_insensitively():
    PaperFactory(slug="ldm", doi="10.1109/CVPR52688.2022.01042", arxiv_id="")
    refs = find_references("[[doi:10.1109/cvpr52688.2022.01042]] and [[paper:ldm]]")
    assert [str(r) for r in refs] == [
        "[[doi:10.1109/cvpr52688.2022.01042]]",
        "[[paper:ldm]]",
    ]
    html = render_markdown("[[doi:10.1109/cvpr52688.2022.01042]]\n\n[[paper:ldm]]")
    assert html.count('class="paper-card"') == 2


def test_a_reference_in_code_is_left_as_code():
    assert find_references("`[[arxiv:2201.03545]]`\n\n    [[paper:x]]\n") == []


def test_an_unknown_reference_is_an_error_in_the_preview_and_plain_text_on_save():
    preview = markdownify("See [[arxiv:9999.99999]].")
    assert 'class="paper-ref-error"' in preview
    assert "[[arxiv:9999.99999]]" in preview
    # What readers get (pages, feeds, email) never carries the author's error box.
    saved = render_markdown("See [[arxiv:9999.99999]], [[doi:10.1/X]], [[paper:gone]].")
    assert saved == "<p>See arXiv:9999.99999, doi:10.1/x, gone.</p>\n"
    rendered = render_issue_body(
        "[[arxiv:9999.99999v2]]\n\n<!-- paywall -->\n\n[[paper:gone]]"
    )
    assert [str(r) for r in rendered.unknown_references] == [
        "[[arxiv:9999.99999]]",
        "[[paper:gone]]",
    ]
    assert "paper-ref" not in rendered.body_html


def test_the_paywall_break_splits_free_and_paid_parts():
    rendered = render_issue_body("Free part.\n\n<!-- paywall -->\n\nPaid part.")
    assert "Free part." in rendered.free_html and "Paid" not in rendered.free_html
    assert "Paid part." in rendered.paid_html and "Free" not in rendered.paid_html
    assert "Free part." in rendered.body_html and "Paid part." in rendered.body_html
    assert rendered.free_text == "Free part."


def test_without_a_paywall_break_paid_html_is_empty():
    rendered = render_issue_body("All free. <!-- paywall --> is not alone on its line")
    assert rendered.paid_html == ""
    assert "All free." in rendered.free_html


def test_the_preview_marks_the_paywall_break():
    html = markdownify("Free.\n<!-- paywall -->\nPaid.")
    assert 'class="paywall-marker"' in html
    assert html.index("Free.") < html.index("paywall-marker") < html.index("Paid.")


def test_sanitize_keeps_relative_links_and_drops_unknown_tags():
    assert sanitize('<a href="/papers/x/">x</a><blink>y</blink>') == (
        '<a href="/papers/x/" rel="noopener noreferrer">x</a>y'
    )


def test_the_checks_catch_the_raw_corpus():
    # Proves the assertions above can fail: unsanitized, most cases are caught.
    caught = [c for c in HOSTILE_CASES if any(p.search(c) for p in DANGEROUS)]
    assert len(caught) >= 40


# --- The reference scan -------------------------------------------------------------
def _arxiv_id(n: int) -> str:
    return f"23{n // 10_000 + 1:02d}.{n % 10_000:05d}"


def test_twenty_thousand_references_all_resolve_in_one_query(
    django_assert_max_num_queries,
):
    half = 10_000
    Paper.objects.bulk_create(
        [
            Paper(title=f"Paper {n}", slug=f"paper-{n}", year=2023,
                  # Half stored with a version, as pasted from arXiv.
                  arxiv_id=_arxiv_id(n) + ("v2" if n % 2 else ""))
            for n in range(half)
        ]
        + [
            Paper(title=f"Paper {n}", slug=f"paper-{n}", doi=f"10.5555/ABC{n}")
            for n in range(half, 2 * half)
        ],
        batch_size=2_000,
    )  # fmt: skip
    refs = [f"[[arxiv:{_arxiv_id(n)}]]" for n in range(half)]
    refs += [f"[[doi:10.5555/abc{n}]]" for n in range(half, 2 * half)]
    body = "\n\n".join(
        "See " + ", ".join(refs[i : i + 10]) + "." for i in range(0, len(refs), 10)
    )

    with django_assert_max_num_queries(1):
        rendered = render_issue_body(body)

    assert len(rendered.references) == len(rendered.papers) == 20_000
    assert rendered.unknown_references == []
    assert rendered.body_html.count('class="paper-ref"') == 20_000
    assert 'href="/papers/paper-19999/"' in rendered.body_html


@pytest.mark.parametrize(
    "stored, cited",
    [
        ("solv-int/9901001", "solv-int/9901001"),
        ("solv-int/9901001v3", "solv-int/9901001"),
        ("hep-th/9901001v2", "hep-th/9901001v1"),
        ("2201.03545v12", "2201.03545"),
    ],
)
def test_arxiv_references_match_stored_ids_with_or_without_a_version(stored, cited):
    PaperFactory(slug="found", arxiv_id=stored)

    html = render_markdown(f"[[arxiv:{cited}]]")

    assert 'href="/papers/found/"' in html


def test_a_reference_value_is_at_most_200_characters():
    # The parser tries a reference at every "[["; a bounded value keeps each try
    # short, so "[[arxiv:" repeated 20,000 times is not read 20,000 times over.
    long_doi = "10.5555/" + "x" * 200
    PaperFactory(slug="long", doi=long_doi[:200], arxiv_id="")

    assert find_references(f"[[doi:{long_doi}]]") == []
    assert [str(r) for r in find_references(f"[[doi:{long_doi[:200]}]]")] == [
        f"[[doi:{long_doi[:200]}]]"
    ]


# --- Unclosed raw-text elements ----------------------------------------------------
@pytest.mark.parametrize("tag", ["script", "style", "textarea", "SCRIPT src=x.js"])
@pytest.mark.parametrize("where", ["own line", "in a sentence", "in an HTML block"])
def test_an_unclosed_script_or_style_shows_as_text_and_keeps_the_rest(tag, where):
    opening = f"<{tag}>"
    intro = {
        "own line": f"Intro.\n\n{opening}\n\n",
        "in a sentence": f"Intro with {opening} inside.\n\n",
        "in an HTML block": f"<div>{opening}\n\n",
    }[where]
    body = intro + "The next paragraph.\n\n## A heading\n\nMore **text**."

    rendered = render_issue_body(body)

    escaped = f"&lt;{tag}&gt;"
    assert escaped in rendered.body_html
    assert "<p>The next paragraph.</p>" in rendered.body_html
    assert '<h2 id="h-a-heading">' in rendered.body_html
    assert "<strong>text</strong>" in rendered.body_html
    assert "next paragraph" in rendered.free_text


def test_a_closed_script_is_still_dropped_whole():
    html = render_markdown("Before.\n\n<script>alert(1)</script>\n\nAfter.")

    assert "alert" not in html and "script" not in html
    assert "<p>Before.</p>" in html and "<p>After.</p>" in html


def test_an_unclosed_style_in_an_issue_shows_the_rest_on_its_page(client):
    issue = IssueFactory(
        published=True,
        body="Intro.\n\n<style>\n\nEverything after the style.\n\n## Results\n\nDone.",
    )

    page = client.get(issue.get_absolute_url()).content.decode()

    assert "&lt;style&gt;" in Issue.objects.get().body_html
    assert "&lt;style&gt;" in page
    assert "<p>Everything after the style.</p>" in page
    assert "Results" in page and "<p>Done.</p>" in page
