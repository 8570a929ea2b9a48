"""The author's dashboard and growth page in Chromium: charts drawn, in both themes.

Screenshots go to var/screenshots/ (never committed) to be looked at; axe-core
finds no violation on either page in the light or the dark theme.
"""

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from issues.dashboard import rollup
from issues.sending.models import Send
from subscribers.billing.models import Membership
from subscribers.models import Subscriber
from tests.browser.test_accessibility import axe_violations
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory
from tests.support.admin_browser import admin_session

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOTS = Path("var/screenshots")


def a_growing_publication() -> None:
    now = timezone.now()
    for days_ago in range(0, 60, 3):
        made = SubscriberFactory.create_batch(1 + days_ago % 4)
        when = now - timedelta(days=days_ago)
        Subscriber.objects.filter(pk__in=[s.pk for s in made]).update(
            created=when, confirmed_at=when
        )
    left = Subscriber.objects.order_by("pk")[:2]
    Subscriber.objects.filter(pk__in=[s.pk for s in left]).update(
        status=Subscriber.Status.UNSUBSCRIBED, unsubscribed_at=now - timedelta(days=5)
    )
    for n, days_ago in enumerate([50, 20, 4]):
        made = MembershipFactory(
            status=Membership.Status.ACTIVE,
            stripe_subscription_id=f"sub_{n}",
            amount=800 if n else 8000,
            currency="usd",
            interval="month" if n else "year",
        )
        Membership.objects.filter(pk=made.pk).update(
            created=now - timedelta(days=days_ago)
        )
    for n, days_ago in enumerate([40, 10]):
        issue = IssueFactory(published=True, title=f"Issue number {n + 1}")
        Send.objects.create(
            issue=issue,
            status=Send.Status.DONE,
            total=40 + n,
            sent_count=39 + n,
            bounced_count=1,
            started_at=now - timedelta(days=days_ago),
        )
    sending = IssueFactory(published=True, title="Going out now")
    Send.objects.create(
        issue=sending, status=Send.Status.SENDING, total=44, sent_count=11
    )
    rollup.refresh_figures()


def signed_in_page(browser, live_server, scheme: str):
    get_user_model().objects.create_superuser("author", "a@example.org", "s3cret-pass!")
    return admin_session(browser, live_server, scheme, "author", "s3cret-pass!")


def drawn_charts(page) -> int:
    return page.evaluate(
        """() => [...document.querySelectorAll('canvas[data-chart]')]
            .filter(c => window.Chart.getChart(c)).length"""
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_dashboard_and_growth_page_draw_their_charts(browser, live_server, scheme):
    a_growing_publication()
    context, page = signed_in_page(browser, live_server, scheme)
    try:
        dark = page.evaluate("document.documentElement.classList.contains('dark')")
        assert dark is (scheme == "dark")
        expect(page.get_by_role("heading", name="Last issue")).to_be_visible()
        expect(page.locator("[data-figure=recipients]")).to_contain_text("41")
        expect(page.locator("[data-stat=subscribers]")).to_have_text(
            str(Subscriber.objects.filter(status="active").count())
        )
        expect(page.get_by_role("progressbar", name="Going out now")).to_be_visible()
        assert drawn_charts(page) == 2  # subscribers and revenue sparklines
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"dashboard-{scheme}.png", full_page=True)
        assert axe_violations(page) == []

        page.get_by_role("link", name="Growth and revenue in detail").click()
        expect(
            page.get_by_role("heading", name="Growth and revenue", level=1)
        ).to_be_visible()
        page.get_by_role("link", name="Last 12 months").click()
        expect(page.get_by_role("link", name="Last 12 months")).to_have_attribute(
            "aria-current", "page"
        )
        assert drawn_charts(page) == page.locator("canvas[data-chart]").count() == 7
        # Each chart's figures, as a table.
        page.get_by_text("Figures: Subscribers").click()
        table = page.get_by_role("table", name="Subscribers", exact=True)
        expect(table.get_by_role("row")).to_have_count(13)  # a header and 12 months
        page.screenshot(path=SCREENSHOTS / f"growth-{scheme}.png", full_page=True)
        assert axe_violations(page) == []
    finally:
        context.close()


def test_the_theme_switch_and_account_menu_work_under_the_policy(page, live_server):
    """Alpine's CSP build runs unfold's components: the menu opens, the theme
    switches (and the charts are drawn again), the two-factor link is there."""
    from tests.browser.test_csp import Watched

    watched = Watched(page)
    a_growing_publication()
    get_user_model().objects.create_superuser("author", "a@example.org", "s3cret-pass!")
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("author")
    page.get_by_label("Password").fill("s3cret-pass!")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    html = page.locator("html")
    expect(html).not_to_have_class("dark")
    light_line = page.evaluate(
        "Chart.getChart(document.querySelector('canvas')).data.datasets[0].borderColor"
    )

    page.get_by_text("a@example.org").click()
    page.get_by_text("Dark", exact=True).click()
    expect(html).to_have_class("dark")
    redrawn = page.evaluate(
        "Chart.getChart(document.querySelector('canvas')).data.datasets[0].borderColor"
    )
    assert redrawn != light_line
    page.reload()
    expect(html).to_have_class("dark")  # kept (Alpine's persist plugin)

    page.get_by_text("a@example.org").click()
    page.get_by_role("link", name="Two-factor authentication").click()
    expect(page).to_have_url(f"{live_server.url}/admin/two-factor/")

    page.goto("/admin/")
    # The sidebar folds away, and stays folded on the next page.
    page.get_by_role("button", name="Show or hide the sidebar").locator(
        "visible=true"
    ).click()
    expect(page.get_by_role("link", name="Memberships")).to_be_hidden()
    page.reload()
    expect(page.get_by_role("link", name="Memberships")).to_be_hidden()

    watched.collect("after switching the theme")
    assert watched.problems == []
