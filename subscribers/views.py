"""Signup, confirmation, unsubscribe, magic-link sign-in and the account page (the
preference center: newsletters, pause, tracking, the address, leaving).

Templates get the publication from the issues.context_processors.publication
context processor.
"""

import json
import logging
from functools import wraps

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from kombu.exceptions import OperationalError as BrokerUnavailable

from newsletter.models import Newsletter

from . import email_change as email_change_service
from . import services, tasks
from .forms import (
    EmailChangeForm,
    LoginForm,
    NewslettersForm,
    ProfileForm,
    SubscribeForm,
)
from .models import Subscriber
from .sessions import current_subscriber, sign_in_subscriber, sign_out_subscriber
from .signals import ErasureRefused, newsletter_of_sent_issue, subscriber_left
from .throttling import LimiterUnavailable, client_ip, mailbox_key, over_limit
from .tokens import (
    read_confirmation_token,
    read_email_change_token,
    read_login_token,
    read_used_confirmation_token,
)

# Per client IP and per mailbox (see throttling.mailbox_key), in attempts per hour.
SUBSCRIBE_LIMIT_PER_IP = 20
SUBSCRIBE_LIMIT_PER_ADDRESS = 5
LOGIN_LIMIT_PER_IP = 20
LOGIN_LIMIT_PER_ADDRESS = 3
EMAIL_CHANGE_LIMIT_PER_IP = 20
EMAIL_CHANGE_LIMIT_PER_SUBSCRIBER = 5
EMAIL_CHANGE_LIMIT_PER_ADDRESS = 3
HOUR = 60 * 60
TRY_AGAIN_AFTER = 60

logger = logging.getLogger(__name__)


def _too_many(request: HttpRequest) -> HttpResponse:
    response = render(request, "subscribers/too_many.html", status=429)
    response["Retry-After"] = str(HOUR)
    return response


def _try_again_when_unavailable(view):
    """Answer "try again in a minute" (503) while the cache or the broker is down.

    Both are Redis in production. The limits are counted and the task queued before
    anything is written, so nothing is half done; the page offers the same request
    again, with what the person typed.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except (LimiterUnavailable, BrokerUnavailable) as exc:
            if isinstance(exc, BrokerUnavailable):
                logger.error("Task broker unavailable for %s: %s", request.path, exc)
            again = [
                (name, value)
                for name, values in request.POST.lists()
                if name != "csrfmiddlewaretoken"
                for value in values
            ]
            response = render(
                request,
                "subscribers/try_again.html",
                {"again": again, "action": request.path},
                status=503,
            )
            response["Retry-After"] = str(TRY_AGAIN_AFTER)
            return response

    return wrapper


@require_http_methods(["GET", "POST"])
@_try_again_when_unavailable
def subscribe(request: HttpRequest) -> HttpResponse:
    """Show the subscribe form; on POST, queue the subscription and say so.

    The answer to a valid POST is the same page, after the same work, whatever the
    address's state: the view only checks the limits and queues a task, which looks
    the address up. So the form cannot be used to learn who subscribes.
    """
    if request.method == "GET":
        form = SubscribeForm(initial={"email": request.GET.get("email", "")})
        return render(
            request,
            "subscribers/subscribe.html",
            {"form": form, "subscribe_form": form},
        )
    ip = client_ip(request)
    if over_limit(f"subscribe:ip:{ip}", limit=SUBSCRIBE_LIMIT_PER_IP, window=HOUR):
        return _too_many(request)
    form = SubscribeForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "subscribers/subscribe.html",
            {"form": form, "subscribe_form": form},
            status=400,
        )
    email = form.cleaned_data["email"]
    bot = bool(form.cleaned_data["website"])
    # Per mailbox: ada+1@ and ada+2@ reach one inbox.
    flooded = over_limit(
        f"subscribe:mailbox:{mailbox_key(email)}",
        limit=SUBSCRIBE_LIMIT_PER_ADDRESS,
        window=HOUR,
    )
    if not bot and not flooded:
        page = (request.POST.get("page") or "/subscribe/")[:150]
        tasks.subscribe.delay(
            email=email,
            name=form.cleaned_data["name"],
            ip=ip or None,
            user_agent=request.headers.get("user-agent", ""),
            form=f"form:{page}",
            newsletters=form.chosen_newsletters(),
        )
    return render(request, "subscribers/check_inbox.html", {"email": email})


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a Confirm button (link scanners change nothing); POST confirms.

    The link confirms once. Clicked again by someone it confirmed, it says so and
    changes nothing (and signs nobody in: the link may have been forwarded).
    """
    subscriber = read_confirmation_token(token)
    if subscriber is None or subscriber.status != Subscriber.Status.PENDING:
        confirmed = read_used_confirmation_token(token)
        if confirmed is not None:
            return render(
                request,
                "subscribers/confirm_already.html",
                {"subscriber": confirmed},
            )
        return render(request, "subscribers/confirm_invalid.html", status=404)
    if request.method == "GET":
        return render(request, "subscribers/confirm.html", {"token": token})
    subscriber = services.confirm_subscription(subscriber=subscriber)
    if subscriber.status != Subscriber.Status.ACTIVE:  # suppressed meanwhile
        return render(request, "subscribers/confirm_invalid.html", status=404)
    # Following the link proves the address is theirs, as a sign-in link would.
    sign_in_subscriber(request, subscriber)
    return render(request, "subscribers/confirmed.html", {"subscriber": subscriber})


