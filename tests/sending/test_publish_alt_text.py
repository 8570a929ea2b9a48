"""An image without alt text is refused by every way of publishing, naming the image.

Drafts still save; the editor's preview marks the image; once described, the issue
goes out with its figure and caption in the email.
"""

import logging
from datetime import timedelta
from html import unescape
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from issues.models import Issue
from issues.rendering import find_images_without_alt, missing_alt_message
from issues.sending import services
from issues.sending.models import Send
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers
from tests.sending.test_publish_checks import (
    assert_not_published,
    issue_form,
    page_text,
)

pytestmark = pytest.mark.django_db

BODY = (
    "Intro.\n\n![A cat on a laptop](cat.png)\n\n"
    '![](chart.png "Accuracy by model size")\n'
)
NAMED = "Image 2 (Figure 1, chart.png) has no alt text: describe it in ![…](chart.png)."
MESSAGE = missing_alt_message(find_images_without_alt(BODY))


@pytest.fixture
def undescribed(db) -> Issue:
    return IssueFactory(title="Scaling", slug="scaling", body=BODY)


def test_the_message_names_the_image_by_place_address_and_figure():
    assert MESSAGE.startswith(NAMED)
    assert "cannot be published or scheduled" in MESSAGE


def test_the_services_refuse_publishing_and_scheduling(undescribed):
    with pytest.raises(services.MissingAltTextError) as publishing:
        services.publish_issue(issue=undescribed)
    with pytest.raises(services.MissingAltTextError) as scheduling:
        services.schedule_issue(
            issue=undescribed, publish_at=timezone.now() + timedelta(days=1)
        )
    assert str(publishing.value) == str(scheduling.value) == MESSAGE
    assert_not_published(undescribed)


def test_publish_now_in_the_admin_says_which_image_and_sends_nothing(
    author_client, undescribed, smtp_settings, django_capture_on_commit_callbacks
):
    make_subscribers(2)
    url = reverse("admin:sending_publish", args=[undescribed.pk])
    page = page_text(author_client.get(url))
    assert NAMED in page
    assert "Yes, publish and send" not in page

    with django_capture_on_commit_callbacks(execute=True):
        response = author_client.post(url)
    assert response.status_code == 200
    assert NAMED in page_text(response)
    assert_not_published(undescribed)
    assert smtp_settings.messages == []


def test_the_status_field_refuses_but_a_draft_still_saves(author_client, undescribed):
    change = reverse("admin:issues_issue_change", args=[undescribed.pk])
    for status in ("published", "scheduled"):
        response = author_client.post(
            change,
            issue_form(
                undescribed,
                status=status,
                publish_at_0="2099-01-02",
                publish_at_1="09:30:00",
            ),
        )
        assert response.status_code == 200, status
        assert NAMED in page_text(response), status
        assert_not_published(undescribed)

    edited = BODY + "\nA draft may say more.\n"
    response = author_client.post(change, issue_form(undescribed, body=edited))
    assert response.status_code == 302
    undescribed.refresh_from_db()
    assert undescribed.body.replace("\r\n", "\n").strip() == edited.strip()
    assert undescribed.status == Issue.Status.DRAFT


def test_the_command_exits_with_the_message(undescribed, smtp_settings):
    make_subscribers(2)
    with pytest.raises(CommandError) as caught:
        call_command("publish_issue", undescribed.slug, stdout=StringIO())
    assert str(caught.value) == MESSAGE
    assert_not_published(undescribed)
    assert smtp_settings.messages == []


def test_beat_keeps_it_scheduled_with_the_reason(undescribed, caplog):
    now = timezone.now()
    # Scheduled while it was fine; the alt text was removed since (a command, an
    # old form).
    fine = BODY.replace("![](chart.png", "![Accuracy chart](chart.png")
    Issue.objects.filter(pk=undescribed.pk).update(body=fine)
    services.schedule_issue(issue=undescribed, publish_at=now - timedelta(minutes=1))
    Issue.objects.filter(pk=undescribed.pk).update(body=BODY)

    with caplog.at_level(logging.WARNING, logger="issues.sending.services"):
        assert services.publish_due_issues(now=now) == []
    undescribed.refresh_from_db()
    assert undescribed.status == Issue.Status.SCHEDULED
    assert undescribed.publish_error == MESSAGE
    assert not Send.objects.filter(issue=undescribed).exists()


def test_the_preview_marks_the_image(client, editor):
    client.force_login(editor)
    response = client.post("/markdownx/markdownify/", {"content": BODY})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="image-alt-error"') == 1
    assert unescape(NAMED) in unescape(html)
    assert html.index('src="chart.png"') < html.index("image-alt-error")


def test_once_described_it_goes_out_with_its_figure_over_smtp(
    undescribed, smtp_settings, django_capture_on_commit_callbacks
):
    make_subscribers(1)
    Issue.objects.filter(pk=undescribed.pk).update(
        body=BODY.replace("![](chart.png", "![Accuracy rises with size](chart.png")
        + "\nA claim[^1].\n\n[^1]: The footnote.\n"
    )
    undescribed.refresh_from_db()
    undescribed.save()  # renders the stored HTML again
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("publish_issue", undescribed.slug, stdout=out)
    assert "sending to 1 subscribers" in out.getvalue()
    [received] = smtp_settings.messages
    html = received.message.get_body(("html",)).get_content()
    assert '<figure id="figure-1"' in html
    assert 'alt="Accuracy rises with size"' in html
    assert "Figure 1.</span> Accuracy by model size</figcaption>" in html
    assert "<figcaption style=" in html
    assert 'class="sidenote"' not in html and html.count("The footnote.") == 1
    text = received.message.get_body(("plain",)).get_content()
    assert "Figure 1. Accuracy by model size" in text
