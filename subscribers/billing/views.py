"""Pricing, Checkout, the customer portal and Stripe's webhook."""

import json
import logging
from urllib.parse import urlencode

import stripe
from django.conf import settings
from django.contrib import messages
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
)

from subscribers import audience
from subscribers import services as subscriber_services
from subscribers.models import Subscriber
from subscribers.sessions import current_subscriber, sign_in_subscriber
from subscribers.throttling import client_ip

from . import services, stripe_api
from .forms import CheckoutForm, EmailAfterCheckoutForm
from .models import CheckoutClaim, Membership, StripeEvent, Tier
from .tokens import read_claim_token

logger = logging.getLogger(__name__)

CHECKOUT_SESSION_KEY = "billing_checkout"
# The success page reloads itself every SUCCESS_REFRESH_SECONDS while Stripe's
# webhook has not arrived, for at most SUCCESS_WAIT_SECONDS; then it says what to do.
SUCCESS_REFRESH_SECONDS = 2
SUCCESS_WAIT_SECONDS = 60


def _membership(request: HttpRequest) -> Membership | None:
    subscriber = current_subscriber(request)
    if subscriber is None:
        return None
    return Membership.objects.of(subscriber)


def _came_from(page: str | None) -> str:
    """Return the issue page a checkout started from, or "" for anything else."""
    page = (page or "")[:150]
    if page.startswith("/issues/") and page.count("/") == 3 and page.endswith("/"):
        return page if all(c.isalnum() or c in "-_/" for c in page) else ""
    return ""


@require_GET
def pricing(request: HttpRequest, form: CheckoutForm | None = None) -> HttpResponse:
    """Show the tiers, monthly or yearly, with a Subscribe button for each."""
    interval = request.GET.get("interval", Tier.Interval.MONTH)
    if interval not in Tier.Interval.values:
        interval = Tier.Interval.MONTH
    tiers = list(Tier.objects.active())
    subscriber = current_subscriber(request)
    membership = _membership(request)
    context = {
        "tiers": tiers,
        "interval": interval,
        "intervals": Tier.Interval.choices,
        "configured": stripe_api.is_configured(),
        "missing_settings": stripe_api.missing_settings(),
        "subscriber": subscriber,
        "membership": membership,
        "is_member": bool(membership and membership.has_paid_access()),
        "form": form,
        "has_yearly": any(Tier.Interval.YEAR in tier.intervals for tier in tiers),
        "has_monthly": any(Tier.Interval.MONTH in tier.intervals for tier in tiers),
        # The issue page the reader came from: a checkout started there counts
        # for that issue (the subscriber's consent source names it).
        "came_from": _came_from(request.GET.get("from") or request.POST.get("from")),
    }
    status = 400 if form is not None and form.errors else 200
    return render(request, "subscribers/billing/pricing.html", context, status=status)


@require_POST
def subscribe(request: HttpRequest) -> HttpResponse:
    """Create a Checkout Session for the chosen tier and send the reader to Stripe."""
    if not stripe_api.is_configured():
        messages.error(request, "Paid subscriptions are not set up yet.")
        return redirect("billing:pricing")
    subscriber = current_subscriber(request)
    form = CheckoutForm(request.POST, signed_in=subscriber is not None)
    if not form.is_valid():
        request.method = "GET"
        return pricing(request, form=form)
    signed_in = subscriber is not None
    new_subscriber = False
    if subscriber is None:
        try:
            subscriber, new_subscriber = services.subscriber_for_checkout(
                email=form.cleaned_data["email"],
                ip=client_ip(request) or None,
                user_agent=request.headers.get("user-agent", ""),
                source="checkout:"
                + (_came_from(request.POST.get("from")) or "/pricing/"),
            )
        except subscriber_services.AddressRefused as exc:
            form.add_error("email", str(exc))
            request.method = "GET"
            return pricing(request, form=form)
    base = request.build_absolute_uri("/").rstrip("/")
    try:
        session = services.create_checkout_session(
            tier=form.cleaned_data["tier"],
            interval=form.cleaned_data["interval"],
            subscriber=subscriber,
            signed_in=signed_in,
            amount=form.cleaned_data.get("amount_cents"),
            success_url=base
            + reverse("billing:success")
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=base + reverse("billing:cancel"),
        )
    except (stripe.StripeError, ValueError) as exc:
        logger.exception("Could not create a Checkout Session")
        messages.error(
            request,
            "We could not start the payment just now; nothing was charged. "
            f"Please try again in a moment. ({exc.__class__.__name__})",
        )
        return redirect("billing:pricing")
    # Remember who started this checkout in this browser, so the success page may
    # sign a brand-new reader in once Stripe confirms the payment.
    request.session[CHECKOUT_SESSION_KEY] = {
        "id": session["id"],
        "subscriber": subscriber.pk,
        "new": new_subscriber,
    }
    return HttpResponseRedirect(session["url"], status=303)


