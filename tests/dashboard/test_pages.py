"""The dashboard and the growth page: who may see them, what they show, the CSV."""

import csv
import io
import itertools
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from issues.analytics.models import DailyIssueStat
from issues.dashboard import rollup
from issues.dashboard.home import issue_numbers
from issues.dashboard.models import DailyGrowth, DailyRevenue
from issues.sending.models import Delivery, EmailEvent, Send
from subscribers.billing.models import Membership
from subscribers.sessions import SESSION_KEY
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

MESSAGE_NUMBERS = itertools.count()
PAGES = ["/admin/growth/", "/admin/growth/growth.csv", "/admin/growth/revenue.csv"]


def staff(*perms: str):
    user = get_user_model().objects.create_user(
        f"staff-{len(perms)}", "staff@example.org", "pw-for-tests-only", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    return user


def sent_issue(*, total, sent, bounced=0, started=None, title=None):
    issue = IssueFactory(published=True, **({"title": title} if title else {}))
    send = Send.objects.create(
        issue=issue,
        status=Send.Status.DONE,
        total=total,
        sent_count=sent,
        bounced_count=bounced,
        started_at=started or timezone.now(),
    )
    return issue, send


def delivered(send, n, *, event=None):
    """n sent deliveries of the send; with event, each gets that provider event."""
    numbers = [next(MESSAGE_NUMBERS) for _ in range(n)]
    rows = Delivery.objects.bulk_create(
        Delivery(
            send=send,
            email=f"r{i}@example.org",
            status=Delivery.Status.SENT,
            message_id=f"<{i}@quire>",
        )
        for i in numbers
    )
    if event:
        EmailEvent.objects.bulk_create(
            EmailEvent(
                event_id=f"{event}-{row.message_id}",
                event_type=event,
                email=row.email,
                message_id=row.message_id,
                timestamp=timezone.now(),
            )
            for row in rows
        )


def test_outsiders_subscribers_and_staff_without_the_permission_see_no_figures(
    client, settings
):
    SubscriberFactory.create_batch(3)
    rollup.refresh_figures()
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    reader = SubscriberFactory(email="reader@example.org")
    session = client.session
    session[SESSION_KEY] = reader.pk
    session.save()
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    client.force_login(staff("view_issue"))
    for url in PAGES:
        assert client.get(url).status_code == 403, url
    home = client.get("/admin/").content.decode()
    assert 'data-stat="subscribers"' not in home
    assert "spark-subscribers" not in home
    # Nor the send figures without the sending permission.
    assert "Last issue" not in home


def test_staff_with_the_permission_see_the_growth_page_and_the_sparklines(client):
    SubscriberFactory.create_batch(3)
    rollup.refresh_figures()
    client.force_login(staff("view_growth"))
    page = client.get("/admin/growth/?range=12m")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="subscribers"' in text  # the chart's data (json_script)
    assert '<th scope="row">' in text  # and its figures as a table
    home = client.get("/admin/").content.decode()
    assert '<strong data-stat="subscribers">3</strong>' in home


def test_the_csv_has_every_series_and_neutralises_formulas(admin_client, settings):
    settings.TIME_ZONE = "UTC"
    SubscriberFactory.create_batch(2, source="import")
    MembershipFactory(
        status=Membership.Status.ACTIVE,
        stripe_subscription_id="sub_1",
        amount=1200,
        currency="=1+",  # what a spreadsheet would run as a formula
        interval="year",
    )
    rollup.refresh_figures()

    growth = admin_client.get("/admin/growth/growth.csv?range=30d")
    assert growth["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(growth.streaming_content).decode())))
    assert rows[0] == [
        "period",
        "new",
        "new_form",
        "new_import",
        "new_admin",
        "new_checkout",
        "confirmed",
        "unsubscribed",
        "net",
        "subscribers",
    ]
    assert len(rows) == 31
    today = timezone.localdate().isoformat()
    assert rows[-1] == [today, "3", "1", "2", "0", "0", "3", "0", "3", "3"]

    revenue = admin_client.get("/admin/growth/revenue.csv?range=30d")
    rows = list(csv.reader(io.StringIO(b"".join(revenue.streaming_content).decode())))
    assert rows[0][:4] == ["period", "currency", "paid_members", "mrr_minor_units"]
    assert rows[-1][:4] == [today, "'=1+", "1", "100"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)


def test_the_last_issue_is_shown_next_to_the_average_of_the_five_before(
    admin_client,
):
    now = timezone.now()
    for n, (total, sent) in enumerate([(100, 90), (200, 190), (300, 290)]):
        _, send = sent_issue(
            total=total, sent=sent, started=now - timedelta(days=30 * (n + 1))
        )
    last, send = sent_issue(total=1000, sent=990, bounced=10, started=now, title="Last")
    delivered(send, 2, event="complained")
    delivered(send, 3, event="bounced")
    delivered(send, 5)

    numbers = issue_numbers(last)
    assert numbers["delivered"] == 987  # 990 accepted, 3 bounced later
    assert numbers["bounced"] == 13 and numbers["complaints"] == 2
    assert numbers["complaint_rate"] == pytest.approx(2 / 987)

    text = admin_client.get("/admin/").content.decode()
    assert '<tr data-figure="recipients"><th scope="row">Recipients</th>' in text
    assert "<td>1,000</td><td>200</td>" in text  # the average of 100, 200, 300
    assert "Average of the 3 before" in text
    # 0.2 % of delivered emails complained: above 0.1 %.
    assert "drew complaints from 0.20%" in text


def test_sends_in_progress_and_problems_are_on_the_dashboard(admin_client):
    issue, send = sent_issue(total=200, sent=50)
    Send.objects.filter(pk=send.pk).update(status=Send.Status.SENDING, failed_count=2)
    IssueFactory(title="Cites a ghost", body="See [[arxiv:2301.99999]].")
    text = admin_client.get("/admin/").content.decode()
    assert 'value="26"' in text  # 52 of 200 handled
    assert "2 emails failed to send" in text
    assert "cites papers Quire does not know" in text


def test_a_new_site_shows_how_to_begin(admin_client):
    text = admin_client.get("/admin/").content.decode()
    assert "Welcome to Quire" in text
    assert "No issue has been sent yet." in text
    assert DailyGrowth.objects.count() == 0 and DailyRevenue.objects.count() == 0
    assert admin_client.get("/admin/growth/").status_code == 200


def test_the_last_issue_shows_people_who_opened_and_clicked_to_who_may_see_reports(
    client,
):
    earlier, _ = sent_issue(
        total=100, sent=100, started=timezone.now() - timedelta(days=30)
    )
    last, _ = sent_issue(total=200, sent=200, title="Last")
    today = timezone.localdate()
    for issue, opens, clicks, machine in ((earlier, 30, 10, 5), (last, 80, 20, 40)):
        DailyIssueStat.objects.create(
            issue=issue, day=today - timedelta(days=1), unique_opens=opens - 10,
            unique_clicks=clicks, machine_opens=machine, unsubscribes=1,
        )  # fmt: skip
        DailyIssueStat.objects.create(issue=issue, day=today, unique_opens=10)

    numbers = issue_numbers(last)
    assert numbers["unique_opens"] == 80 and numbers["unique_clicks"] == 20
    assert numbers["open_rate"] == pytest.approx(0.4)
    assert numbers["machine_opens"] == 40 and numbers["unsubscribes"] == 1

    client.force_login(staff("view_send", "view_report"))
    text = client.get("/admin/").content.decode()
    opened = '<tr data-figure="unique_opens"><th scope="row">Opened (people)</th>'
    assert opened in text
    assert "<td>80</td><td>30</td>" in text  # the last issue, and the one before
    assert '<tr data-figure="open_rate">' in text
    assert "<td>40.00 %</td><td>30.00 %</td>" in text

    # Staff who may see sends but not issue reports get the send's counts only.
    client.force_login(staff("view_send"))
    text = client.get("/admin/").content.decode()
    assert '<tr data-figure="recipients">' in text
    assert 'data-figure="unique_opens"' not in text
    assert 'data-figure="open_rate"' not in text
