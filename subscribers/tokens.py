"""Signed link tokens: confirmation (7 days, single use), sign-in (1 hour) and an
email address change (24 hours, single use)."""

from datetime import timedelta

from django.core import signing

from .models import Subscriber

CONFIRMATION_MAX_AGE = timedelta(days=7)
LOGIN_MAX_AGE = timedelta(hours=1)
EMAIL_CHANGE_MAX_AGE = timedelta(hours=24)
_CONFIRM_SALT = "subscribers.confirm"
_LOGIN_SALT = "subscribers.login"
_EMAIL_CHANGE_SALT = "subscribers.email_change"


def make_confirmation_token(subscriber: Subscriber) -> str:
    """Return the signed token for the subscriber's pending confirmation link."""
    return signing.dumps(
        [subscriber.pk, subscriber.confirmation_nonce],
        salt=_CONFIRM_SALT,
        compress=True,
    )


def _load_confirmation_token(token: str) -> tuple[int, str] | None:
    try:
        pk, nonce = signing.loads(
            token, salt=_CONFIRM_SALT, max_age=CONFIRMATION_MAX_AGE
        )
    except (signing.BadSignature, ValueError, TypeError):
        return None
    return pk, nonce


def read_confirmation_token(token: str) -> Subscriber | None:
    """Return the pending subscriber a confirmation token names, or None.

    None for a forged, expired (7 days) or already used token: confirming clears the
    nonce the token carries.
    """
    loaded = _load_confirmation_token(token)
    if loaded is None or not loaded[1]:
        return None
    pk, nonce = loaded
    return Subscriber.objects.filter(pk=pk, confirmation_nonce=nonce).first()


def read_used_confirmation_token(token: str) -> Subscriber | None:
    """Return the active subscriber a genuine, unexpired confirmation token names.

    For a link clicked again after it confirmed: the signature proves Quire sent it,
    so the person may be told they are confirmed. None for anything else.
    """
    loaded = _load_confirmation_token(token)
    if loaded is None:
        return None
    return Subscriber.objects.filter(
        pk=loaded[0], status=Subscriber.Status.ACTIVE
    ).first()


def _login_marker(subscriber: Subscriber) -> int:
    last = subscriber.last_login_at
    return int(last.timestamp() * 1000) if last else 0


def make_login_token(subscriber: Subscriber) -> str:
    """Return a signed sign-in token, void once the subscriber has signed in again."""
    return signing.dumps(
        [subscriber.pk, _login_marker(subscriber)], salt=_LOGIN_SALT, compress=True
    )


def read_login_token(token: str) -> Subscriber | None:
    """Return the subscriber a sign-in token names, or None if invalid or used."""
    try:
        pk, marker = signing.loads(token, salt=_LOGIN_SALT, max_age=LOGIN_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    subscriber = Subscriber.objects.filter(pk=pk).first()
    if subscriber is None or _login_marker(subscriber) != marker:
        return None
    return subscriber


def make_email_change_token(subscriber: Subscriber, new_email: str) -> str:
    """Return the signed token of a link that moves the subscriber to new_email.

    It carries a mark of the address they have now (part of its hash, not the
    address: the link goes to the new mailbox), so it works once: after the
    change, or any other, the mark no longer matches.
    """
    return signing.dumps(
        [subscriber.pk, new_email, subscriber.email_hash[:16]],
        salt=_EMAIL_CHANGE_SALT,
        compress=True,
    )


def read_email_change_token(token: str) -> tuple[Subscriber, str] | None:
    """Return the subscriber and the new address a change link names, or None for
    a forged, expired (24 hours) or used one."""
    try:
        pk, new_email, mark = signing.loads(
            token, salt=_EMAIL_CHANGE_SALT, max_age=EMAIL_CHANGE_MAX_AGE
        )
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(new_email, str) or not isinstance(mark, str) or len(mark) != 16:
        return None
    subscriber = Subscriber.objects.filter(pk=pk).first()
    if subscriber is None or subscriber.email_hash[:16] != mark:
        return None
    return subscriber, new_email
