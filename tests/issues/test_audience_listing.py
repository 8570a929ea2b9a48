"""Web and email audiences on the site: an email-only issue is sent, never listed,
and its page still answers (unindexed) for the email's web-view link; a welcome
email's content never appears anywhere."""

import pytest
from django.urls import reverse
from django.utils import timezone

from issues.models import Issue
from tests.factories.issues import (
    CitationFactory,
    IssueFactory,
    PaperFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(db):
    tag = TagFactory(slug="rl", name="RL")
    paper = PaperFactory(slug="ppo", title="Proximal Policy Optimisation", year=2024)
    issues = {}
    for audience, title in (
        (Issue.Audience.WEB, "Webonly Wanderings"),
        (Issue.Audience.EMAIL, "Inboxonly Insights"),
        (Issue.Audience.ALL, "Everyone Everywhere"),
    ):
        issue = IssueFactory(
            published=True, title=title, audience=audience, tags=[tag],
            slug=title.lower().replace(" ", "-"),
            body=f"{title} on policy gradients.",
        )  # fmt: skip
        CitationFactory(issue=issue, paper=paper, rank=1)
        issues[audience] = issue
    welcome = IssueFactory(
        published=True,
        title="Welcomeaboard Note",
        tags=[tag],
        slug="welcomeaboard-note",
        body="Welcome on policy gradients.",
    )
    Issue.objects.filter(pk=welcome.pk).update(kind=Issue.Kind.WELCOME)
    issues["welcome"] = welcome
    return issues


LISTS = [
    "/", "/archive/", "/tags/rl/", "/feed/", "/feed/atom/", "/tags/rl/feed/",
    "/sitemap.xml", "/papers/ppo/", "/papers/top/2024/", "/search/?q=policy",
]  # fmt: skip


@pytest.mark.parametrize("url", LISTS)
def test_lists_show_web_and_everyone_issues_never_email_only_or_welcome(
    client, three, url
):
    page = client.get(url).content.decode()
    shown = [
        title in page or title.lower().replace(" ", "-") in page
        for title in ("Webonly Wanderings", "Everyone Everywhere")
    ]
    # The top papers name each paper once, from one of its listed issues.
    assert all(shown) if "/top/" not in url else any(shown)
    assert "Inboxonly" not in page
    assert three[Issue.Audience.EMAIL].slug not in page
    assert "Welcomeaboard" not in page
    assert three["welcome"].slug not in page


def test_an_email_only_issue_page_answers_by_its_address_unindexed(client, three):
    issue = three[Issue.Audience.EMAIL]
    page = client.get(reverse("issues:issue", args=[issue.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Inboxonly Insights" in html
    assert '<meta name="robots" content="noindex">' in html
    listed = client.get(reverse("issues:issue", args=[three["all"].slug]))
    assert '<meta name="robots" content="noindex">' not in listed.content.decode()


def test_neighbours_skip_the_email_only_issue(client, three):
    now = timezone.now()
    order = [three[Issue.Audience.WEB], three[Issue.Audience.EMAIL], three["all"]]
    for days, issue in zip((3, 2, 1), order, strict=True):
        Issue.objects.filter(pk=issue.pk).update(
            published_at=now - timezone.timedelta(days=days)
        )
    page = client.get(reverse("issues:issue", args=[three["all"].slug]))
    html = page.content.decode()
    assert three[Issue.Audience.WEB].slug in html
    assert three[Issue.Audience.EMAIL].slug not in html


def test_a_welcome_email_has_no_page_even_for_staff(client, staff_client, three):
    url = reverse("issues:issue", args=[three["welcome"].slug])
    assert client.get(url).status_code == 404
    assert staff_client.get(url).status_code == 404


def test_choosing_email_only_takes_a_cached_list_off_at_once(client, three):
    issue = three[Issue.Audience.ALL]
    assert issue.slug in client.get(reverse("issues:archive")).content.decode()
    issue.audience = Issue.Audience.EMAIL
    issue.save()
    assert issue.slug not in client.get(reverse("issues:archive")).content.decode()


def test_listed_is_one_queryset_rule():
    web = IssueFactory(published=True, audience=Issue.Audience.WEB)
    IssueFactory(published=True, audience=Issue.Audience.EMAIL)
    everyone = IssueFactory(published=True)
    assert set(Issue.objects.published().listed()) == {web, everyone}
