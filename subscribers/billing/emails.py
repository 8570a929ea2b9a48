"""The three emails paid tiers send; receipts are Stripe's."""

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from newsletter.links import absolute_url
from newsletter.mail import clean_header_text
from newsletter.models import Publication

from .models import Membership, grace_period

SUBJECTS = {
    "welcome": "Welcome to {tier}: thank you for your support",
    "payment_failed": "Your payment for {tier} did not go through",
    "ended": "Your {tier} membership has ended",
}


def send_billing_email(*, membership_pk: int, kind: str, extra: dict) -> None:
    """Render and send one billing email to the member."""
    if kind not in SUBJECTS:
        raise ValueError(f"Unknown billing email {kind!r}")
    membership = Membership.objects.select_related("subscriber", "tier").get(
        pk=membership_pk
    )
    tier_name = membership.tier.name if membership.tier else "the paid tier"
    publication = Publication.load()
    context = {
        "membership": membership,
        "subscriber": membership.subscriber,
        "tier_name": tier_name,
        "publication_name": publication.name or "Quire",
        "account_url": absolute_url(_account_path()),
        "pricing_url": absolute_url(reverse("billing:pricing")),
        "grace_days": grace_period().days,
        **extra,
    }
    text = render_to_string(f"email/billing/{kind}.txt", context)
    html = render_to_string(f"email/billing/{kind}.html", context)
    message = EmailMultiAlternatives(
        subject=SUBJECTS[kind].format(tier=clean_header_text(tier_name)),
        body=text,
        from_email=publication.from_header,
        to=[membership.subscriber.email],
    )
    message.attach_alternative(html, "text/html")
    message.send()


def _account_path() -> str:
    from django.urls import NoReverseMatch

    try:
        return reverse("subscribers:account")
    except NoReverseMatch:
        return "/account/"


def send_checkout_claim_email(*, claim_pk: int) -> None:
    """Email the address a held checkout was paid with the link that attaches it."""
    from .models import CheckoutClaim
    from .tokens import make_claim_token

    claim = CheckoutClaim.objects.select_related("subscriber", "tier").get(pk=claim_pk)
    if claim.claimed_at is not None or not claim.nonce:
        return
    tier_name = claim.tier.name if claim.tier else "the paid tier"
    publication = Publication.load()
    context = {
        "subscriber": claim.subscriber,
        "tier_name": tier_name,
        "publication_name": publication.name or "Quire",
        "sender_email": publication.sender_email,
        "claim_url": absolute_url(
            reverse("billing:claim", args=[make_claim_token(claim)])
        ),
        "account_url": absolute_url(_account_path()),
    }
    text = render_to_string("email/billing/claim.txt", context)
    html = render_to_string("email/billing/claim.html", context)
    message = EmailMultiAlternatives(
        subject=f"Confirm your {tier_name} membership",
        body=text,
        from_email=publication.from_header,
        to=[claim.subscriber.email],
    )
    message.attach_alternative(html, "text/html")
    message.send()
