"""Hostile titles and headings on the issue page: its JSON-LD, meta tags, table of
contents and share links stay data, and no inline code reaches the page."""

import pytest

from tests.factories.issues import IssueFactory
from tests.security.test_headers import _inline_code, _policy

pytestmark = pytest.mark.django_db

HOSTILE = (
    "</script><script>alert(1)</script><!--<script>\"'><img src=x onerror=alert(2)>"
)


def test_a_hostile_title_and_headings_put_no_code_on_the_issue_page(client):
    body = "\n\n".join(f"## {HOSTILE} {n}" for n in range(3))
    issue = IssueFactory(
        slug="hostile", title=HOSTILE, subtitle=HOSTILE, body=body, published=True
    )

    response = client.get(issue.get_absolute_url())

    assert response.status_code == 200
    allowed = set(_policy(response)["style-src-attr"][1:])
    assert _inline_code(response, allowed) == []
    html = response.content.decode()
    # Shown as text wherever it appears, never as markup.
    assert "<script>alert" not in html and "<img src=x" not in html
    # The contents list every heading, as text.
    assert html.count('<li class="contents-level-2">') == 3
