"""The author cites a paper Quire does not have yet and adds it from the preview."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from issues.models import Paper
from tests.support.paper_apis import (
    answer_arxiv,
    arxiv_requests,
    paper_apis,  # noqa: F401
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_author_adds_an_unknown_paper_from_the_preview_in_one_click(
    page,
    live_server,
    paper_apis,  # noqa: F811
):
    get_user_model().objects.create_superuser("author", "a@example.org", "s3cret-pass!")
    answer_arxiv(paper_apis, "arxiv_convnext.atom", ids=["2201.03545"])
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto("/admin/login/?next=/admin/issues/issue/add/")
    page.get_by_label("Username").fill("author")
    page.get_by_label("Password").fill("s3cret-pass!")
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Title*", exact=True).fill("Convolutions strike back")
    page.locator("#id_body").fill("Read this first:\n\n[[arxiv:2201.03545]]\n")

    preview = page.locator(".markdownx-preview")
    expect(preview.locator(".paper-ref-error")).to_contain_text("[[arxiv:2201.03545]]")
    preview.get_by_role("link", name="add this paper").click()

    card = preview.locator(".paper-card")
    expect(card).to_contain_text("A ConvNet for the 2020s")
    expect(card).to_contain_text("Zhuang Liu, Hanzi Mao, Chao-Yuan Wu et al.")
    expect(preview.locator(".paper-ref-error")).to_have_count(0)
    paper = Paper.objects.get()
    assert paper.arxiv_id == "2201.03545v2"
    assert len(arxiv_requests(paper_apis)) == 1
    assert not [e for e in errors if "Content Security Policy" in e]
