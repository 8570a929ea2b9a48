"""Beat's arXiv version check, and the note a paper page shows after it."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from issues import paper_versions, tasks
from issues.models import Paper
from tests.factories.issues import PaperFactory
from tests.support.paper_apis import answer_arxiv, arxiv_requests

pytestmark = pytest.mark.django_db

NOTE = "arXiv has a newer version (v2) than the one discussed here (v1)"


def test_the_paper_page_notes_a_newer_version_once_checked(paper_apis):
    paper = PaperFactory(slug="convnext", arxiv_id="2201.03545v1")
    answer_arxiv(paper_apis, "arxiv_convnext.atom", ids=["2201.03545"])
    reader = Client()
    before = reader.get(paper.get_absolute_url())  # now in the page cache
    assert before.status_code == 200
    assert "newer version" not in before.text

    result = paper_versions.check_arxiv_versions()

    assert (result.checked, result.newer, result.error) == (1, 1, "")
    paper.refresh_from_db()
    assert paper.arxiv_latest_version == 2
    after = reader.get(paper.get_absolute_url())
    assert NOTE in after.text
    assert 'href="https://arxiv.org/abs/2201.03545"' in after.text


def test_no_note_when_the_discussed_version_is_the_latest(paper_apis):
    paper = PaperFactory(slug="convnext", arxiv_id="2201.03545v2")
    answer_arxiv(paper_apis, "arxiv_convnext.atom", ids=["2201.03545"])

    paper_versions.check_arxiv_versions()

    paper.refresh_from_db()
    assert paper.arxiv_latest_version == 2
    assert "newer version" not in Client().get(paper.get_absolute_url()).text


def test_many_papers_are_asked_in_one_request(paper_apis):
    ids = ["2201.03545v1", "1706.03762v5", "hep-th/9901001v1"]
    for arxiv_id in ids:
        PaperFactory(arxiv_id=arxiv_id)
    PaperFactory(arxiv_id="", doi="10.1234/no-arxiv")
    answer_arxiv(
        paper_apis,
        "arxiv_versions_batch.atom",
        ids=["2201.03545", "1706.03762", "hep-th/9901001"],
    )

    result = paper_versions.check_arxiv_versions()

    assert (result.checked, result.newer) == (3, 3)
    assert len(arxiv_requests(paper_apis)) == 1
    latest = dict(Paper.objects.values_list("arxiv_id", "arxiv_latest_version"))
    assert latest == {
        "2201.03545v1": 2, "1706.03762v5": 7, "hep-th/9901001v1": 3,
        "": None,
    }  # fmt: skip


def test_batches_keep_arxivs_pace_and_the_runs_limit(paper_apis, settings):
    settings.ARXIV_BATCH_SIZE = 1
    settings.ARXIV_CHECK_BATCHES = 2
    settings.ARXIV_MIN_INTERVAL = 0.2
    for arxiv_id in ["2201.03545v1", "1706.03762v5", "hep-th/9901001v1"]:
        PaperFactory(arxiv_id=arxiv_id)
    paper_apis.expect_request("/api/query").respond_with_data(
        (
            django_settings.BASE_DIR / "tests/fixtures/papers/arxiv_versions_batch.atom"
        ).read_bytes(),
        content_type="application/atom+xml",
    )

    result = paper_versions.check_arxiv_versions()

    asked = [r.args["id_list"] for r in arxiv_requests(paper_apis)]
    assert result.checked == 2
    assert asked == ["2201.03545", "1706.03762"]  # one id each, the run's two
    assert Paper.objects.filter(arxiv_checked_at__isnull=True).count() == 1


def test_a_paper_is_checked_at_most_once_in_the_recheck_period(paper_apis, settings):
    settings.ARXIV_RECHECK_DAYS = 7
    now = timezone.now()
    PaperFactory(arxiv_id="2201.03545v1", arxiv_checked_at=now - timedelta(days=2))
    stale = PaperFactory(
        arxiv_id="1706.03762v5", arxiv_checked_at=now - timedelta(days=8)
    )
    answer_arxiv(paper_apis, "arxiv_versions_batch.atom", ids=["1706.03762"])

    first = paper_versions.check_arxiv_versions(now=now)
    again = paper_versions.check_arxiv_versions(now=now + timedelta(hours=1))

    assert (first.checked, again.checked) == (1, 0)
    stale.refresh_from_db()
    assert stale.arxiv_latest_version == 7
    assert len(arxiv_requests(paper_apis)) == 1


def test_arxivs_slow_down_stops_the_run_and_is_kept(paper_apis):
    paper = PaperFactory(arxiv_id="2201.03545v1")
    paper_apis.expect_request("/api/query").respond_with_data(
        "Rate exceeded.", status=503, headers={"Retry-After": "5"}
    )

    result = paper_versions.check_arxiv_versions()

    assert result.checked == 0
    assert result.error == "arXiv asks us to slow down, try again in 5 s."
    paper.refresh_from_db()
    assert paper.arxiv_checked_at is None  # asked again on a later run


def test_beat_runs_the_check_as_a_task(paper_apis):
    PaperFactory(arxiv_id="2201.03545v1")
    answer_arxiv(paper_apis, "arxiv_convnext.atom", ids=["2201.03545"])
    entry = django_settings.CELERY_BEAT_SCHEDULE["check-arxiv-versions"]

    assert entry["task"] == tasks.check_arxiv_versions.name
    outcome = tasks.check_arxiv_versions.apply().get()

    assert outcome == {"checked": 1, "newer": 1, "error": ""}
