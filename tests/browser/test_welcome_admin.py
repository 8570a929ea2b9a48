"""Writing a welcome email in Chromium: the form in the admin's theme, the Markdown
editor, the list and the email preview; axe-core finds no violation."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from issues.models import Issue
from issues.sending.models import WelcomeStep
from tests.browser.test_accessibility import axe_violations
from tests.support.admin_browser import admin_session

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "s3cret-pass!"


def test_the_author_writes_a_welcome_email_and_previews_it(browser, live_server):
    get_user_model().objects.create_superuser("author", "author@example.org", PASSWORD)
    context, page = admin_session(browser, live_server, "light", "author", PASSWORD)
    try:
        page.goto("/admin/sending/welcomestep/add/")
        expect(page.get_by_text("confirmed before that do not get it")).to_be_visible()
        assert axe_violations(page) == []
        page.get_by_label("Subject").fill("Three days in")
        page.locator("textarea#id_body").fill("Here is **our best** so far.")
        page.get_by_label("Days after confirming").fill("3")
        page.get_by_label("Condition").select_option("free")
        page.get_by_label("Active").check()
        page.get_by_role("button", name="Save", exact=True).click()

        row = page.get_by_role("row", name="Three days in")
        expect(row).to_be_visible()
        expect(row).to_contain_text("3 days")
        step = WelcomeStep.objects.get()
        assert step.delay == timedelta(days=3) and step.activated_at is not None
        assert step.issue.kind == Issue.Kind.WELCOME

        page.goto(f"/admin/sending/welcomestep/{step.pk}/change/")
        page.get_by_role("link", name="Preview the email").click()
        expect(page.get_by_text("Subject: Three days in")).to_be_visible()
        frame = page.frame_locator("iframe.email-preview-html")
        expect(frame.get_by_text("our best")).to_be_visible()
        expect(frame.get_by_text("View in your browser")).to_have_count(0)
    finally:
        context.close()
