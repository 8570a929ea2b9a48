"""CSV exports open in a spreadsheet as text, never as a formula."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from subscribers.models import Subscriber
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

HOSTILE_NAME = '=HYPERLINK("http://evil","x")'


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("author", "a@example.org", "pw")
    client.force_login(user)
    return client


def _exported_rows(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_admin_export_turns_a_formula_name_into_a_text_cell(staff):
    SubscriberFactory(email="ada@example.org", name=HOSTILE_NAME)

    response = staff.get(reverse("admin:subscribers_subscriber_export"))

    (row,) = _exported_rows(response)
    assert row["name"] == "'" + HOSTILE_NAME
    assert row["email"] == "ada@example.org"


def test_export_prefixes_every_cell_that_a_spreadsheet_would_evaluate(staff):
    SubscriberFactory(email="-x@example.org", name="+1 SUM(A1)")
    SubscriberFactory(email="at@example.org", name="@SUM(1+1)")
    SubscriberFactory(email="tab@example.org", name="\tcalc", consent_source="=1+1")
    SubscriberFactory(email="cr@example.org", name="\rcalc")

    response = staff.get(reverse("admin:subscribers_subscriber_export"))

    rows = {row["email"]: row for row in _exported_rows(response)}
    assert "'-x@example.org" in rows
    assert rows["'-x@example.org"]["name"] == "'+1 SUM(A1)"
    assert rows["at@example.org"]["name"] == "'@SUM(1+1)"
    assert rows["tab@example.org"]["name"] == "'\tcalc"
    assert rows["tab@example.org"]["consent_source"] == "'=1+1"
    assert rows["cr@example.org"]["name"] == "'\rcalc"


def test_export_leaves_ordinary_cells_as_they_are(staff):
    SubscriberFactory(email="ada@example.org", name="Ada Lovelace-Byron")

    response = staff.get(reverse("admin:subscribers_subscriber_export"))

    (row,) = _exported_rows(response)
    assert row["name"] == "Ada Lovelace-Byron"
    assert row["status"] == "active"


def test_export_command_neutralises_formula_cells_too(tmp_path):
    SubscriberFactory(email="-x@example.org", name=HOSTILE_NAME)
    out = tmp_path / "export.csv"

    call_command("export_subscribers", "--output", str(out))

    with out.open(newline="") as exported:
        (row,) = list(csv.DictReader(exported))
    assert row["email"] == "'-x@example.org"
    assert row["name"] == "'" + HOSTILE_NAME


def test_an_exported_file_imports_back_with_the_original_values(tmp_path):
    SubscriberFactory(email="-x@example.org", name=HOSTILE_NAME)
    out = tmp_path / "export.csv"
    call_command("export_subscribers", "--output", str(out))
    Subscriber.objects.all().delete()

    call_command("import_subscribers", str(out), "--format", "csv")

    imported = Subscriber.objects.get()
    assert imported.email == "-x@example.org"
    assert imported.name == HOSTILE_NAME
