"""An issue's report in Chromium: the figures, the first hours' chart, the links.

The issue goes to four readers; a person opens and clicks, another opens on an
iPhone behind Apple's privacy proxy and clicks, a security gateway fetches the image
and every link. The hits go through the pixel and the redirect and are flushed into
the figures as beat's flush does. A screenshot goes to var/screenshots/ (never
committed); axe-core finds no violation in the light or the dark theme.
"""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from playwright.sync_api import expect

from issues.analytics.flush import flush_hits
from issues.analytics.reports import issue_report
from tests.analytics.conftest import buffer  # noqa: F401 - autouse: a buffer of its own
from tests.analytics.helpers import (
    APPLE_PROXY,
    CHROME,
    IPHONE_MAIL,
    SCANNER,
    link_to,
    make_issue,
    pixel,
    send_issue,
    tracked_links,
)
from tests.browser.test_accessibility import axe_violations
from tests.support.admin_browser import admin_session

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOTS = Path("var/screenshots")
CODE = "https://github.com/facebookresearch/ConvNeXt"
BLOG = "https://blog.example.org/post"
PASSWORD = "s3cret-pass!"


@pytest.fixture
def reported(settings):
    """An issue sent to four readers, its hits flushed into the figures."""
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    issue = make_issue()
    messages = send_issue(issue, settings.EMAIL_OUTBOX_DIR, subscribers=4)
    person, iphone, gateway = (messages[f"reader{n}@example.org"] for n in range(3))
    client = Client()
    client.get(pixel(person), HTTP_USER_AGENT=CHROME)
    client.get(link_to(person, BLOG), HTTP_USER_AGENT=CHROME)
    client.get(pixel(iphone), HTTP_USER_AGENT=APPLE_PROXY)
    client.get(pixel(iphone), HTTP_USER_AGENT=IPHONE_MAIL)
    client.get(link_to(iphone, CODE), HTTP_USER_AGENT=IPHONE_MAIL)
    client.get(pixel(gateway), HTTP_USER_AGENT=SCANNER)
    scanned = list(dict.fromkeys(tracked_links(gateway)))
    for path in scanned:
        client.get(path, HTTP_USER_AGENT=SCANNER)
    flush_hits()
    return issue, len(scanned)


def staff_page(browser, live_server, scheme: str, *codenames: str):
    user = get_user_model().objects.create_user(
        "analyst", "analyst@example.org", PASSWORD, is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return admin_session(browser, live_server, scheme, "analyst", PASSWORD)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_report_shows_the_figures_and_draws_the_first_hours(
    browser, live_server, reported, scheme
):
    issue, scanned = reported
    report = issue_report(issue)
    # What the readers did, as the report must count it: two people opened and
    # clicked, Apple's proxy and the gateway are machines.
    assert (report.delivered, report.unique_opens, report.unique_clicks) == (4, 2, 2)
    assert (report.machine_opens, report.machine_clicks) == (2, scanned)
    context, page = staff_page(browser, live_server, scheme, "view_report")
    try:
        response = page.goto(f"/admin/issues/issue/{issue.pk}/report/")
        assert response is not None and response.status == 200
        dark = page.evaluate("document.documentElement.classList.contains('dark')")
        assert dark is (scheme == "dark")
        figures = {
            "delivered": "4",
            "bounced": "0",
            "unique_opens": "2 (50 %)",
            "unique_clicks": "2 (50 %)",
            "unsubscribes": "0",
            "machine": f"2 opens, {scanned} clicks",
        }
        for name, shown in figures.items():
            expect(page.locator(f"[data-figure={name}]")).to_have_text(shown)

        canvas = page.locator('canvas[data-chart="first-hours"]')
        expect(canvas).to_be_visible()
        drawn = page.evaluate(
            """() => {
                const canvas = document.querySelector(
                    'canvas[data-chart="first-hours"]');
                const chart = window.Chart && window.Chart.getChart(canvas);
                return {
                    width: canvas.width, height: canvas.height,
                    series: chart ? chart.data.datasets.map(d =>
                        [d.label, d.data.reduce((a, b) => a + b, 0)]) : null,
                };
            }"""
        )
        assert drawn["width"] > 0 and drawn["height"] > 0
        assert drawn["series"] == [
            ["People who opened", 2],
            ["People who clicked", 2],
            ["Machines", report.machine_opens + report.machine_clicks],
        ]
        # The chart's figures, as a table: a header and 72 hours.
        page.get_by_text("Figures: People who opened").click()
        hours = page.get_by_role("table", name="People who opened", exact=False)
        expect(hours.get_by_role("row")).to_have_count(73)

        links = page.locator("h2:text-is('Links') + table")
        expect(links.get_by_role("row")).to_have_count(1 + len(report.links))
        for url in (CODE, BLOG):
            expect(links.get_by_role("cell", name=url, exact=True)).to_be_visible()
        papers = page.locator("h2:text-is('Papers') + table")
        expect(
            papers.get_by_role("cell", name="A ConvNet for the 2020s", exact=True)
        ).to_be_visible()

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"report-{scheme}.png", full_page=True)
        assert axe_violations(page) == []
    finally:
        context.close()


def test_staff_without_the_permission_get_no_report(browser, live_server, reported):
    issue, _ = reported
    context, page = staff_page(
        browser, live_server, "light", "view_issue", "change_issue"
    )
    try:
        response = page.goto(f"/admin/issues/issue/{issue.pk}/report/")
        assert response is not None and response.status == 403
        expect(page.locator("[data-figure]")).to_have_count(0)
        expect(page.locator("canvas[data-chart]")).to_have_count(0)
        page.goto(f"/admin/issues/issue/{issue.pk}/change/")
        expect(page.get_by_text("How this issue did")).to_have_count(0)
    finally:
        context.close()


def test_the_report_draws_its_chart_under_the_policy(page, live_server, reported):
    """No inline style or script: the chart and its table under the strict CSP."""
    from tests.browser.test_csp import Watched

    issue, _ = reported
    watched = Watched(page)
    get_user_model().objects.create_superuser("author", "a@example.org", PASSWORD)
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("author")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()

    watched.visit(f"/admin/issues/issue/{issue.pk}/report/")
    assert page.evaluate(
        "!!Chart.getChart(document.querySelector('canvas[data-chart=\"first-hours\"]'))"
    )
    page.get_by_text("Figures: People who opened").click()
    watched.collect("the first hours' figures")
    assert watched.problems == []
