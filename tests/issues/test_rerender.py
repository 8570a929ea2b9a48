"""`manage.py rerender_issues`: HTML stored by older versions is rendered again."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from issues.models import Issue, Paper
from tests.factories.issues import IssueFactory, PaperFactory

pytestmark = pytest.mark.django_db

OLD_HOST = "http://127.0.0.1:8000"


def _store_as_an_older_version_did(issues, papers):
    """Put back HTML with the site's address baked in, as older versions stored it."""
    for issue in issues:
        for field in ("body_html", "free_html", "paid_html"):
            value = getattr(issue, field).replace('href="/', f'href="{OLD_HOST}/')
            setattr(issue, field, value)
    Issue.objects.bulk_update(issues, ["body_html", "free_html", "paid_html"])
    for paper in papers:
        paper.summary_html = f'<p><a href="{OLD_HOST}/papers/x/">old</a></p>'
    Paper.objects.bulk_update(papers, ["summary_html"])


def test_rerender_issues_stores_site_relative_links_in_old_issues(
    capsys, django_assert_max_num_queries
):
    PaperFactory(slug="convnext", arxiv_id="2201.03545", summary="A *good* one.")
    issues = [
        IssueFactory(
            published=True,
            body=f"Issue {n} [[arxiv:2201.03545]]\n\n<!-- paywall -->\n\n"
            "[[paper:convnext]]",
        )
        for n in range(25)
    ]
    current = IssueFactory(published=True, body="Nothing to change.")
    _store_as_an_older_version_did(issues, list(Paper.objects.all()))
    updated = dict(Issue.objects.values_list("pk", "updated"))

    # Set-based: a few queries per chunk of 10 (one raises the content version
    # cached pages are kept by), none per issue.
    with django_assert_max_num_queries(24):
        call_command("rerender_issues", "--chunk-size", "10")

    assert capsys.readouterr().out.strip() == (
        "Re-rendered 26 issues (25 changed) and 1 paper summaries (1 changed)."
    )
    for issue in Issue.objects.exclude(pk=current.pk):
        stored = issue.body_html + issue.free_html + issue.paid_html
        assert OLD_HOST not in stored
        assert 'href="/papers/convnext/"' in issue.free_html
        assert 'href="/papers/convnext/"' in issue.paid_html
    assert Paper.objects.get().summary_html == "<p>A <em>good</em> one.</p>\n"
    # Readers see the same issues: nothing looks edited in feeds or to caches.
    assert dict(Issue.objects.values_list("pk", "updated")) == updated


def test_rerender_issues_again_changes_nothing(capsys):
    IssueFactory(published=True, body="Fresh [[paper:none]] words.")

    call_command("rerender_issues")

    assert "1 issues (0 changed)" in capsys.readouterr().out


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

    call_command("rerender_issues")

    page = client.get("/issues/results/").content.decode()
    search = client.get(reverse("issues:search"), {"q": "numbers"})
    assert '<pre class="highlight" tabindex="0">' in page
    assert "#" not in search.context["issues"][0].snippet_html
    assert '<pre tabindex="0">' in client.get(paper.get_absolute_url()).content.decode()
    assert Issue.objects.get(pk=untouched.pk).updated == untouched_at
    out = capsys.readouterr().out
    assert "2 issues (1 changed)" in out and "1 paper summaries (1 changed)" in out
