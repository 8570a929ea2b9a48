"""The paywall in email: the issue is sent by a real worker to a real SMTP server,
rendered once per segment; the marker reaches paying members only."""

from datetime import timedelta

from django.utils import timezone

from issues.models import Issue
from issues.sending import services
from issues.sending.models import Send
from tests.billing.stripe_fake import PAID_ENV
from tests.billing.test_paywall_everywhere import PAID, PAID_ONLY
from tests.conftest import wait_for
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory
from tests.support.links import untracked


def _wait_until_done(send: Send) -> None:
    def done():
        send.refresh_from_db()
        return send.status == Send.Status.DONE

    wait_for(done, timeout=120, interval=0.5, message=f"send {send.pk} done")


def _bodies(smtp_server) -> dict[str, str]:
    bodies = {}
    for item in smtp_server.messages:
        message = item.message
        # Links as the reader reaches them: a tracked one as where it leads.
        bodies[item.rcpt_tos[0]] = untracked(
            message.get_body(("html",)).get_content()
            + message.get_body(("plain",)).get_content()
        )
    return bodies


def test_free_and_paid_email_segments_hold_the_paid_part_for_paying_members_only(
    celery_worker_factory, smtp_server
):
    SubscriberFactory(email="free@example.org")
    paying = SubscriberFactory(email="paying@example.org")
    MembershipFactory(subscriber=paying, status="active")
    comp = SubscriberFactory(email="comp@example.org")
    MembershipFactory(subscriber=comp, complimentary=True)
    lapsed = SubscriberFactory(email="lapsed@example.org")
    MembershipFactory(
        subscriber=lapsed,
        status="past_due",
        past_due_since=timezone.now() - timedelta(days=30),
    )
    mixed = IssueFactory(
        title="Mixed issue",
        body=f"Free opening words.\n\n<!-- paywall -->\n\nPaid analysis {PAID}.",
    )
    celery_worker_factory(
        extra_env={
            "EMAIL_URL": f"smtp://{smtp_server.host}:{smtp_server.port}",
            # Paid subscriptions are on: the free segment is asked to upgrade.
            **PAID_ENV,
        }
    )

    _wait_until_done(services.publish_issue(issue=mixed))

    bodies = _bodies(smtp_server)
    assert set(bodies) == {
        "free@example.org",
        "paying@example.org",
        "comp@example.org",
        "lapsed@example.org",
    }
    for address, body in bodies.items():
        assert "Free opening words" in body
        has_access = address in ("paying@example.org", "comp@example.org")
        assert (PAID in body) is has_access, address
        if not has_access:
            assert "/pricing/" in body, "the free segment is asked to upgrade"


def test_a_paid_only_issue_reaches_free_subscribers_as_a_teaser_only(
    celery_worker_factory, smtp_server
):
    SubscriberFactory(email="free@example.org")
    paying = SubscriberFactory(email="paying@example.org")
    MembershipFactory(subscriber=paying, status="trialing")
    paid_only = IssueFactory(
        title="Supporters only",
        access=Issue.Access.PAID,
        body=f"Everything here is for supporters: {PAID_ONLY}.",
    )
    celery_worker_factory(
        extra_env={"EMAIL_URL": f"smtp://{smtp_server.host}:{smtp_server.port}"}
    )

    _wait_until_done(services.publish_issue(issue=paid_only))

    bodies = _bodies(smtp_server)
    assert PAID_ONLY in bodies["paying@example.org"]
    assert PAID_ONLY not in bodies.get("free@example.org", "")
