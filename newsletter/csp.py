"""The Content-Security-Policy of every page (django-csp), and what it must allow."""

import hashlib
from base64 import b64encode
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings

# Where Stripe Checkout and the customer portal live: Quire's forms POST to itself and
# are answered with a redirect there, which form-action governs too.
STRIPE_FORM_TARGETS: list[str] = [
    "https://checkout.stripe.com",
    "https://billing.stripe.com",
]

# The only inline style attributes pages carry: the column alignment the Markdown
# renderer writes on table cells (and nh3 keeps, see issues/rendering/sanitizer.py).
TABLE_ALIGNMENTS = ["left", "center", "right", "justify", "start", "end"]


def style_attribute_hashes() -> list[str]:
    """Return the CSP hashes of the style attributes pages may carry."""
    values = [f"text-align:{value}" for value in TABLE_ALIGNMENTS]
    # nh3 leaves an empty attribute where it removed every property.
    values.append("")
    digests = (hashlib.sha256(value.encode()).digest() for value in values)
    return [f"'sha256-{b64encode(digest).decode()}'" for digest in digests]


class QuireCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with Stripe's address when STRIPE_API_BASE moves it."""

    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        base = getattr(settings, "STRIPE_API_BASE", "")
        if base:
            # Read per request, not at import: Checkout and the portal are then
            # served from that address (a local stand-in for Stripe).
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
            parts.update = {**(parts.update or {}), "form-action": [origin]}
        return parts
