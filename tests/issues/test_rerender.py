"""`manage.py rerender_content` brings HTML stored by an older Quire up to date."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from issues.models import Issue, Paper
from tests.factories.issues import IssueFactory, PaperFactory

pytestmark = pytest.mark.django_db

BODY = "## Results\n\nThe numbers, in code:\n\n```python\nprint(1)\n```\n"


def _as_an_older_quire_stored_it(issue: Issue) -> None:
    # What Quire stored before: no tabindex on code, the permalink "#" in the text.
    Issue.objects.filter(pk=issue.pk).update(
        body_html=issue.body_html.replace(' tabindex="0"', ""),
        free_html=issue.free_html.replace(' tabindex="0"', ""),
        public_text="Results # The numbers, in code: print(1)",
    )


def test_rerendering_fixes_stored_issues_and_papers(client, capsys):
    issue = IssueFactory(slug="results", published=True, body=BODY)
    _as_an_older_quire_stored_it(issue)
    paper = PaperFactory(summary="```\ncode\n```")
    Paper.objects.filter(pk=paper.pk).update(
        summary_html="<pre><code>code</code></pre>"
    )
    untouched = IssueFactory(slug="plain", published=True, body="Plain words.")
    untouched_at = Issue.objects.get(pk=untouched.pk).updated
    assert 'tabindex="0"' not in client.get("/issues/results/").content.decode()

    call_command("rerender_content")

    page = client.get("/issues/results/").content.decode()
    search = client.get(reverse("issues:search"), {"q": "numbers"})
    assert '<pre class="highlight" tabindex="0">' in page
    assert "#" not in search.context["issues"][0].snippet_html
    assert '<pre tabindex="0">' in client.get(paper.get_absolute_url()).content.decode()
    assert Issue.objects.get(pk=untouched.pk).updated == untouched_at
    assert "2 changed" in capsys.readouterr().out
