"""Labels and invitations in the subscriber admin, in Chromium: the bulk action's
page and the invitation page wear the admin's theme and pass axe-core."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from newsletter.models import Newsletter
from subscribers.models import Subscriber
from tests.browser.test_accessibility import axe_violations
from tests.factories.subscribers import SubscriberFactory
from tests.support.admin_browser import admin_session

pytestmark = pytest.mark.django_db(transaction=True)

# Looked at, never committed.
SCREENSHOTS = Path("var/screenshots")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_labels_are_added_in_bulk_from_the_list(browser, live_server, scheme):
    Newsletter.default()
    for name in ("ada", "grace", "linus"):
        SubscriberFactory(email=f"{name}@example.org")
    get_user_model().objects.create_superuser("author", "a@example.org", "s3cret-pass!")
    context, page = admin_session(
        browser, live_server, scheme, "author", "s3cret-pass!"
    )

    page.goto("/admin/subscribers/subscriber/")
    for email in ("ada@example.org", "grace@example.org"):
        page.get_by_role("row").filter(has_text=email).get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option("add_label")
    page.get_by_role("button", name="Run").click()

    expect(page.get_by_role("heading", name="Add labels", level=1)).to_be_visible()
    expect(page.locator("[data-bulk=count]")).to_contain_text("2 subscribers")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"subscribers-add-labels-{scheme}.png")
    assert axe_violations(page) == []
    page.get_by_label("New labels").fill("Early readers")
    page.get_by_role("button", name="Add labels").click()

    expect(page.get_by_text("Gave 2 label(s): Early readers.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="ada@example.org")).to_contain_text(
        "Early readers"
    )
    assert set(
        Subscriber.objects.filter(labels__name="Early readers").values_list(
            "email", flat=True
        )
    ) == {"ada@example.org", "grace@example.org"}

    page.get_by_role("link", name="Add and invite").click()
    expect(
        page.get_by_role("heading", name="Add a subscriber and send an invitation")
    ).to_be_visible()
    page.screenshot(path=SCREENSHOTS / f"subscribers-invite-{scheme}.png")
    assert axe_violations(page) == []
    page.get_by_label("Email").fill("new@example.org")
    page.get_by_role("button", name="Add and send the invitation").click()
    expect(page.get_by_text("Invited new@example.org")).to_be_visible()
    assert Subscriber.objects.get(email="new@example.org").status == "pending"
    context.close()
