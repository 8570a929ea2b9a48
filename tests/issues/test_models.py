import re

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from issues import services
from issues.models import Citation, Issue, Paper, validate_arxiv_id
from tests.factories.issues import CitationFactory, IssueFactory, PaperFactory

pytestmark = pytest.mark.django_db


def _save(issue: Issue) -> None:
    """Save an edited issue as the admin does: the row, then its citations."""
    issue.save()
    services.record_citations(issue=issue)


@pytest.mark.parametrize(
    "arxiv_id",
    ["2201.03545", "2201.03545v2", "0704.0001", "1501.00001v12", "hep-th/9901001",
     "hep-th/9901001v1", "math.GT/0309136", "cond-mat/0102536"],
)  # fmt: skip
def test_valid_arxiv_ids_pass(arxiv_id):
    validate_arxiv_id(arxiv_id)


@pytest.mark.parametrize(
    "arxiv_id",
    ["https://arxiv.org/abs/2201.03545", "2201.3545", "2201.035451", "22010.3545",
     "hep-th/990100", "arXiv:2201.03545", "2201.03545v", "hep th/9901001"],
)  # fmt: skip
def test_invalid_arxiv_ids_are_rejected_with_a_clear_message(arxiv_id):
    with pytest.raises(ValidationError, match="Enter an arXiv id such as 2201.03545"):
        validate_arxiv_id(arxiv_id)


def test_paper_full_clean_rejects_a_bad_arxiv_id():
    paper = Paper(title="X", slug="x", arxiv_id="not-an-id")
    with pytest.raises(ValidationError) as excinfo:
        paper.full_clean()
    assert "arxiv_id" in excinfo.value.message_dict


def test_slug_comes_from_the_title_and_stays_unique():
    first = Issue.objects.create(title="Diffusion Goes Latent!")
    second = Issue.objects.create(title="Diffusion goes latent")
    assert first.slug == "diffusion-goes-latent"
    assert second.slug == "diffusion-goes-latent-2"
    paper = Paper.objects.create(title="A ConvNet for the 2020s")
    assert paper.slug == "a-convnet-for-the-2020s"


def test_saving_an_issue_stores_rendered_html_and_reading_time():
    issue = IssueFactory(body="word " * 460 + "\n\n<!-- paywall -->\n\nsecret")
    assert "word" in issue.free_html and "secret" in issue.paid_html
    assert issue.body_html.count("secret") == 1
    assert issue.word_count == 461
    assert issue.reading_minutes == 2
    assert "secret" not in issue.public_text


def test_paid_only_issue_without_a_break_has_no_public_text():
    issue = IssueFactory(body="members only words", access=Issue.Access.PAID)
    assert issue.public_text == ""
    assert issue.paid_html == ""


def test_references_in_the_body_are_recorded_as_citations_in_order():
    a = PaperFactory(arxiv_id="2201.03545")
    b = PaperFactory(slug="maxvit", arxiv_id="2204.01697")
    issue = IssueFactory(body="[[paper:maxvit]] then [[arxiv:2201.03545v1]] then "
                         "[[arxiv:2204.01697]] again")  # fmt: skip
    assert [(c.paper, c.position) for c in issue.citations.all()] == [(b, 1), (a, 2)]


def test_saving_again_keeps_notes_and_ranks_and_adds_new_references():
    a = PaperFactory(arxiv_id="2201.03545")
    b = PaperFactory(arxiv_id="2204.01697")
    issue = IssueFactory(body="[[arxiv:2201.03545]]")
    Citation.objects.filter(issue=issue).update(rank=1, note="Best of the year")
    issue.body += "\n\n[[arxiv:2204.01697]]"
    _save(issue)
    citations = list(issue.citations.all())
    assert [(c.paper, c.rank, c.note) for c in citations] == [
        (a, 1, "Best of the year"),
        (b, None, ""),
    ]


def test_a_paper_referenced_only_below_the_paywall_is_marked_paid():
    free = PaperFactory(arxiv_id="2201.03545")
    paid = PaperFactory(arxiv_id="2204.01697")
    issue = IssueFactory(
        body="[[arxiv:2201.03545]]\n\n<!-- paywall -->\n\n[[arxiv:2204.01697]] "
        "[[arxiv:2201.03545]]"
    )
    flags = {c.paper: c.in_paid_part for c in issue.citations.all()}
    assert flags == {free: False, paid: True}


def test_editing_a_paper_refreshes_the_cards_of_issues_that_cite_it(
    django_capture_on_commit_callbacks,
):
    paper = PaperFactory(title="Old title", arxiv_id="2201.03545")
    issue = IssueFactory(body="[[arxiv:2201.03545]]")
    with django_capture_on_commit_callbacks(execute=True):
        paper.title = "New title"
        paper.save()
        services.rerender_citing_issues(paper=paper)
    issue.refresh_from_db()
    assert "New title" in issue.body_html and "Old title" not in issue.body_html


def test_adding_a_paper_resolves_an_unknown_reference_in_a_draft(
    django_capture_on_commit_callbacks,
):
    issue = IssueFactory(body="[[arxiv:2301.00001]]")
    assert issue.unknown_references == ["[[arxiv:2301.00001]]"]
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        paper = PaperFactory(arxiv_id="2301.00001", title="Finally here")
        services.rerender_citing_issues(paper=paper)
    issue.refresh_from_db()
    assert "Finally here" in issue.body_html
    assert issue.citations.count() == 1
    assert issue.unknown_references == []


