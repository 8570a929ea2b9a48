"""The emails paid tiers send (welcome, payment failed, ended, checkout claim);
receipts are Stripe's."""

from django.urls import reverse

from newsletter.links import absolute_url
from newsletter.mail import send_templated_email
from newsletter.models import Publication

from .models import CheckoutClaim, Membership, grace_period
from .tokens import make_claim_token

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
    send_templated_email(
        to=membership.subscriber.email,
        template=f"email/billing/{kind}",
        subject=SUBJECTS[kind].format(tier=tier_name),
        context={
            "membership": membership,
            "subscriber": membership.subscriber,
            "tier_name": tier_name,
            "publication_name": publication.name or "Quire",
            "account_url": absolute_url(reverse("subscribers:account")),
            "pricing_url": absolute_url(reverse("billing:pricing")),
            "grace_days": grace_period().days,
            **extra,
        },
        from_email=publication.from_header,
    )


def send_checkout_claim_email(*, claim_pk: int) -> None:
    """Email the address a held checkout was paid with the link that attaches it."""
    claim = CheckoutClaim.objects.select_related("subscriber", "tier").get(pk=claim_pk)
    if claim.claimed_at is not None or not claim.nonce:
        return
    tier_name = claim.tier.name if claim.tier else "the paid tier"
    publication = Publication.load()
    send_templated_email(
        to=claim.subscriber.email,
        template="email/billing/claim",
        subject=f"Confirm your {tier_name} membership",
        context={
            "subscriber": claim.subscriber,
            "tier_name": tier_name,
            "publication_name": publication.name or "Quire",
            "sender_email": publication.sender_email,
            "claim_url": absolute_url(
                reverse("billing:claim", args=[make_claim_token(claim)])
            ),
            "account_url": absolute_url(reverse("subscribers:account")),
        },
        from_email=publication.from_header,
    )
