"""The author's publishing path in the admin, with a real worker and SMTP server.

Preview the email, send a test to oneself, publish to 300 subscribers and watch the
send panel fill up; schedule a second issue and let beat's service publish it.
"""

import re
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from issues.models import Issue
from issues.sending import services
from issues.sending.models import Send
from tests.conftest import wait_for
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers

pytestmark = pytest.mark.django_db(transaction=True)

AUTHOR_EMAIL = "author@example.org"
SUBSCRIBERS = 300
BODY = """\
Everything above the break goes to every subscriber.

<!-- paywall -->

Only supporters read the ablation tables.
"""


def worker_env(smtp_server) -> dict:
    return {
        "EMAIL_URL": f"smtp://{smtp_server.host}:{smtp_server.port}",
        "SENDING_BATCH_SIZE": "20",
        # Slow enough that the panel is seen part way through (300 take ~15 s).
        "SENDING_RATE_LIMIT": "20",
        "SENDING_RETRY_BASE_DELAY": "0.2",
        "SENDING_RETRY_MAX_DELAY": "1",
    }


def log_in(page) -> None:
    get_user_model().objects.create_superuser("author", AUTHOR_EMAIL, "s3cret-pass!")
    page.goto("/admin/")
    page.get_by_label("Username").fill("author")
    page.get_by_label("Password").fill("s3cret-pass!")
    page.get_by_role("button", name="Log in").click()
    # The theme keeps "Log out" in the account menu, under the staff member's name.
    page.get_by_text(AUTHOR_EMAIL).click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def open_issue(page, title: str) -> None:
    page.goto("/admin/issues/issue/")
    page.get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name="Email")).to_be_visible()


def panel_figure(panel, name: str) -> int:
    return int(panel.locator(f'[data-field="{name}"]').inner_text())


def test_author_previews_tests_publishes_and_watches_the_send(
    page, live_server, smtp_settings, celery_worker_factory
):
    smtp_server = smtp_settings
    subscribers = make_subscribers(SUBSCRIBERS)
    IssueFactory(title="Attention, revisited", slug="attention-revisited", body=BODY)
    celery_worker_factory(extra_env=worker_env(smtp_server))
    log_in(page)
    open_issue(page, "Attention, revisited")

    # Preview: the free version stops at the break, the paid one has it all.
    page.get_by_role("link", name="Preview email").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Email preview")
    expect(page.get_by_text("Subject: Attention, revisited")).to_be_visible()
    email_body = page.frame_locator("iframe[title='HTML email']")
    expect(email_body.get_by_text("goes to every subscriber")).to_be_visible()
    expect(email_body.get_by_text("ablation tables")).to_have_count(0)
    expect(page.locator("pre")).not_to_contain_text("ablation tables")
    page.screenshot(path="/tmp/f-preview-free.png", full_page=True)
    expect(page.get_by_role("link", name="As a free subscriber")).to_have_attribute(
        "aria-current", "page"
    )
    page.get_by_role("link", name="As a paid subscriber").click()
    expect(page.get_by_role("link", name="As a paid subscriber")).to_have_attribute(
        "aria-current", "page"
    )
    expect(email_body.get_by_text("ablation tables")).to_be_visible()
    expect(page.locator("pre")).to_contain_text("ablation tables")
    page.screenshot(path="/tmp/f-preview-paid.png", full_page=True)
    # Below the email's frame, whose page may still move it as it loads.
    page.get_by_role("link", name="Back to the issue").scroll_into_view_if_needed()
    page.get_by_role("link", name="Back to the issue").click()
    expect(page.get_by_role("heading", name="Email")).to_be_visible()

    # A test to the author's own address: it arrives marked, nobody else gets it.
    page.get_by_role("link", name=re.compile("^Send a test")).click()
    expect(page.get_by_label("Send to")).to_have_value(AUTHOR_EMAIL)
    page.screenshot(path="/tmp/f-send-test.png", full_page=True)
    page.get_by_role("button", name="Send the test").click()
    expect(page.locator(".messagelist")).to_contain_text(
        f"Test email sent to {AUTHOR_EMAIL}"
    )
    wait_for(lambda: smtp_server.messages, timeout=10, message="the test email")
    [test_email] = smtp_server.messages
    assert test_email.rcpt_tos == [AUTHOR_EMAIL]
    assert test_email.message["Subject"] == "[Test] Attention, revisited"
    assert test_email.message["X-Quire-Test"] == "yes"
    assert not Send.objects.exists()
    assert Issue.objects.get(slug="attention-revisited").status == Issue.Status.DRAFT

    # Publish now: the confirmation names the audience, then the panel takes over.
    page.get_by_role("link", name="Publish now…").click()
    expect(
        page.get_by_text(f"{SUBSCRIBERS} subscribers", exact=False).first
    ).to_be_visible()
    page.screenshot(path="/tmp/f-confirm.png", full_page=True)
    page.emulate_media(color_scheme="dark")
    page.screenshot(path="/tmp/f-confirm-dark.png")
    page.emulate_media(color_scheme="light")
    page.get_by_role(
        "button", name=f"Yes, publish and send to {SUBSCRIBERS} subscribers"
    ).click()
    expect(page.locator(".messagelist")).to_contain_text("sending has started")
    panel = page.locator("#send-panel")
    expect(panel.locator('[data-field="total"]')).to_have_text(str(SUBSCRIBERS))

    # Part way: the panel refreshes itself (no reload) with a growing count.
    expect(panel.get_by_role("button", name="Pause")).to_be_visible()
    expect(panel.get_by_role("button", name="Resume")).to_be_hidden()
    expect(panel.get_by_role("button", name="Retry failed")).to_be_hidden()
    first_seen = panel_figure(panel, "sent")
    page.wait_for_function(
        """([before, total]) => {
            const sent = +document.querySelector(
                '#send-panel [data-field="sent"]').textContent;
            return sent > before && sent < total / 2;
        }""",
        arg=[first_seen, SUBSCRIBERS],
    )
    bar = panel.locator("progress")
    assert 0 < int(bar.get_attribute("value") or 0) < SUBSCRIBERS
    page.screenshot(path="/tmp/f-panel-mid.png", full_page=True)

    # Pause holds the send; Resume lets it finish.
    panel.get_by_role("button", name="Pause").click()
    expect(page.locator(".messagelist")).to_contain_text("Sending is paused.")
    expect(panel.locator('[data-field="status_display"]')).to_have_text("Paused")
    expect(panel.get_by_role("button", name="Pause")).to_be_hidden()
    assert Send.objects.get().status == Send.Status.PAUSED
    panel.get_by_role("button", name="Resume").click()
    expect(page.locator(".messagelist")).to_contain_text("Sending resumed.")
    expect(panel.get_by_role("button", name="Resume")).to_be_hidden()

    expect(panel.locator('[data-field="status_display"]')).to_have_text(
        "Done", timeout=60_000
    )
    expect(panel.locator('[data-field="sent"]')).to_have_text(str(SUBSCRIBERS))
    expect(panel.locator('[data-field="percent"]')).to_have_text("100")
    expect(bar).to_have_attribute("value", str(SUBSCRIBERS))
    expect(panel.get_by_role("button", name="Pause")).to_be_hidden()
    expect(panel.get_by_text("estimated time left")).to_be_hidden()
    page.emulate_media(color_scheme="dark")
    page.screenshot(path="/tmp/f-panel-done-dark.png")
    page.emulate_media(color_scheme="light")
    page.screenshot(path="/tmp/f-panel-done.png", full_page=True)

    # The issue still saves after its send (a typo fixed for the web version).
    # The theme's labels end without a colon.
    page.get_by_label("Subtitle", exact=True).fill("Fixed after sending")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    issue = Issue.objects.get(slug="attention-revisited")
    assert issue.subtitle == "Fixed after sending"
    assert issue.status == Issue.Status.PUBLISHED

    received = Counter(
        rcpt
        for item in smtp_server.messages
        if item.message["X-Quire-Test"] is None
        for rcpt in item.rcpt_tos
    )
    assert set(received) == {s.email for s in subscribers}
    assert set(received.values()) == {1}
    assert AUTHOR_EMAIL not in received
    assert len(smtp_server.messages) == SUBSCRIBERS + 1  # and the one test