_RECEIVING = (Subscriber.Status.ACTIVE, Subscriber.Status.PENDING)


def _issue_in(request: HttpRequest) -> int | None:
    """Return the issue an email's link names (``?issue=``), or None."""
    issue = request.GET.get("issue", "")
    return int(issue) if issue.isdigit() and len(issue) < 12 else None


def _newsletter_left_from(
    subscriber: Subscriber | None, issue_id: int | None
) -> Newsletter | None:
    """Return the newsletter an email's unsubscribe link leaves, or None for all.

    The token says who; the issue in the address (not signed) only says which
    newsletter, and counts only if that subscriber was sent that issue (sending
    answers, see signals.newsletter_of_sent_issue). Anything else, a link from
    before newsletters or an issue they never got, leaves every newsletter: an
    unsubscribe is never refused for a doubtful parameter.
    """
    if subscriber is None or issue_id is None:
        return None
    for _receiver, newsletter_id in newsletter_of_sent_issue.send(
        sender=Subscriber, subscriber_id=subscriber.pk, issue_id=issue_id
    ):
        if newsletter_id is not None:
            return Newsletter.objects.filter(pk=newsletter_id).first()
    return None


def _unsubscribe_context(
    token: str, subscriber: Subscriber | None, newsletter: Newsletter | None = None
) -> dict:
    receiving = subscriber is not None and subscriber.status in _RECEIVING
    kept = (
        list(subscriber.newsletters.order_by("position", "pk"))
        if receiving and subscriber is not None
        else []
    )
    return {
        "token": token,
        "subscriber": subscriber,
        "receiving": receiving,
        "newsletter": newsletter,
        "in_newsletter": newsletter is not None and newsletter in kept,
        "kept_newsletters": [n for n in kept if n != newsletter],
        # Only someone who left by choice is offered the way back; a bounced or
        # suppressed address could not subscribe again anyway.
        "can_resubscribe": subscriber is not None
        and subscriber.status == Subscriber.Status.UNSUBSCRIBED
        and not services.is_suppressed(subscriber.email),
    }


