"""The issue report in the admin, for the staff allowed to see it, and nobody else."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from issues.analytics.reports import (
    hourly_chart,
    issue_report,
    most_read_papers,
    recent_reports,
)
from subscribers.models import Subscriber
from subscribers.sessions import SESSION_KEY
from tests.analytics.conftest import flush
from tests.analytics.helpers import CHROME, link_to, make_issue, pixel, send_issue
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

CODE = "https://github.com/facebookresearch/ConvNeXt"


def staff(name: str, *codenames: str):
    user = get_user_model().objects.create_user(
        name, f"{name}@example.org", "pw-for-tests-only", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reported(outbox):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=3)["reader0@example.org"]
    reader = Client()
    reader.get(pixel(message), HTTP_USER_AGENT=CHROME)
    reader.get(link_to(message, CODE), HTTP_USER_AGENT=CHROME)
    flush()
    return issue


def test_staff_with_the_permission_see_the_report_and_the_panel(reported):
    client = staff("analyst", "view_report", "view_issue", "change_issue")

    page = client.get(f"/admin/issues/issue/{reported.pk}/report/")
    change = client.get(f"/admin/issues/issue/{reported.pk}/change/")
    papers = client.get("/admin/issues/issue/papers-read/")

    assert page.status_code == 200
    text = page.content.decode()
    assert '<dd data-figure="unique_opens">1 (33 %)</dd>' in text
    assert '<dd data-figure="delivered">3</dd>' in text
    assert CODE in text and "A ConvNet for the 2020s" in text
    assert "How this issue did" in change.content.decode()
    assert "A ConvNet for the 2020s" in papers.content.decode()


def test_the_first_hours_are_a_chart_with_the_same_figures_as_a_table(reported):
    hours = issue_report(reported).hourly

    chart = hourly_chart(issue_report(reported))
    page = staff("charts", "view_report").get(
        f"/admin/issues/issue/{reported.pk}/report/"
    )

    assert chart is not None and chart["labels"] == [str(n) for n in range(72)]
    values = {dataset["key"]: dataset["values"] for dataset in chart["datasets"]}
    assert values["unique_opens"] == [hour.unique_opens for hour in hours]
    assert (sum(values["unique_opens"]), sum(values["unique_clicks"])) == (1, 1)
    assert sum(values["machine"]) == 0
    assert chart["rows"][0] == ["0"] + [str(v[0]) for v in values.values()]
    text = page.content.decode()
    # Drawn from JSON by the admin's chart script, never from inline style or code.
    assert '<canvas data-chart="first-hours"' in text
    assert '<script id="first-hours" type="application/json">' in text
    assert "js/admin-charts.js" in text and "chart.umd.min.js" in text
    assert 'style="' not in text
    assert "Hour since sending started" in text


def test_an_issue_not_sent_has_no_chart_of_its_first_hours(outbox):
    issue = make_issue()

    page = staff("early", "view_report").get(f"/admin/issues/issue/{issue.pk}/report/")

    assert hourly_chart(issue_report(issue)) is None
    assert "Not sent yet." in page.content.decode()
    assert "data-chart" not in page.content.decode()


@pytest.mark.parametrize("who", ["outsider", "subscriber", "staff"])
def test_nobody_else_sees_a_report(reported, who):
    if who == "outsider":
        client = Client()
    elif who == "subscriber":
        client = Client()
        session = client.session
        session[SESSION_KEY] = SubscriberFactory(email="member@example.org").pk
        session.save()
    else:  # staff who may edit issues but not see how they did
        client = staff("editor2", "view_issue", "change_issue")

    page = client.get(f"/admin/issues/issue/{reported.pk}/report/")
    papers = client.get("/admin/issues/issue/papers-read/")
    change = client.get(f"/admin/issues/issue/{reported.pk}/change/")

    if who == "staff":
        assert (page.status_code, papers.status_code) == (403, 403)
        assert "How this issue did" not in change.content.decode()
    else:
        for response in (page, papers, change):
            assert response.status_code == 302
            assert "/admin/login/" in response["Location"]


def test_signups_and_checkouts_from_the_issue_page_count_for_it(reported):
    path = reported.get_absolute_url()
    Subscriber.objects.create(email="a@example.org", consent_source=f"form:{path}")
    Subscriber.objects.create(email="b@example.org", consent_source=f"form:{path}")
    Subscriber.objects.create(email="c@example.org", consent_source=f"checkout:{path}")
    Subscriber.objects.create(email="d@example.org", consent_source="form:/")

    report = issue_report(reported)

    assert (report.new_free, report.new_paid) == (2, 1)


def test_the_last_issue_and_the_average_of_the_ones_before(reported):
    last, average = recent_reports()

    assert last is not None and last.issue_id == reported.pk
    assert average == {}  # nothing sent before it
    assert [p.title for p in most_read_papers(issue=reported)] == [
        "A ConvNet for the 2020s"
    ]
