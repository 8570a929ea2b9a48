import pytest
from django.core.management import call_command

from issues.models import Citation, Issue, Paper
from newsletter.models import Publication

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_a_research_newsletter(client):
    call_command("seed_demo")
    assert Publication.load().name == "Gradient Notes"
    assert {"2201.03545", "2204.01697", "2112.10752"} <= set(
        Paper.objects.values_list("arxiv_id", flat=True)
    )
    top = Issue.objects.get(slug="top-10-papers-of-2022")
    ranked = Citation.objects.filter(issue=top, rank__isnull=False).order_by("rank")
    assert [c.rank for c in ranked] == list(range(1, 11))
    assert Issue.objects.filter(status=Issue.Status.DRAFT).exists()
    paywalled = Issue.objects.get(slug="scaling-laws-revisited")
    assert paywalled.paid_html and "Supporters' deep dive" not in paywalled.free_html
    # Every reference in the demo resolves to a paper.
    for issue in Issue.objects.all():
        assert issue.unknown_references == [], issue.slug
    text = client.get("/").content.decode()
    assert "Gradient Notes" in text and "The top 10 papers of 2022" in text
    top_page = client.get("/papers/top/2022/").content.decode()
    assert "Training language models to follow instructions" in top_page


def test_seed_demo_twice_updates_in_place():
    call_command("seed_demo")
    counts = (Issue.objects.count(), Paper.objects.count(), Citation.objects.count())
    call_command("seed_demo")
    assert (Issue.objects.count(), Paper.objects.count(), Citation.objects.count()) == (
        counts
    )


def test_seed_demo_if_empty_leaves_existing_content_alone():
    Issue.objects.create(title="Mine")
    call_command("seed_demo", "--if-empty")
    assert list(Issue.objects.values_list("title", flat=True)) == ["Mine"]