def _completed_checkout(session_id: str) -> StripeEvent | None:
    """Return the processed checkout.session.completed event of that session."""
    if not session_id:
        return None
    return StripeEvent.objects.filter(
        type="checkout.session.completed",
        object_id=session_id,
        status=StripeEvent.Status.PROCESSED,
    ).first()


def _paid_by(event: StripeEvent, subscriber: Subscriber | None) -> bool:
    """Return whether the checkout (a signed, stored Stripe event) was paid for
    this subscriber, and attached to them (not held for an emailed link)."""
    if subscriber is None:
        return False
    session = (event.payload.get("data") or {}).get("object") or {}
    if str(session.get("client_reference_id") or "") != str(subscriber.pk):
        return False
    return not CheckoutClaim.objects.filter(stripe_session_id=event.object_id).exists()


def _email_offer(
    event: StripeEvent | None, subscriber: Subscriber | None, form=None
) -> dict:
    """What the success page asks a paying reader who gets no email: the choice
    of newsletters, or (for a suppressed address) to write to the author."""
    if event is None or not _paid_by(event, subscriber):
        return {}
    assert subscriber is not None  # _paid_by said so
    if subscriber_services.is_suppressed(subscriber.email) or subscriber.status in (
        Subscriber.Status.BOUNCED,
        Subscriber.Status.COMPLAINED,
    ):
        return {"email_refused": True}
    if not audience.misses_the_emails(subscriber):
        return {}
    return {
        "email_form": form
        or EmailAfterCheckoutForm(
            initial={
                "session_id": event.object_id,
                "newsletters": list(
                    audience.default_newsletters().values_list("pk", flat=True)
                ),
            }
        )
    }


@require_GET
def success(request: HttpRequest) -> HttpResponse:
    """Thank the reader; show "processing" until Stripe's webhook has arrived."""
    session_id = request.GET.get("session_id", "")
    event = _completed_checkout(session_id)
    processing = event is None
    # Paid for an address that is someone's already: it waits for the emailed link.
    held = (
        CheckoutClaim.objects.waiting()
        .filter(stripe_session_id=session_id)
        .select_related("subscriber")
        .first()
        if event is not None
        else None
    )
    pending = request.session.get(CHECKOUT_SESSION_KEY) or {}
    signed_in = current_subscriber(request)
    if event is not None and pending.get("id") == session_id:
        subscriber_pk = pending.get("subscriber")
        if signed_in is None and pending.get("new"):
            subscriber = (
                Subscriber.objects.filter(pk=subscriber_pk).first()
                if subscriber_pk is not None
                else None
            )
            if subscriber is not None:
                sign_in_subscriber(request, subscriber)
                signed_in = subscriber
        request.session.pop(CHECKOUT_SESSION_KEY, None)
    # Counted in the address, not in a script: the page works without JavaScript
    # and under a Content-Security-Policy that forbids inline scripts.
    waited = request.GET.get("waited", "")
    waited = min(int(waited), SUCCESS_WAIT_SECONDS) if waited.isdigit() else 0
    still_waiting = processing and waited * SUCCESS_REFRESH_SECONDS < (
        SUCCESS_WAIT_SECONDS
    )
    return render(
        request,
        "subscribers/billing/success.html",
        {
            "processing": processing,
            "still_waiting": still_waiting,
            "refresh_seconds": SUCCESS_REFRESH_SECONDS,
            "refresh_query": urlencode(
                {"session_id": session_id, "waited": waited + 1}
            ),
            "check_again_query": urlencode({"session_id": session_id}),
            "session_id": session_id,
            "held": held,
            "subscriber": signed_in,
            "membership": _membership(request),
            **_email_offer(event if held is None else None, signed_in),
        },
    )


@require_POST
def email_after_checkout(request: HttpRequest) -> HttpResponse:
    """Subscribe the signed-in reader who just paid to the newsletters they chose.

    Only for the checkout's own subscriber: the session id must name a completed
    checkout (a signed Stripe event) paid for the reader signed in here.
    """
    form = EmailAfterCheckoutForm(request.POST)
    session_id = str(request.POST.get("session_id", ""))[:200]
    event = _completed_checkout(session_id)
    subscriber = current_subscriber(request)
    if event is None or not _paid_by(event, subscriber):
        return HttpResponse(
            "This checkout is not yours, or not complete yet.", status=403
        )
    assert subscriber is not None  # _paid_by said so
    if form.is_valid():
        try:
            audience.resubscribe_after_payment(
                subscriber=subscriber,
                newsletters=form.cleaned_data["newsletters"],
                ip=client_ip(request) or None,
                user_agent=request.headers.get("user-agent", ""),
                source="checkout",
            )
        except subscriber_services.AddressRefused as exc:
            messages.error(request, str(exc))
        else:
            names = ", ".join(n.name for n in form.cleaned_data["newsletters"])
            messages.success(
                request, f"Done: {names} will come to {subscriber.email} by email."
            )
        return redirect(
            reverse("billing:success") + "?" + urlencode({"session_id": session_id})
        )
    return render(
        request,
        "subscribers/billing/success.html",
        {
            "processing": False,
            "still_waiting": False,
            "session_id": session_id,
            "subscriber": subscriber,
            "membership": _membership(request),
            **_email_offer(event, subscriber, form=form),
        },
        status=400,
    )


