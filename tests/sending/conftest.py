import email
import email.policy
import os

import pytest

from issues.models import Issue
from subscribers.models import Subscriber
from tests.factories.issues import IssueFactory


@pytest.fixture
def issue(db) -> Issue:
    return IssueFactory(
        title="Top 10 papers of the year",
        subtitle="The best of 2025",
        body="Hello **readers**.\n\n![chart](/media/chart.png)\n\n[home](/)",
    )


def make_subscribers(count: int, *, start: int = 0, **fields) -> list[Subscriber]:
    """Create count active subscribers in bulk (fast enough for thousands)."""
    from subscribers.models import hash_email, new_token

    rows = []
    for n in range(start, start + count):
        address = f"reader{n}@example.org"
        row = Subscriber(
            email=address,
            status=Subscriber.Status.ACTIVE,
            token=new_token(),
            **fields,
        )
        if hasattr(row, "email_hash"):
            row.email_hash = hash_email(address)
        rows.append(row)
    made = Subscriber.objects.bulk_create(rows, batch_size=2000)
    # bulk_create skips save(): they join the default newsletters as a signup does.
    if made:
        from subscribers.models import Subscription

        pks = [row.pk for row in made]
        Subscription.join_defaults(
            Subscriber.objects.filter(pk__gte=min(pks), pk__lte=max(pks)).values("pk")
        )
    return made


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def _services_leg() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(
        ("postgres://", "postgresql://")
    )


def pytest_collection_modifyitems(config, items):
    """Run services-marked sending tests only on PostgreSQL (CI's services leg).

    Elsewhere they are deselected, not skipped: they test what only PostgreSQL and
    Redis do, and a skip would look like a pass that never happened.
    """
    if _services_leg():
        return
    deselected = [
        item
        for item in items
        if "tests/sending/" in str(item.fspath)
        and item.get_closest_marker("services") is not None
    ]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture
def author_client(client, django_user_model):
    """The admin's client, signed in as a superuser who writes and sends issues."""
    client.force_login(
        django_user_model.objects.create_superuser(
            "author", "author@example.org", "pw-for-tests-only"
        )
    )
    return client
