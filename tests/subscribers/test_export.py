import csv
import io

import pytest
from django.core.management import call_command

from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db


def test_export_command_writes_status_dates_and_consent(tmp_path):
    SubscriberFactory(email="ada@example.org", name="Ada", consent_ip="192.0.2.1")
    SubscriberFactory(email="left@example.org", status="unsubscribed")
    out = tmp_path / "export.csv"

    call_command("export_subscribers", "--output", str(out))

    with out.open(newline="") as exported:
        rows = list(csv.DictReader(exported))
    assert [r["email"] for r in rows] == ["ada@example.org", "left@example.org"]
    assert rows[0]["status"] == "active" and rows[0]["name"] == "Ada"
    assert rows[0]["consent_ip"] == "192.0.2.1"
    assert rows[0]["confirmed_at"].startswith("20")
    assert rows[1]["status"] == "unsubscribed"


def test_export_command_to_stdout_filters_by_status():
    SubscriberFactory(email="ada@example.org")
    SubscriberFactory(email="left@example.org", status="unsubscribed")
    out = io.StringIO()

    call_command("export_subscribers", "--status", "active", stdout=out)

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["email"] for r in rows] == ["ada@example.org"]
