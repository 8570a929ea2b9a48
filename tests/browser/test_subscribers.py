import re
from email import message_from_bytes, policy

import pytest
from django.conf import settings
from playwright.sync_api import expect

from subscribers.models import Subscriber

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    from django.core.cache import cache

    cache.clear()


def confirmation_path() -> str:
    """Return the confirmation link's path from the one .eml file in the outbox."""
    files = sorted(settings.EMAIL_OUTBOX_DIR.glob("*.eml"))
    assert len(files) == 1, files
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"] == "ada@example.org"
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"https?://[^/\s]+(/subscribe/confirm/\S+/)", text).group(1)


def test_subscribe_on_home_confirm_from_the_email_then_unsubscribe_from_account(
    page, settings
):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"

    page.goto("/")
    form = page.locator("form.subscribe-box").first
    form.get_by_label("Get new issues by email").fill("Ada@Example.org")
    form.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()

    page.goto(confirmation_path())
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="You're subscribed")).to_be_visible()
    assert Subscriber.objects.receiving().get().email == "ada@example.org"

    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_test_id("status")).to_have_text("Active")
    page.get_by_role("button", name="Leave all newsletters").click()

    expect(page.get_by_test_id("status")).to_have_text("Unsubscribed")
    expect(page.get_by_role("button", name="Subscribe again")).to_be_visible()
    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED
    assert not Subscriber.objects.receiving().exists()
