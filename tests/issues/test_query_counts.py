"""Each reader page runs a fixed number of queries, however much it shows."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from issues.models import Citation
from newsletter.models import Publication
from tests.factories.issues import IssueFactory, PaperFactory, TagFactory

pytestmark = pytest.mark.django_db

# One of them lists the newsletters the subscribe form offers.
MAX_QUERIES = 9
# A signed-in staff member's page also reads the account's permissions and its
# two-factor devices (who may read drafts and paid parts), once per request.
STAFF_QUERIES = 4


def _content(size: int):
    tags = [TagFactory(slug=f"t{size}-{n}", name=f"T {size} {n}") for n in range(size)]
    papers = []
    for n in range(size * 3):
        paper = PaperFactory(arxiv_id=f"2{size:03d}.{n:05d}", year=2022)
        paper.tags.set(tags)
        papers.append(paper)
    body = "\n\n".join(f"[[arxiv:{p.arxiv_id}]]" for p in papers)
    issues = []
    for n in range(size * 2):
        issue = IssueFactory(
            slug=f"i{size}-{n}", published=True, body=body,
            published_at=timezone.now() - timedelta(days=n),
        )  # fmt: skip
        issue.tags.set(tags)
        issues.append(issue)
    Citation.objects.filter(issue=issues[0]).update(rank=1)
    return issues[0], papers[0], tags[0]


def _urls(issue, paper, tag):
    return [
        "/",
        reverse("issues:archive"),
        issue.get_absolute_url(),
        reverse("issues:issue_bibtex", args=[issue.slug]),
        reverse("issues:papers"),
        reverse("issues:papers") + f"?year=2022&tag={tag.slug}",
        paper.get_absolute_url(),
        reverse("issues:paper_bibtex", args=[paper.slug]),
        reverse("issues:top_papers", args=[2022]),
        tag.get_absolute_url(),
        reverse("issues:search") + "?q=Issue",
        reverse("issues:feed_rss"),
        reverse("issues:feed_atom"),
        "/sitemap.xml",
    ]


def _count(client, url, django_assert_max_num_queries, limit=MAX_QUERIES):
    with django_assert_max_num_queries(limit) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


@pytest.mark.parametrize("as_staff", [False, True], ids=["reader", "staff"])
def test_query_count_does_not_grow_with_content(
    client, staff_user, as_staff, django_assert_max_num_queries
):
    Publication.load()  # created once on first use, not per page
    if as_staff:
        client.force_login(staff_user)
    limit = MAX_QUERIES + (STAFF_QUERIES if as_staff else 0)
    small = _urls(*_content(2))
    small_counts = [
        _count(client, url, django_assert_max_num_queries, limit) for url in small
    ]
    large = _urls(*_content(6))
    large_counts = [
        _count(client, url, django_assert_max_num_queries, limit) for url in large
    ]
    assert dict(zip(small, small_counts, strict=True)) == {
        url: count for url, count in zip(small, large_counts, strict=True)
    }
