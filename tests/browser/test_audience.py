"""Choosing an issue's audience in the admin, in Chromium: a segment left out is
refused, and the confirmation page counts exactly who will get the issue."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from issues.models import Issue
from issues.sending.models import Send
from subscribers.billing.models import Membership
from subscribers.models import Label, Segment
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers
from tests.support.admin_browser import admin_session

pytestmark = pytest.mark.django_db(transaction=True)


def test_author_chooses_an_audience_and_sees_the_exact_count(browser, live_server):
    readers = make_subscribers(12)
    for subscriber in readers[:4]:
        MembershipFactory(subscriber=subscriber, status=Membership.Status.ACTIVE)
    ml = Label.objects.create(name="ml")
    for subscriber in readers[2:7]:
        subscriber.labels.add(ml)
    segment = Segment.objects.create(name="ML readers", membership="paid")
    segment.labels.add(ml)
    issue = IssueFactory(title="Sparse attention", slug="sparse-attention")
    get_user_model().objects.create_superuser(
        "author", "author@example.org", "s3cret-pass!"
    )
    context, page = admin_session(
        browser, live_server, "light", "author", "s3cret-pass!"
    )
    change = f"/admin/issues/issue/{issue.pk}/change/"

    # Everyone on the newsletter first.
    page.goto(change)
    page.get_by_role("link", name="Publish now…").click()
    expect(page.locator(".send-count strong")).to_have_text("12 subscribers")

    # A segment audience without its segment is refused, saying why.
    page.goto(change)
    page.get_by_label("Audience").select_option(label="A segment")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(
        page.get_by_text("Choose the segment this issue is sent to.")
    ).to_be_visible()

    page.get_by_label("Audience").select_option(label="A segment")
    page.locator("select[name=segment]").select_option(label="ML readers")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".send-audience").first).to_contain_text("ML readers")
    page.get_by_role("link", name="Publish now…").click()
    # Labelled ml (2-6) and paying (0-3): readers 2 and 3.
    expect(page.locator(".send-count strong")).to_have_text("2 subscribers")
    expect(
        page.get_by_role("button", name="Yes, publish and send to 2 subscribers")
    ).to_be_visible()

    # Paid only: the four paying members.
    page.goto(change)
    page.get_by_label("Audience").select_option(label="Paying members only")
    page.locator("select[name=segment]").select_option(value="")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".send-audience").first).to_contain_text("Paying members only")
    page.get_by_role("link", name="Publish now…").click()
    expect(page.locator(".send-count strong")).to_have_text("4 subscribers")

    # Web only: nobody is emailed, and publishing makes no send.
    page.goto(change)
    page.get_by_label("Audience").select_option(label=Issue.Audience.WEB.label)
    page.get_by_role("button", name="Save and continue editing").click()
    page.get_by_role("link", name="Publish now…").click()
    expect(page.get_by_text("Nobody is emailed")).to_be_visible()
    page.get_by_role("button", name="Yes, publish on the site").click()
    expect(
        page.get_by_text("is published on the site; nobody is emailed")
    ).to_be_visible()
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED
    assert not Send.objects.filter(issue=issue).exists()
    context.close()
