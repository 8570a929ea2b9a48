"""Changing a subscriber's address: a link to the new one, the change once it is
followed, and a notice to the old one."""

from django.db import IntegrityError, transaction
from django.urls import reverse

from newsletter.links import absolute_url
from newsletter.mail import send_templated_email
from newsletter.models import Publication

from . import services, tasks
from .addresses import normalise_email
from .models import Subscriber, hash_email
from .tokens import make_email_change_token


class EmailChangeRefused(Exception):
    """The new address cannot be this subscriber's; str() is the message for them."""


def _address_taken(email: str, *, by_other_than: Subscriber) -> bool:
    return services.is_suppressed(email) or (
        Subscriber.objects.filter(email_hash=hash_email(email))
        .exclude(pk=by_other_than.pk)
        .exists()
    )


@transaction.atomic
def request_email_change(*, subscriber: Subscriber, new_email: str) -> bool:
    """Email a link to the new address that moves the subscriber to it; return
    whether one was queued.

    Raises InvalidAddress for a malformed address and EmailChangeRefused for
    their own. An address another subscriber has, or that is suppressed, gets no
    link, and the caller answers as if it did: what the page says must not tell
    whose address it is.
    """
    new_email = normalise_email(new_email)
    if hash_email(new_email) == subscriber.email_hash:
        raise EmailChangeRefused("That is the address you have already.")
    if _address_taken(new_email, by_other_than=subscriber):
        return False
    tasks.send_email_change_email.delay_on_commit(subscriber.pk, new_email)
    return True


@transaction.atomic
def change_email(*, subscriber: Subscriber, new_email: str) -> Subscriber:
    """Move the subscriber to the new address their change link confirmed, and
    tell the old address.

    Raises EmailChangeRefused when the address was taken or suppressed since the
    link was sent. The hash the suppression list is matched on follows the
    address (Subscriber.save).
    """
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    new_email = normalise_email(new_email)
    if _address_taken(new_email, by_other_than=subscriber):
        raise EmailChangeRefused(
            "This link can no longer be used: ask for a new one on your account page."
        )
    old_email = subscriber.email
    subscriber.email = new_email
    try:
        with transaction.atomic():
            subscriber.save(update_fields=["email", "email_hash"])
    except IntegrityError:  # the same address, taken a moment ago
        raise EmailChangeRefused(
            "This link can no longer be used: ask for a new one on your account page."
        ) from None
    tasks.send_email_changed_notice.delay_on_commit(subscriber.pk, old_email)
    return subscriber


def send_email_change_email(*, subscriber_id: int, new_email: str) -> bool:
    """Send the link that confirms an address change, to the new address."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return False
    token = make_email_change_token(subscriber, new_email)
    publication = Publication.load()
    send_templated_email(
        to=new_email,
        template="email/subscribers/email_change",
        subject=f"Confirm your new address for {publication.name}",
        context={
            "subscriber": subscriber,
            "publication": publication,
            "new_email": new_email,
            "confirm_url": absolute_url(
                reverse("subscribers:email_change_confirm", args=[token])
            ),
        },
        from_email=publication.from_header,
    )
    return True


def send_email_changed_notice(*, subscriber_id: int, old_email: str) -> bool:
    """Tell the old address that the subscription moved to another one."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return False
    publication = Publication.load()
    send_templated_email(
        to=old_email,
        template="email/subscribers/email_changed",
        subject=f"Your address for {publication.name} was changed",
        context={
            "subscriber": subscriber,
            "publication": publication,
            "old_email": old_email,
            "contact": publication.sender_address,
        },
        from_email=publication.from_header,
    )
    return True
