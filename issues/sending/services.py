"""Publishing, scheduling and steering sends: what the admin and commands call.

The worker's side and its bookkeeping are in delivery/; tasks.py queues the work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from issues.access import paid_subscribers_q
from issues.content_version import content_changed
from issues.models import Issue, unique_slug, unknown_references_message
from issues.rendering import (
    ContentTooLarge,
    check_markdown,
    find_images_without_alt,
    find_unknown_references,
    missing_alt_message,
)
from subscribers.models import Segment, Subscriber

from . import delivery, tasks
from .delivery.audience import audience
from .delivery.welcome import step_send
from .emails import Recipient, render_segment
from .models import Delivery, EmailEvent, Send, WelcomeStep
from .transports import SENT, open_transport

logger = logging.getLogger(__name__)

# Audience rows are written in chunks of subscriber ids, each one INSERT ... SELECT.
FREEZE_CHUNK = 20_000


class SendingError(Exception):
    """A request the current state does not allow, with a message for the author."""


class UnknownReferencesError(SendingError):
    """The issue cites papers Quire does not know; readers would see broken cards."""

    def __init__(self, references: Iterable) -> None:
        self.references = [str(ref) for ref in references]
        super().__init__(unknown_references_message(self.references))


class MissingAltTextError(SendingError):
    """An image has no alt text; readers who cannot see it would get nothing."""

    def __init__(self, images: Iterable) -> None:
        self.images = list(images)
        super().__init__(missing_alt_message(self.images))


class ContentTooLargeError(SendingError):
    """The body is over a content limit; subscribers would get only a notice."""


def check_publishable(*, issue: Issue) -> None:
    """Raise a SendingError if the issue cannot go out as written.

    Its body must be within the content limits (a body saved past the form, by a
    command or an old version, would reach subscribers as the renderer's notice),
    name no paper that is missing and describe every image (alt text): read from
    the body as it is now (one parse, one query), not from the stored list, so a
    paper added or deleted a moment ago counts.
    """
    if issue.kind == Issue.Kind.WELCOME:
        raise SendingError(
            "This is a welcome email: its welcome sequence sends it to each new "
            "subscriber; it is never published."
        )
    try:
        check_markdown(issue.body)
    except ContentTooLarge as exc:
        raise ContentTooLargeError(exc.message) from exc
    unknown = find_unknown_references(issue.body)
    if unknown:
        raise UnknownReferencesError(unknown)
    undescribed = find_images_without_alt(issue.body)
    if undescribed:
        raise MissingAltTextError(undescribed)


def audience_size(*, issue: Issue) -> int:
    """Return how many subscribers would get the issue if it were published now."""
    return audience(issue).count()


def audience_counts(*, issue: Issue) -> dict[str, int]:
    """Return how many subscribers would get the issue now: total, free and paid
    (the freeze's own query, counted)."""
    receiving = audience(issue)
    total = receiving.count()
    paid = receiving.filter(paid_subscribers_q()).count()
    return {"total": total, "paid": paid, "free": total - paid}


@transaction.atomic
def choose_audience(
    *, issue: Issue, audience: str, segment: Segment | None = None
) -> Issue:
    """Set who gets the issue (Issue.Audience, and the segment for "segment").

    Refused once the issue has a Send: its audience is frozen then.
    """
    issue = Issue.objects.select_for_update().get(pk=issue.pk)
    if Send.objects.filter(issue=issue).exists():
        raise SendingError("This issue was sent; its audience cannot change.")
    if audience not in Issue.Audience.values:
        raise SendingError(f"Unknown audience “{audience}”.")
    if (audience == Issue.Audience.SEGMENT) != (segment is not None):
        raise SendingError("Choose a segment exactly when the audience is a segment.")
    Issue.objects.filter(pk=issue.pk).update(
        audience=audience, segment=segment, updated=timezone.now()
    )
    content_changed()
    issue.audience, issue.segment = audience, segment
    return issue


@transaction.atomic
def publish_issue(*, issue: Issue, now: datetime | None = None) -> Send | None:
    """Publish the issue and start its send, at most once however often it is called.

    Refused (UnknownReferencesError) while the body names a paper that is missing,
    and (MissingAltTextError) while an image in it has no alt text.
    An issue that was unpublished goes back on the site only: nobody is emailed a
    second time, and a web-only issue is never emailed (it gets no Send). Returns
    the issue's Send (None for one that was never emailed, such as demo content).

    The issue row is locked first, so two publishers (two tabs, the admin and the
    command line) queue behind each other; the unique Send per issue is the backstop.
    """
    now = now or timezone.now()
    issue = Issue.objects.select_for_update().get(pk=issue.pk)
    send = Send.objects.filter(issue=issue).first()
    if send is not None and issue.status == Issue.Status.PUBLISHED:
        return send
    check_publishable(issue=issue)
    emailed = issue.audience != Issue.Audience.WEB
    if send is None and issue.status != Issue.Status.UNPUBLISHED and emailed:
        send, created = Send.objects.get_or_create(issue=issue)
        if created:
            tasks.queue_start_send(send.pk)
    # update(), not save(): publishing must not re-render or touch other fields.
    Issue.objects.filter(pk=issue.pk).update(
        status=Issue.Status.PUBLISHED,
        published_at=issue.published_at or now,
        publish_error="",
        publish_error_at=None,
        updated=now,
    )
    content_changed()
    return send


@transaction.atomic
def schedule_issue(*, issue: Issue, publish_at: datetime) -> Issue:
    """Schedule the issue to be published (and sent) at publish_at."""
    issue = Issue.objects.select_for_update().get(pk=issue.pk)
    if Send.objects.filter(issue=issue).exists() or issue.status in (
        Issue.Status.PUBLISHED,
        Issue.Status.UNPUBLISHED,
    ):
        raise SendingError(
            "This issue has already been published; it cannot be scheduled."
        )
    check_publishable(issue=issue)
    Issue.objects.filter(pk=issue.pk).update(
        status=Issue.Status.SCHEDULED,
        publish_at=publish_at,
        publish_error="",
        publish_error_at=None,
        updated=timezone.now(),
    )
    issue.refresh_from_db()
    return issue


@transaction.atomic
def unschedule_issue(*, issue: Issue) -> Issue:
    """Turn a scheduled issue back into a draft."""
    if not Issue.objects.filter(pk=issue.pk, status=Issue.Status.SCHEDULED).update(
        status=Issue.Status.DRAFT,
        publish_error="",
        publish_error_at=None,
        updated=timezone.now(),
    ):
        raise SendingError("This issue is not scheduled (any more).")
    issue.refresh_from_db()
    return issue


@transaction.atomic
def unpublish_issue(*, issue: Issue) -> Issue:
    """Take a published issue off the site, keeping its send and delivery history.

    A send still going out is paused: its emails would link to a page that is gone.
    """
    issue = Issue.objects.select_for_update().get(pk=issue.pk)
    if issue.status != Issue.Status.PUBLISHED:
        raise SendingError("This issue is not published (any more).")
    Issue.objects.filter(pk=issue.pk).update(
        status=Issue.Status.UNPUBLISHED, updated=timezone.now()
    )
    Send.objects.filter(issue=issue, status=Send.Status.SENDING).update(
        status=Send.Status.PAUSED
    )
    content_changed()
    issue.refresh_from_db()
    return issue


def publish_due_issues(*, now: datetime | None = None) -> list[Send]:
    """Publish every scheduled issue whose time has come; return the new sends.

    An issue that cannot go out stays scheduled with the reason stored on it for the
    author; it is tried again at every run, and the others go out regardless.
    """
    now = now or timezone.now()
    due = Issue.objects.filter(
        status=Issue.Status.SCHEDULED, publish_at__lte=now
    ).order_by("publish_at")
    sends = []
    for issue in due.only("pk", "title", "publish_error"):
        try:
            send = publish_issue(issue=issue, now=now)
        except SendingError as exc:
            flag_publish_error(issue=issue, error=str(exc), now=now)
            continue
        if send is not None:
            sends.append(send)
    return sends


def flag_publish_error(*, issue: Issue, error: str, now: datetime) -> None:
    """Store why a scheduled issue did not go out, logging it once per reason."""
    if issue.publish_error == error:
        return  # already flagged; beat retries every 30 s, the log says it once
    Issue.objects.filter(pk=issue.pk).update(publish_error=error, publish_error_at=now)
    logger.warning(
        "Scheduled issue %s (“%s”) not published: %s", issue.pk, issue, error
    )


@transaction.atomic
def pause_send(*, send: Send) -> Send:
    """Stop handing out more emails of this send until it is resumed."""
    delivery.pause_send(send_id=send.pk)
    send.refresh_from_db()
    return send


@transaction.atomic
def resume_send(*, send: Send) -> Send:
    """Resume a paused send, forgetting why Quire paused it (it may be fixed now).

    Should the same content still stop workers, the guard pauses it again after
    SENDING_MAX_WORKER_CRASHES more tries. The deliverability guard remembers the
    complaints and hard bounces counted now, and pauses again only once there are
    more of them while a rate is still over its limit.
    """
    if Send.objects.filter(pk=send.pk, status=Send.Status.PAUSED).update(
        status=Send.Status.SENDING,
        heartbeat_at=timezone.now(),
        paused_reason="",
        render_attempts=0,
        complaints_at_resume=F("complaint_count"),
        bounces_at_resume=F("refused_count") + F("reported_bounce_count"),
    ):
        tasks.kick_send(send.pk)
    send.refresh_from_db()
    return send


@transaction.atomic
def retry_failed(*, send: Send) -> int:
    """Queue the failed deliveries of a send again; return how many."""
    retried = Delivery.objects.filter(send=send, status=Delivery.Status.FAILED).update(
        status=Delivery.Status.QUEUED,
        attempts=0,
        crashes=0,
        next_attempt_at=None,
        claimed_by="",
        claimed_at=None,
    )
    if retried:
        Send.objects.filter(pk=send.pk, status=Send.Status.DONE).update(
            status=Send.Status.SENDING, finished_at=None
        )
        send.refresh_from_db()
        if send.status == Send.Status.SENDING:
            tasks.kick_send(send.pk)
    delivery.refresh_counts(send_id=send.pk)
    return retried


def forget_recipients(*, subscribers: QuerySet[Subscriber], email: str) -> None:
    """Erase an address from the send history ("delete me"), keeping the counts."""
    Delivery.objects.filter(subscriber__in=subscribers).update(email="")
    EmailEvent.objects.filter(email__iexact=email).delete()


def send_test_email(
    *, issue: Issue, emails: Iterable[str], segment: str = Delivery.Segment.PAID
) -> int:
    """Email the rendered issue, marked as a test, to these addresses only."""
    prepared = render_segment(issue=issue, segment=segment, test=True)
    sent = 0
    errors = []
    with open_transport() as transport:
        for address in emails:
            outcome = transport.send(
                prepared,
                Recipient(
                    email=address,
                    token="test",  # noqa: S106 - not a secret
                    message_id=f"quire.test.{issue.pk}.{timezone.now():%Y%m%d%H%M%S%f}"
                    f"@{prepared.message_domain}",
                ),
            )
            if outcome.kind == SENT:
                sent += 1
            else:
                errors.append(f"{address}: {outcome.error}")
    if errors:
        raise SendingError("Test email not sent to " + "; ".join(errors))
    return sent


@transaction.atomic
def save_welcome_step(
    *, step: WelcomeStep, subject: str, body: str, now: datetime | None = None
) -> WelcomeStep:
    """Save a welcome step with its email's subject and Markdown body.

    The content is the step's Issue of kind "welcome", kept a draft (never on the
    site). Saving it changes the issue's ``updated``, so the stored rendering of
    the step's email no longer matches and the next batch renders it again, once:
    emails not yet sent go out with the new content. Activating the step records
    when (once); only subscribers who confirm from then on get it.
    """
    issue = step.issue if step.issue_id else Issue(kind=Issue.Kind.WELCOME)
    if not issue.slug:
        # Its own address space, so no issue's clean slug is taken by it.
        issue.slug = unique_slug(Issue, f"welcome {subject}")
    issue.title = subject
    issue.body = body
    issue.newsletter_id = step.newsletter_id
    issue.kind = Issue.Kind.WELCOME
    issue.status = Issue.Status.DRAFT
    issue.save()
    step.issue = issue
    if step.active and step.activated_at is None:
        step.activated_at = now or timezone.now()
    step.save()
    step_send(step)
    return step


@transaction.atomic
def set_welcome_steps_active(
    *, steps: QuerySet[WelcomeStep], active: bool, now: datetime | None = None
) -> int:
    """Activate or deactivate steps at once; return how many changed.

    Activation sets ``activated_at`` the first time only. A deactivated step adds
    no more deliveries; those already queued (due before) still go out.
    """
    changed = steps.exclude(active=active).update(active=active)
    if active:
        steps.filter(activated_at__isnull=True).update(
            activated_at=now or timezone.now()
        )
    return changed