def test_deleting_a_paper_takes_its_card_out_of_issues_that_cite_it(
    django_capture_on_commit_callbacks,
):
    PaperFactory(title="Withdrawn paper", arxiv_id="2201.03545")
    issue = IssueFactory(body="Intro\n\n[[arxiv:2201.03545]]")
    with django_capture_on_commit_callbacks(execute=True):
        # As the admin's "delete selected" does: a queryset delete.
        services.delete_papers(papers=Paper.objects.filter(arxiv_id="2201.03545"))
    issue.refresh_from_db()
    assert "Withdrawn paper" not in issue.body_html
    # Readers get the reference as plain text, never an error box.
    assert "<p>arXiv:2201.03545</p>" in issue.body_html
    assert "Intro" in issue.body_html
    assert issue.unknown_references == ["[[arxiv:2201.03545]]"]


def test_publishing_sets_published_at():
    issue = IssueFactory(status=Issue.Status.PUBLISHED)
    assert issue.published_at is not None
    assert issue in Issue.objects.published()


def test_published_excludes_drafts_scheduled_and_future_issues():
    from django.utils import timezone

    IssueFactory()
    IssueFactory(scheduled=True)
    IssueFactory(
        status=Issue.Status.PUBLISHED,
        published_at=timezone.now() + timezone.timedelta(hours=1),
    )
    visible = IssueFactory(published=True)
    assert list(Issue.objects.published()) == [visible]


def test_a_scheduled_issue_needs_a_publish_time():
    issue = Issue(title="Later", slug="later", status=Issue.Status.SCHEDULED)
    with pytest.raises(ValidationError) as excinfo:
        issue.full_clean()
    assert "publish_at" in excinfo.value.message_dict


def _papers_in_this_issue(client, issue) -> list[str]:
    page = client.get(issue.get_absolute_url()).content.decode()
    section = page[page.index('id="papers-heading"') :]
    return re.findall(r'class="citation-title" href="[^"]+">([^<]+)</a>', section)


def test_a_paper_added_later_takes_its_place_in_the_body_order(
    client, django_capture_on_commit_callbacks
):
    PaperFactory(arxiv_id="2201.03545", title="First in the body")
    PaperFactory(arxiv_id="2204.01697", title="Third in the body")
    issue = IssueFactory(
        published=True,
        body="[[arxiv:2201.03545]]\n\n[[arxiv:2301.00001]]\n\n[[arxiv:2204.01697]]",
    )
    assert _papers_in_this_issue(client, issue) == [
        "First in the body",
        "Third in the body",
    ]

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        paper = PaperFactory(arxiv_id="2301.00001", title="Second, added later")
        services.rerender_citing_issues(paper=paper)

    assert _papers_in_this_issue(client, issue) == [
        "First in the body",
        "Second, added later",
        "Third in the body",
    ]
    positions = list(issue.citations.values_list("position", flat=True))
    assert positions == [1, 2, 3]


def test_papers_added_by_hand_follow_the_body_references_in_their_order(client):
    a = PaperFactory(arxiv_id="2201.03545", title="Referenced first")
    b = PaperFactory(arxiv_id="2204.01697", title="Referenced second")
    issue = IssueFactory(published=True, body="Nothing cited yet.")
    CitationFactory(issue=issue, paper=PaperFactory(title="Picked by hand, 2nd"),
                    position=7)  # fmt: skip
    CitationFactory(issue=issue, paper=PaperFactory(title="Picked by hand, 1st"),
                    position=3)  # fmt: skip

    issue.body = f"[[paper:{b.slug}]] after [[paper:{a.slug}]], then {a.slug} again"
    _save(issue)

    assert _papers_in_this_issue(client, issue) == [
        "Referenced second",
        "Referenced first",
        "Picked by hand, 1st",
        "Picked by hand, 2nd",
    ]


def test_a_ranked_list_keeps_its_rank_order(client):
    first = PaperFactory(arxiv_id="2201.03545", title="Ranked first")
    second = PaperFactory(arxiv_id="2204.01697", title="Ranked second")
    issue = IssueFactory(
        published=True, body="[[arxiv:2204.01697]] and [[arxiv:2201.03545]]"
    )
    Citation.objects.filter(paper=first).update(rank=1)
    Citation.objects.filter(paper=second).update(rank=2)

    issue.body += "\n\nAnd [[arxiv:2301.00001]]."
    PaperFactory(arxiv_id="2301.00001", title="Unranked newcomer")
    _save(issue)

    assert _papers_in_this_issue(client, issue) == [
        "Ranked first",
        "Ranked second",
        "Unranked newcomer",
    ]


def test_renumbering_the_papers_writes_them_in_one_update():
    papers = [PaperFactory(arxiv_id=f"2201.{n:05d}") for n in range(10)]
    issue = IssueFactory(body="\n\n".join(f"[[paper:{p.slug}]]" for p in papers))
    issue.body = "\n\n".join(f"[[paper:{p.slug}]]" for p in reversed(papers))

    with CaptureQueriesContext(connection) as captured:
        _save(issue)

    updates = [q["sql"] for q in captured if q["sql"].startswith("UPDATE")]
    assert len([sql for sql in updates if '"issues_citation"' in sql]) == 1
    assert [c.paper for c in issue.citations.all()] == papers[::-1]