@csrf_exempt  # RFC 8058 one-click: mail providers POST with no cookie, no token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows what the link leaves and its buttons; POST leaves.

    A link from an issue's email (``?issue=``) leaves that issue's newsletter, and
    the page offers to leave all; a POST with ``scope=all``, or a link without the
    issue, leaves every newsletter (unsubscribes). The one-click POST (body
    ``List-Unsubscribe=One-Click``) lands here too and leaves the newsletter. An
    unknown token gets the neutral page that names nobody, and changes nothing.
    """
    subscriber = Subscriber.objects.filter(token=token).first()
    issue_id = _issue_in(request)
    newsletter = _newsletter_left_from(subscriber, issue_id)
    if request.method == "GET":
        context = _unsubscribe_context(token, subscriber, newsletter)
        # The forms post back to this address, with the issue it came from.
        context["issue"] = issue_id or ""
        return render(request, "subscribers/unsubscribe.html", context)
    if subscriber is None:
        return render(
            request, "subscribers/unsubscribed.html", _unsubscribe_context(token, None)
        )
    was_receiving = subscriber.status in _RECEIVING
    if newsletter is None or request.POST.get("scope") == "all":
        subscriber = services.unsubscribe_subscriber(subscriber=subscriber)
        left = was_receiving
        left_all = True
    else:
        was_in = subscriber.newsletters.filter(pk=newsletter.pk).exists()
        left_all = services.leave_newsletter(
            subscriber=subscriber, newsletter_id=newsletter.pk
        )
        subscriber.refresh_from_db()
        left = was_receiving and (was_in or left_all)
    if left and newsletter is not None:
        # Counted against the issue whose email it came from, whichever way.
        subscriber_left.send(
            sender=Subscriber, subscriber_id=subscriber.pk, issue_id=issue_id
        )
    context = _unsubscribe_context(token, subscriber, newsletter)
    if left_all or not context["receiving"]:
        return render(request, "subscribers/unsubscribed.html", context)
    return render(request, "subscribers/left_newsletter.html", context)


# The secret token in the address is the only authority here (no session or cookie
# is read), so a cross-site form gains nothing; and without a CSRF cookie the page
# answering a one-click POST sets no cookie on the mail provider.
@csrf_exempt
@require_POST
@_try_again_when_unavailable
def resubscribe_by_token(request: HttpRequest, token: str) -> HttpResponse:
    """Start a fresh double opt-in for the address an unsubscribe link names.

    Never re-activates at once: a confirmation email goes out, as from the
    subscribe form, under the same rate limits.
    """
    ip = client_ip(request)
    if over_limit(f"subscribe:ip:{ip}", limit=SUBSCRIBE_LIMIT_PER_IP, window=HOUR):
        return _too_many(request)
    subscriber = Subscriber.objects.filter(token=token).first()
    if subscriber is None or subscriber.status != Subscriber.Status.UNSUBSCRIBED:
        # Unknown tokens and anyone already back: the unsubscribe page says where
        # things stand (and names nobody for an unknown token).
        return redirect(reverse("subscribers:unsubscribe", args=[token]))
    if not over_limit(
        f"subscribe:mailbox:{mailbox_key(subscriber.email)}",
        limit=SUBSCRIBE_LIMIT_PER_ADDRESS,
        window=HOUR,
    ):
        services.subscribe(
            email=subscriber.email,
            ip=ip or None,
            user_agent=request.headers.get("user-agent", ""),
            form="form:/unsubscribe/",
        )
    return render(request, "subscribers/check_inbox.html", {"email": subscriber.email})


@require_http_methods(["GET", "POST"])
@_try_again_when_unavailable
def login(request: HttpRequest) -> HttpResponse:
    """Ask for an address and email it a sign-in link (same answer for unknown ones)."""
    if request.method == "GET":
        if current_subscriber(request):
            return redirect("subscribers:account")
        return render(request, "subscribers/login.html", {"form": LoginForm()})
    ip = client_ip(request)
    if over_limit(f"login:ip:{ip}", limit=LOGIN_LIMIT_PER_IP, window=HOUR):
        return _too_many(request)
    form = LoginForm(request.POST)
    if not form.is_valid():
        return render(request, "subscribers/login.html", {"form": form}, status=400)
    email = form.cleaned_data["email"]
    if not over_limit(
        f"login:mailbox:{mailbox_key(email)}",
        limit=LOGIN_LIMIT_PER_ADDRESS,
        window=HOUR,
    ):
        services.request_login_link(email=email)
    return render(request, "subscribers/login_sent.html", {"email": email})


@require_http_methods(["GET", "POST"])
def login_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a Sign in button; POST starts the session."""
    subscriber = read_login_token(token)
    if subscriber is None:
        return render(request, "subscribers/login_invalid.html", status=404)
    if request.method == "GET":
        return render(request, "subscribers/login_confirm.html", {"token": token})
    services.record_login(subscriber=subscriber)
    sign_in_subscriber(request, subscriber)
    return redirect("subscribers:account")


