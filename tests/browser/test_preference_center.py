"""The preference center in a real browser: sign in by the emailed link, choose
newsletters, pause and resume, change the address by the link sent to the new
one; it and the subscribe form with its newsletters pass axe-core."""

import re
from email import message_from_bytes, policy

import pytest
from django.conf import settings
from playwright.sync_api import expect

from newsletter.models import Newsletter
from subscribers.models import Subscriber, Subscription
from tests.browser.test_accessibility import axe_violations
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    from django.core.cache import cache

    cache.clear()


def emailed_path(to: str, pattern: str) -> str:
    """Return the path of the last link matching pattern emailed to the address."""
    for path in sorted(settings.EMAIL_OUTBOX_DIR.glob("*.eml"), reverse=True):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["To"] == to:
            text = message.get_body(preferencelist=("plain",)).get_content()
            found = re.search(rf"https?://[^/\s]+({pattern})", text)
            if found:
                return found.group(1)
    raise AssertionError(f"no email to {to} with {pattern}")


def emails_to(to: str) -> list:
    messages = [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(settings.EMAIL_OUTBOX_DIR.glob("*.eml"))
    ]
    return [message for message in messages if message["To"] == to]


def slugs(subscriber) -> set[str]:
    return set(
        Subscription.objects.filter(subscriber=subscriber).values_list(
            "newsletter__slug", flat=True
        )
    )


def test_a_subscriber_manages_newsletters_pause_and_address_from_the_account(
    browser, live_server, settings
):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    monthly = Newsletter.default()
    monthly.name, monthly.slug = "The monthly issue", "monthly"
    monthly.save()
    Newsletter.objects.create(name="Announcements", slug="news", position=1)
    Newsletter.objects.create(
        name="Rare notes", slug="rare", position=2, join_by_default=False
    )
    ada = SubscriberFactory(email="ada@example.org")
    assert slugs(ada) == {"monthly", "news"}
    # axe-core is injected as an inline script, which the site's policy forbids.
    context = browser.new_context(base_url=live_server.url, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        # The subscribe form offers the three, as a group of checkboxes.
        page.goto("/subscribe/")
        offered = page.get_by_role("group", name="Newsletters")
        expect(offered.get_by_role("checkbox")).to_have_count(3)
        expect(offered.get_by_label("Rare notes")).not_to_be_checked()
        assert axe_violations(page) == []

        page.goto("/account/")  # signed out: to the sign-in page
        page.get_by_label("Email").fill("ada@example.org")
        page.get_by_role("button", name="Email me a link").click()
        expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
        page.goto(emailed_path("ada@example.org", r"/account/login/\S+/"))
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Your account")).to_be_visible()
        assert axe_violations(page) == []

        newsletters = page.get_by_role("group", name="Newsletters you receive")
        expect(newsletters.get_by_label("The monthly issue")).to_be_checked()
        expect(newsletters.get_by_label("Rare notes")).not_to_be_checked()
        newsletters.get_by_label("Announcements").uncheck()
        newsletters.get_by_label("Rare notes").check()
        page.get_by_role("button", name="Save newsletters").click()
        expect(page.get_by_text("Your newsletters are saved.")).to_be_visible()
        expect(newsletters.get_by_label("Rare notes")).to_be_checked()
        assert slugs(ada) == {"monthly", "rare"}

        page.get_by_role("button", name="Pause emails").click()
        expect(page.get_by_test_id("status")).to_have_text("Active (paused)")
        assert not Subscriber.objects.receiving().filter(pk=ada.pk).exists()
        page.get_by_role("button", name="Resume emails").click()
        expect(page.get_by_test_id("status")).to_have_text("Active")
        assert Subscriber.objects.receiving().filter(pk=ada.pk).exists()

        page.get_by_label("New email address").fill("ada@new.example.org")
        page.get_by_role("button", name="Change address").click()
        expect(
            page.get_by_text("We sent a link to ada@new.example.org")
        ).to_be_visible()
        expect(page.get_by_test_id("email")).to_have_text("ada@example.org")
        assert Subscriber.objects.get(pk=ada.pk).email == "ada@example.org"
        page.goto(emailed_path("ada@new.example.org", r"/account/email/\S+/"))
        page.get_by_role("button", name="Use this address").click()
        expect(
            page.get_by_role("heading", name="Your address is changed")
        ).to_be_visible()
        expect(page.get_by_test_id("new-email")).to_have_text("ada@new.example.org")

        assert Subscriber.objects.get(pk=ada.pk).email == "ada@new.example.org"
        (notice,) = [
            m for m in emails_to("ada@example.org") if "changed" in m["Subject"]
        ]
        assert (
            "now goes to another address"
            in notice.get_body(preferencelist=("plain",)).get_content()
        )
        page.get_by_role("link", name="Your account").first.click()
        expect(page.get_by_test_id("email")).to_have_text("ada@new.example.org")
        assert slugs(ada) == {"monthly", "rare"}
        assert axe_violations(page) == []
    finally:
        context.close()