def test_author_schedules_an_issue_and_beat_sends_it(
    page, live_server, smtp_settings, celery_worker_factory
):
    smtp_server = smtp_settings
    subscribers = make_subscribers(SUBSCRIBERS)
    IssueFactory(title="Scaling laws, again", slug="scaling-laws-again", body=BODY)
    celery_worker_factory(extra_env=worker_env(smtp_server))
    log_in(page)
    open_issue(page, "Scaling laws, again")

    page.get_by_role("link", name="Schedule…").click()
    expect(page.get_by_text(f"{SUBSCRIBERS} subscribers").first).to_be_visible()
    # Due straight away (this very second): what beat would pick up on its next run.
    when = timezone.localtime(timezone.now()).replace(microsecond=0)
    page.get_by_label("Date", exact=True).fill(when.strftime("%Y-%m-%d"))
    page.get_by_label("Time", exact=True).fill(when.strftime("%H:%M:%S"))
    page.screenshot(path="/tmp/f-schedule.png", full_page=True)
    page.get_by_role("button", name=f"Schedule for {SUBSCRIBERS} subscribers").click()
    expect(page.locator(".messagelist")).to_contain_text("will be published and sent")
    panel = page.locator("#send-panel")
    expect(panel).to_contain_text("Scheduled")
    expect(panel.get_by_role("link", name="Publish now…")).to_be_visible()
    issue = Issue.objects.get(slug="scaling-laws-again")
    assert issue.status == Issue.Status.SCHEDULED
    assert not Send.objects.exists()

    # Beat's service publishes it: its time has come.
    [send] = services.publish_due_issues()
    assert send.issue_id == issue.pk
    # The open page notices on its own, and offers to show the send.
    expect(panel.get_by_role("status")).to_contain_text(
        "has been published and is being sent", timeout=20_000
    )
    panel.get_by_role("link", name="Reload the page to follow the send").click()
    expect(panel.locator('[data-field="status_display"]')).to_have_text(
        "Done", timeout=60_000
    )
    expect(panel.locator('[data-field="sent"]')).to_have_text(str(SUBSCRIBERS))
    expect(panel.get_by_role("link", name="Publish now…")).to_have_count(0)
    page.screenshot(path="/tmp/f-scheduled-done.png", full_page=True)
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED
    received = Counter(smtp_server.recipients())
    assert set(received) == {s.email for s in subscribers}
    assert set(received.values()) == {1}