def _signed_in(view):
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        subscriber = current_subscriber(request)
        if subscriber is None:
            return redirect("subscribers:login")
        return view(request, subscriber, *args, **kwargs)

    return wrapper


def _account_page(
    request: HttpRequest,
    subscriber: Subscriber,
    *,
    form: ProfileForm | None = None,
    email_form: EmailChangeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render the preference center: what the subscriber gets and every setting."""
    offered = list(Newsletter.objects.order_by("position", "pk"))
    chosen = set(subscriber.newsletters.values_list("pk", flat=True))
    return render(
        request,
        "subscribers/account.html",
        {
            "subscriber": subscriber,
            "form": form or ProfileForm(initial={"name": subscriber.name}),
            "email_form": email_form or EmailChangeForm(),
            "newsletter_choices": [
                (newsletter, newsletter.pk in chosen) for newsletter in offered
            ],
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@_signed_in
def account(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Show the preference center; POST changes the subscriber's name."""
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            services.update_profile(
                subscriber=subscriber, name=form.cleaned_data["name"]
            )
            messages.success(request, "Your name is saved.")
            return redirect("subscribers:account")
        return _account_page(request, subscriber, form=form, status=400)
    return _account_page(request, subscriber)


@require_POST
@_signed_in
def newsletters(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Receive exactly the newsletters ticked."""
    form = NewslettersForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("newsletters", []):
            messages.error(request, str(error))
        return redirect("subscribers:account")
    services.set_newsletters(
        subscriber=subscriber, newsletter_ids=form.cleaned_data["newsletters"]
    )
    messages.success(request, "Your newsletters are saved.")
    return redirect("subscribers:account")


@require_POST
@_try_again_when_unavailable
@_signed_in
def email_change(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Email a link to the new address; the address changes once it is followed.

    The answer is the same whether or not the address belongs to someone else or
    is suppressed (no link goes out then), so the form tells nobody whose
    address it is.
    """
    ip = client_ip(request)
    if over_limit(
        f"email-change:ip:{ip}", limit=EMAIL_CHANGE_LIMIT_PER_IP, window=HOUR
    ) or over_limit(
        f"email-change:subscriber:{subscriber.pk}",
        limit=EMAIL_CHANGE_LIMIT_PER_SUBSCRIBER,
        window=HOUR,
    ):
        return _too_many(request)
    form = EmailChangeForm(request.POST)
    if form.is_valid():
        new_email = form.cleaned_data["email"]
        try:
            if not over_limit(
                f"email-change:mailbox:{mailbox_key(new_email)}",
                limit=EMAIL_CHANGE_LIMIT_PER_ADDRESS,
                window=HOUR,
            ):
                email_change_service.request_email_change(
                    subscriber=subscriber, new_email=new_email
                )
        except email_change_service.EmailChangeRefused as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(
                request,
                f"We sent a link to {new_email}. Your address changes once you "
                "follow it (within 24 hours).",
            )
            return redirect("subscribers:account")
    return _account_page(request, subscriber, email_form=form, status=400)


@require_http_methods(["GET", "POST"])
def email_change_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button (link scanners change nothing); POST changes the address.

    The link alone is the authority: it reached the new mailbox. It works once
    and for 24 hours.
    """
    found = read_email_change_token(token)
    if found is None:
        return render(request, "subscribers/email_change_invalid.html", status=404)
    subscriber, new_email = found
    if request.method == "GET":
        return render(
            request,
            "subscribers/email_change_confirm.html",
            {"token": token, "new_email": new_email},
        )
    try:
        subscriber = email_change_service.change_email(
            subscriber=subscriber, new_email=new_email
        )
    except email_change_service.EmailChangeRefused as exc:
        return render(
            request,
            "subscribers/email_change_invalid.html",
            {"reason": str(exc)},
            status=409,
        )
    return render(request, "subscribers/email_changed.html", {"subscriber": subscriber})


@require_POST
@_signed_in
def pause(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Pause or resume emails."""
    paused = request.POST.get("paused") == "1"
    services.set_paused(subscriber=subscriber, paused=paused)
    messages.success(
        request, "Emails are paused." if paused else "Emails are on again."
    )
    return redirect("subscribers:account")


@require_POST
@_signed_in
def tracking(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Turn the tracking of the subscriber's emails on or off."""
    on = request.POST.get("tracking") == "1"
    services.set_tracking(subscriber=subscriber, tracking=on)
    messages.success(
        request,
        "Your emails may say when they are opened and which links you follow."
        if on
        else "Your emails carry no tracking from now on.",
    )
    return redirect("subscribers:account")


@require_POST
@_signed_in
def account_unsubscribe(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Unsubscribe from the account page."""
    services.unsubscribe_subscriber(subscriber=subscriber)
    messages.success(request, "You are unsubscribed. No more emails will be sent.")
    return redirect("subscribers:account")


@require_POST
@_signed_in
def resubscribe(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Subscribe again: a new confirmation email, as for anyone new."""
    services.subscribe(
        email=subscriber.email,
        ip=client_ip(request) or None,
        user_agent=request.headers.get("user-agent", ""),
        form="form:/account/",
    )
    messages.success(request, "Check your inbox: we sent a link to confirm.")
    return redirect("subscribers:account")


@require_http_methods(["GET"])
@_signed_in
def export_data(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Download everything stored about the subscriber as JSON."""
    data = services.export_subscriber_data(subscriber=subscriber)
    response = HttpResponse(json.dumps(data, indent=2), content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="my-subscription.json"'
    return response


@require_POST
@_signed_in
def delete(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Erase the subscriber, keeping only a hash of the address as a suppression."""
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the box to confirm that you want to be deleted.")
        return redirect("subscribers:account")
    try:
        services.delete_subscriber(subscriber=subscriber)
    except ErasureRefused as exc:
        messages.error(request, str(exc))
        return redirect("subscribers:account")
    sign_out_subscriber(request)
    return render(request, "subscribers/deleted.html")


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Sign out."""
    sign_out_subscriber(request)
    return redirect("home")


@never_cache
def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Answer a form sent without a valid CSRF token (CSRF_FAILURE_VIEW).

    Forms on pages cached for every reader carry no token until forms.js fetches
    one; without JavaScript a first visit's form arrives without it. This page
    sets the reader's CSRF cookie and shows the subscribe form again, filled in as
    sent and with a token, to be sent once more: nothing is done on the refused
    request itself.
    """
    get_token(request)
    form = None
    if request.path == reverse("subscribers:subscribe"):
        again = QueryDict(mutable=True)
        again["email"] = request.POST.get("email", "")[:320]
        again["name"] = request.POST.get("name", "")[:200]
        again.setlist("newsletters", request.POST.getlist("newsletters")[:50])
        if request.POST.get("newsletters_offered"):
            again["newsletters_offered"] = "1"
        form = SubscribeForm(again)
    return render(request, "403_csrf.html", {"subscribe_form": form}, status=403)