@require_GET
def cancel(request: HttpRequest) -> HttpResponse:
    """Tell the reader nothing was charged and lead back to the pricing page."""
    return render(request, "subscribers/billing/cancel.html")


@require_http_methods(["GET", "POST"])
def claim(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a Confirm button (link scanners change nothing); POST attaches the
    held checkout to the address's subscriber, once."""
    held, usable = read_claim_token(token)
    if held is None:
        return render(request, "subscribers/billing/claim_invalid.html", status=404)
    if not usable:
        return render(request, "subscribers/billing/claim_used.html", {"claim": held})
    if request.method == "GET":
        return render(
            request, "subscribers/billing/claim.html", {"claim": held, "token": token}
        )
    try:
        claimed = services.claim_checkout(
            claim=held,
            ip=client_ip(request) or None,
            user_agent=request.headers.get("user-agent", ""),
        )
    except stripe.StripeError:
        logger.exception("Could not read a held subscription from Stripe")
        messages.error(
            request, "We could not reach Stripe just now; please press Confirm again."
        )
        return redirect("billing:claim", token=token)
    if claimed is None:
        return render(request, "subscribers/billing/claim_invalid.html", status=404)
    # Following the link proves the address is theirs, as a sign-in link would.
    sign_in_subscriber(request, claimed.subscriber)
    return render(
        request,
        "subscribers/billing/claim_done.html",
        {"claim": claimed, "membership": _membership(request)},
    )


@require_POST
def manage_billing(request: HttpRequest) -> HttpResponse:
    """Open the Stripe customer portal for the signed-in member."""
    membership = _membership(request)
    if membership is None or not membership.stripe_customer_id:
        messages.error(request, "There is no paid subscription to manage.")
        return redirect("billing:pricing")
    if not stripe_api.is_configured():
        messages.error(request, "Billing is not available right now.")
        return redirect("billing:pricing")
    return_url = request.build_absolute_uri(request.POST.get("next") or "/account/")
    if not return_url.startswith(request.build_absolute_uri("/")):
        return_url = request.build_absolute_uri("/account/")
    try:
        url = services.create_portal_session(
            membership=membership, return_url=return_url
        )
    except stripe.StripeError:
        logger.exception("Could not open the customer portal")
        messages.error(request, "Billing could not be opened just now; try again.")
        return redirect("billing:pricing")
    return HttpResponseRedirect(url, status=303)


@require_POST
def reset_feed(request: HttpRequest) -> HttpResponse:
    """Give the signed-in member a new private feed address."""
    membership = _membership(request)
    if membership is None or not membership.has_paid_access():
        return redirect("billing:pricing")
    services.reset_feed_token(membership=membership)
    messages.success(
        request, "Your private feed has a new address; the old one no longer works."
    )
    return redirect("/account/")


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Receive a Stripe event: verify, store once, queue, answer at once."""
    secret = getattr(settings, "STRIPE_WEBHOOK_SECRET", "")
    if not secret:
        return HttpResponseBadRequest("Stripe webhooks are not set up.")
    payload = request.body
    try:
        stripe.WebhookSignature.verify_header(
            payload,
            request.headers.get("Stripe-Signature"),
            secret,
            stripe.Webhook.DEFAULT_TOLERANCE,
        )
        data = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError):
        return HttpResponseBadRequest("Invalid signature or payload.")
    if (
        not isinstance(data, dict)
        or data.get("object") != "event"
        or not data.get("id")
    ):
        return HttpResponseBadRequest("Not a Stripe event.")
    try:
        data["data"]["object"]
    except (KeyError, TypeError):
        return HttpResponseBadRequest("The event has no object.")
    event, created, queued = services.record_stripe_event(payload=data)
    if event is None:
        return JsonResponse({"received": True, "ignored": True})
    answer = {"received": True, "duplicate": not created}
    if not created and queued:
        answer["queued"] = True  # still waiting to be applied: queued once more
    return JsonResponse(answer)
