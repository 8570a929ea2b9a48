"""Signed links that let an address's owner confirm a checkout (7 days, once)."""

from datetime import timedelta

from django.core import signing

from .models import CheckoutClaim

CLAIM_MAX_AGE = timedelta(days=7)
_CLAIM_SALT = "billing.claim"


def make_claim_token(claim: CheckoutClaim) -> str:
    """Return the signed token for the claim's confirmation link."""
    return signing.dumps([claim.pk, claim.nonce], salt=_CLAIM_SALT, compress=True)


def read_claim_token(token: str) -> tuple[CheckoutClaim | None, bool]:
    """Return (claim, usable) for a confirmation token.

    The claim is None for a forged or expired token; usable is False once the link
    was used (confirming clears the nonce it carries).
    """
    try:
        pk, nonce = signing.loads(token, salt=_CLAIM_SALT, max_age=CLAIM_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        return None, False
    claim = CheckoutClaim.objects.select_related("subscriber", "tier").filter(pk=pk)
    claim = claim.first()
    if claim is None:
        return None, False
    return claim, bool(nonce) and claim.nonce == nonce and claim.claimed_at is None
