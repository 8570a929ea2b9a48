"""Under the Content-Security-Policy, no page of the site or the admin breaks.

Chromium reports every blocked script, style or form as a `securitypolicyviolation`
event and a console error; each page is opened (and its scripts exercised) with a
listener for both, and none may fire.
"""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from issues.demo import load_demo
from issues.models import Issue, Paper, Tag
from issues.sending import services
from tests.factories.subscribers import PendingSubscriberFactory, SubscriberFactory

pytestmark = pytest.mark.django_db(transaction=True)

LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(
  `${e.effectiveDirective} blocked ${e.blockedURI || "inline code"} ` +
  `at ${e.sourceFile}:${e.lineNumber} ${e.sample}`));
"""
TABLE = "| left | centre | right |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n"


class Watched:
    """A page whose policy violations, console errors and script errors are kept."""

    def __init__(self, page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.add_init_script(LISTEN)
        page.on(
            "console",
            lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"),
        )
        page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))

    def visit(self, path: str) -> None:
        self.page.goto(path)
        self.collect(path)

    def collect(self, where: str) -> None:
        self.page.wait_for_load_state("networkidle")
        for violation in self.page.evaluate("window.__violations || []"):
            self.problems.append(f"{where}: {violation}")


@pytest.fixture
def watched(page) -> Watched:
    return Watched(page)


def test_reader_pages_run_under_the_policy(watched, live_server):
    load_demo()
    issue = Issue.objects.get(slug="convolutions-strike-back")
    issue.body = f"{issue.body}\n\n{TABLE}"
    issue.save()
    reader = SubscriberFactory(email="reader@example.org")
    PendingSubscriberFactory(email="pending@example.org")
    paper = Paper.objects.first()
    pages = [
        "/",
        "/archive/",
        "/issues/top-10-papers-of-2022/",
        "/issues/convolutions-strike-back/",
        "/issues/scaling-laws-revisited/",
        "/papers/",
        paper.get_absolute_url(),
        f"/papers/top/{paper.year}/",
        f"/tags/{Tag.objects.first().slug}/",
        "/search/?q=attention",
        "/subscribe/",
        f"/unsubscribe/{reader.token}/",
        "/account/login/",
        "/pricing/",
        "/billing/success/?session_id=cs_unknown",
        "/billing/cancel/",
        "/no-such-page/",
    ]
    for path in pages:
        watched.visit(path)

    # The theme toggle's script runs, and the aligned table keeps its alignment.
    watched.visit("/issues/convolutions-strike-back/")
    page = watched.page
    page.get_by_role("button", name="theme", exact=False).first.click()
    right = page.locator("table", has_text="centre").locator("td").nth(2)
    assert right.evaluate("e => getComputedStyle(e).textAlign") == "right"
    page.get_by_label("Get new issues by email").first.fill("new@example.org")
    # The form fetches the reader's token first, then is sent: wait for the page
    # it leads to, or the check below may run while the browser is leaving.
    with page.expect_navigation():
        page.get_by_role("button", name="Subscribe").first.click()
    watched.collect("after subscribing")
    # 404 pages: the console reports the missing page itself, nothing else.
    problems = [p for p in watched.problems if "404 (Not Found)" not in p]
    assert problems == []


def log_in(page) -> None:
    get_user_model().objects.create_superuser("author", "a@example.org", "s3cret-pass!")
    page.goto("/admin/")
    page.get_by_label("Username").fill("author")
    page.get_by_label("Password").fill("s3cret-pass!")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()


def test_admin_pages_run_under_the_policy(watched, live_server):
    load_demo()
    SubscriberFactory(email="reader@example.org")
    draft = Issue.objects.filter(status=Issue.Status.DRAFT).first()
    sent = Issue.objects.published().first()
    services.publish_issue(issue=sent)
    page = watched.page
    watched.visit("/admin/login/")
    log_in(page)
    watched.collect("/admin/")

    # The editor: its live preview (fetched and inserted by django-markdownx).
    watched.visit(f"/admin/issues/issue/{draft.pk}/change/")
    body = page.locator("textarea[name=body]")
    body.fill(f"# Preview\n\n{TABLE}")
    expect(page.locator(".markdownx-preview table")).to_be_visible()
    watched.collect("the editor's preview")

    # The send panel of a sent issue, its email preview, and the other issue pages.
    watched.visit(f"/admin/issues/issue/{sent.pk}/change/")
    expect(page.get_by_role("heading", name="Email")).to_be_visible()
    watched.visit(f"/admin/issues/issue/{draft.pk}/email-preview/?segment=free")
    expect(
        page.frame_locator("iframe[title='HTML email']").locator("body")
    ).not_to_be_empty()
    watched.visit(f"/admin/issues/issue/{draft.pk}/send-test/")
    watched.visit(f"/admin/issues/issue/{draft.pk}/publish/")
    watched.visit(f"/admin/issues/issue/{draft.pk}/schedule/")
    # The date and time widgets' pop-ups are built by the admin's scripts (the
    # theme shows the calendar's link and hides "Today").
    page.locator(".datetimeshortcuts a:visible").first.click()
    watched.collect("the schedule page's calendar")
    for path in [
        "/admin/issues/issue/",
        "/admin/issues/issue/add/",
        "/admin/issues/paper/",
        f"/admin/issues/paper/{Paper.objects.first().pk}/change/",
        "/admin/subscribers/subscriber/",
        "/admin/subscribers/subscriber/import/",
        "/admin/subscribers/subscriber/invite/",
        "/admin/billing/membership/",
        "/admin/billing/tier/add/",
        "/admin/newsletter/publication/",
        "/admin/sending/send/",
        "/admin/sending/delivery/",
        "/admin/two-factor/",
        "/admin/growth/",
        "/admin/growth/?range=12m",
    ]:
        watched.visit(path)

    # An admin action's own JavaScript: select all, the action bar counts them.
    watched.visit("/admin/subscribers/subscriber/")
    page.locator("#action-toggle").check()
    expect(page.locator(".action-counter")).to_contain_text("1 of 1")
    watched.collect("the subscriber list's actions")
    assert watched.problems == []
