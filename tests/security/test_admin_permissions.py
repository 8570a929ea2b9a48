"""Staff with view-only rights can look but never act, anywhere in the admin.

Every action and every custom admin URL is found from the admin site itself, so one
added later is attacked here too (or fails the enumeration test until it is listed).
"""

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core import mail, serializers
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone

from issues.models import Issue
from issues.sending.models import Delivery, EmailEvent, Send
from newsletter.models import Publication
from subscribers.billing.models import CheckoutClaim, StripeEvent
from subscribers.models import Label, Segment, Subscriber, Suppression, hash_email
from tests.factories.billing import MembershipFactory, TierFactory
from tests.factories.issues import IssueFactory, PaperFactory, TagFactory
from tests.factories.subscribers import PendingSubscriberFactory, SubscriberFactory
from tests.sending.conftest import parse
from tests.sending.welcome_support import make_step

pytestmark = pytest.mark.django_db

# What a view-only staff member's POST to each custom admin URL gets: 403 where the
# view acts (it needs the change or add permission), 405 where it only shows
# something (GET only, open to the view permission).
CUSTOM_VIEWS = {
    "sending_test": 403,
    "sending_control": 403,
    "sending_publish": 403,
    "sending_schedule": 403,
    "sending_unpublish": 403,
    "sending_unschedule": 403,
    "sending_preview": 405,
    "sending_preview_raw": 405,
    "sending_status": 405,
    # A welcome step's test email acts; its preview only shows.
    "sending_welcomestep_test": 403,
    "sending_welcomestep_preview": 405,
    "sending_welcomestep_preview_raw": 405,
    # The issue report and the most read papers only show figures.
    "analytics_report": 405,
    "analytics_papers": 405,
    # Adding a paper from its id (the page and the editor's one click) adds.
    "issues_paper_add_from_id": 403,
    "issues_paper_create_from_id": 403,
    "subscribers_subscriber_import": 403,
    "subscribers_subscriber_invite": 403,
    "subscribers_subscriber_export": 405,
    # Importing papers adds and changes them; their export only shows.
    "issues_paper_import": 403,
    "issues_paper_export": 405,
    # Django's own: another user's password.
    "auth_user_password_change": 403,
    # django-otp's pages that show a device's secret: off in Quire
    # (OTP_ADMIN_HIDE_SENSITIVE_DATA), for everyone.
    "otp_totp_totpdevice_config": 403,
    "otp_totp_totpdevice_qrcode": 403,
    # django-unfold's command search: names of the models the user may see, GET only.
    "search": 405,
}
# The signed-in staff member's own two-factor settings: anyone on the staff may
# look after their own account (tests/security/test_admin_login.py).
OWN_ACCOUNT_VIEWS = {
    "two_factor",
    "two_factor_setup",
    "two_factor_verify",
    "two_factor_codes",
    "two_factor_off",
}
SITE_VIEWS = {
    "index",
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "autocomplete",
    "jsi18n",
    "view_on_site",
    "app_list",
}
# The only actions open to the view permission: they show what a viewer may see.
READ_ONLY_ACTIONS = {
    ("subscribers.Subscriber", "export_csv"),
    ("issues.Paper", "export_bibtex"),
    ("issues.Paper", "export_csl"),
}
MODEL_VIEWS = ("changelist", "add", "history", "delete", "change")
SEND_CONTROL_ACTIONS = ("pause", "resume", "retry")


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def registered_admins():
    for model in apps.get_models():
        if admin.site.is_registered(model):
            yield model, admin.site.get_model_admin(model)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(
        "author", "author@example.org", "pw-for-tests-only"
    )


@pytest.fixture
def viewer(db):
    user = get_user_model().objects.create_user(
        "intern", "intern@example.org", "pw-for-tests-only", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def world(db, superuser, viewer):
    """One row of every model the admin shows, in a state every action would change."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    Publication.load()
    now = timezone.now()
    active = SubscriberFactory(email="ada@example.org")
    PendingSubscriberFactory(email="grace@example.org")
    comped = SubscriberFactory(email="comped@example.org")
    Suppression.objects.create(email_hash=hash_email("gone@example.org"))
    tier = TierFactory()
    MembershipFactory(subscriber=comped, tier=tier, complimentary=True)
    StripeEvent.objects.create(
        event_id="evt_1",
        type="customer.subscription.updated",
        created_at=now,
        payload={},
        status=StripeEvent.Status.FAILED,
        error="boom",
    )
    draft = IssueFactory(title="A paid draft", access=Issue.Access.PAID)
    published = IssueFactory(title="Sent already", status=Issue.Status.PUBLISHED)
    send = Send.objects.create(
        issue=published, status=Send.Status.PAUSED, total=1, started_at=now
    )
    Delivery.objects.create(
        send=send,
        subscriber=active,
        email=active.email,
        status=Delivery.Status.FAILED,
        last_error="550 no",
    )
    EmailEvent.objects.create(
        event_id="ev-1", event_type="bounced", email=active.email, timestamp=now
    )
    PaperFactory().tags.add(TagFactory())
    label = Label.objects.create(name="ml")
    Segment.objects.create(name="Engaged", engaged_in_last=3).labels.add(label)
    Group.objects.create(name="Editors")
    AccessAttempt.objects.create(
        username="author", ip_address="203.0.113.9", failures_since_start=2
    )
    AccessLog.objects.create(username="author", ip_address="203.0.113.9")
    AccessFailureLog.objects.create(username="author", ip_address="203.0.113.9")
    CheckoutClaim.objects.create(
        subscriber=active,
        tier=tier,
        stripe_session_id="cs_held",
        stripe_subscription_id="sub_held",
        stripe_customer_id="cus_held",
        nonce="n" * 32,
    )
    TOTPDevice.objects.create(user=superuser, name="Authenticator app")
    StaticDevice.objects.create(user=superuser, name="Recovery codes")
    # One active step (deactivating changes it) and one inactive (activating does).
    welcome = make_step("Welcome", timedelta(0))
    make_step("Later", timedelta(days=3), active=False)
    return {"draft": draft, "published": published, "send": send, "welcome": welcome}


def snapshot() -> dict[str, str]:
    """Every row of every model (but sessions), to compare before and after."""
    return {
        model._meta.label: serializers.serialize(
            "json", model._default_manager.order_by("pk")
        )
        for model in apps.get_models()
        if model._meta.label != "sessions.Session"
    }


def every_action(user) -> list[tuple[type, str]]:
    """Return (model, action name) for every action the user may run."""
    request = RequestFactory().get("/admin/")
    request.user = user
    return [
        (model, name)
        for model, model_admin in registered_admins()
        for name in model_admin.get_actions(request)
    ]


def test_only_read_only_actions_are_offered_to_a_viewer(superuser, viewer):
    offered = {(model._meta.label, name) for model, name in every_action(viewer)}
    assert offered == READ_ONLY_ACTIONS


def custom_admin_urls():
    """Yield (name, pattern) for every admin URL that is not Django's own."""
    for pattern in admin.site.get_urls():
        # The unnamed pattern is the admin's catch-all "not found".
        if isinstance(pattern, URLPattern) and pattern.name not in SITE_VIEWS | {None}:
            yield pattern.name, pattern
    for model, model_admin in registered_admins():
        opts = model._meta
        standard = {f"{opts.app_label}_{opts.model_name}_{v}" for v in MODEL_VIEWS}
        for pattern in model_admin.get_urls():
            if isinstance(pattern, URLResolver) or pattern.name is None:
                continue
            if pattern.name not in standard:
                yield pattern.name, pattern


def assert_nothing_changed(before, settings):
    assert snapshot() == before
    assert mail.outbox == []
    assert not list(settings.EMAIL_OUTBOX_DIR.glob("*.eml"))


def test_every_admin_model_has_a_row_to_act_on(world):
    empty = [
        model._meta.label
        for model, _ in registered_admins()
        if not model._default_manager.exists()
    ]
    assert empty == [], f"add a row of {empty} to the world fixture"


def test_every_custom_admin_url_is_classified():
    names = {name for name, _ in custom_admin_urls()}
    assert names == set(CUSTOM_VIEWS) | OWN_ACCOUNT_VIEWS


def test_a_view_only_staff_member_runs_no_admin_action(
    world, superuser, viewer_client, settings
):
    actions = [
        (model, name)
        for model, name in every_action(superuser)
        if (model._meta.label, name) not in READ_ONLY_ACTIONS
    ]
    assert len(actions) >= 6  # unsubscribe, resend, comp (x2), end comp, requeue …
    before = snapshot()
    for model, name in actions:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        pks = [str(pk) for pk in model._default_manager.values_list("pk", flat=True)]
        response = viewer_client.post(
            url,
            {
                "action": name,
                "_selected_action": pks,
                "index": "0",
                "apply": "1",  # the complimentary form's "Grant"
                "post": "yes",  # delete_selected's "Yes, I'm sure"
            },
        )
        assert response.status_code == 403, (opts.label, name)
    assert_nothing_changed(before, settings)


def test_a_view_only_staff_member_still_exports_with_the_action(world, viewer_client):
    response = viewer_client.post(
        reverse("admin:subscribers_subscriber_changelist"),
        {
            "action": "export_csv",
            "_selected_action": list(Subscriber.objects.values_list("pk", flat=True)),
            "index": "0",
        },
    )
    assert response.status_code == 200
    assert b"ada@example.org" in b"".join(response.streaming_content)


def _urls_for(name: str, pattern, world) -> list[str]:
    keys = set(pattern.pattern.converters)
    if not keys:
        return [reverse(f"admin:{name}")]
    if name.startswith("otp_totp"):
        from django_otp.plugins.otp_totp.models import TOTPDevice

        pk = TOTPDevice.objects.get().pk
    elif name == "auth_user_password_change":
        return [
            reverse(
                f"admin:{name}",
                args=[get_user_model().objects.get(username="author").pk],
            )
        ]
    elif name.startswith("sending_welcomestep_"):
        pk = world["welcome"].pk
    elif name.startswith(("sending_", "analytics_")):
        pk = world["published" if name == "sending_control" else "draft"].pk
    else:
        raise AssertionError(f"say which object {name} takes")
    if "action" in keys:
        return [
            reverse(f"admin:{name}", kwargs={"pk": pk, "action": action})
            for action in SEND_CONTROL_ACTIONS
        ]
    return [reverse(f"admin:{name}", kwargs={"pk": pk})]


def test_a_view_only_staff_member_is_refused_by_every_custom_admin_view(
    world, viewer_client, settings
):
    before = snapshot()
    tried = 0
    for name, pattern in custom_admin_urls():
        if name in OWN_ACCOUNT_VIEWS:
            continue
        for url in _urls_for(name, pattern, world):
            response = viewer_client.post(
                url,
                {
                    "emails": "outsider@example.net",
                    "segment": "paid",
                    "outside_staff": "on",
                    "publish_at_0": "2099-01-02",
                    "publish_at_1": "09:30:00",
                },
            )
            assert response.status_code == CUSTOM_VIEWS[name], url
            tried += 1
    assert tried >= len(CUSTOM_VIEWS)
    assert_nothing_changed(before, settings)


def test_a_view_only_staff_member_can_preview_the_email_but_not_open_the_test_form(
    world, viewer_client
):
    draft = world["draft"]
    preview = viewer_client.get(reverse("admin:sending_preview", args=[draft.pk]))
    assert preview.status_code == 200
    status = viewer_client.get(reverse("admin:sending_status", args=[draft.pk]))
    assert status.status_code == 200
    form = viewer_client.get(reverse("admin:sending_test", args=[draft.pk]))
    assert form.status_code == 403


def test_a_view_only_staff_member_changes_and_deletes_nothing_through_model_pages(
    world, viewer_client, settings
):
    before = snapshot()
    for model, _ in registered_admins():
        opts = model._meta
        obj = model._default_manager.order_by("pk").first()
        for view, args in (("add", []), ("change", [obj.pk]), ("delete", [obj.pk])):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)
            response = viewer_client.post(url, {"post": "yes"})
            assert response.status_code == 403, url
    assert_nothing_changed(before, settings)


# --- test emails ---------------------------------------------------------------


@pytest.fixture
def editor(db):
    """A staff member who may change issues (and nothing else)."""
    user = get_user_model().objects.create_user(
        "editor", "editor@example.org", "pw-for-tests-only", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="issues",
            codename__in=["view_issue", "change_issue"],
        )
    )
    return user


@pytest.fixture
def editor_client(client, editor, settings):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    client.force_login(editor)
    return client


def sent_to(settings) -> list[str]:
    return sorted(
        parse(path.read_bytes())["To"]
        for path in settings.EMAIL_OUTBOX_DIR.glob("*.eml")
    )


def test_a_test_email_goes_to_staff_addresses_without_asking(
    editor_client, superuser, settings
):
    draft = IssueFactory(title="Draft", access=Issue.Access.PAID)
    response = editor_client.post(
        reverse("admin:sending_test", args=[draft.pk]),
        {"emails": "editor@example.org, Author@Example.org", "segment": "paid"},
    )
    assert response.status_code == 302
    assert sent_to(settings) == ["Author@Example.org", "editor@example.org"]


def test_a_test_email_to_an_outside_address_needs_the_confirmation_box(
    editor_client, settings
):
    draft = IssueFactory(title="Draft", access=Issue.Access.PAID)
    url = reverse("admin:sending_test", args=[draft.pk])
    data = {"emails": "editor@example.org, friend@example.net", "segment": "paid"}

    refused = editor_client.post(url, data)
    assert refused.status_code == 200
    assert "friend@example.net is not the address of a staff member" in (
        refused.content.decode()
    )
    assert sent_to(settings) == []

    confirmed = editor_client.post(url, {**data, "outside_staff": "on"})
    assert confirmed.status_code == 302
    assert sent_to(settings) == ["editor@example.org", "friend@example.net"]


def test_an_inactive_or_non_staff_account_is_not_a_staff_address(
    editor_client, settings
):
    User = get_user_model()
    User.objects.create_user(
        "gone", "gone@example.org", "x", is_staff=True, is_active=False
    )
    User.objects.create_user("reader", "reader@example.org", "x", is_staff=False)
    draft = IssueFactory(title="Draft")
    response = editor_client.post(
        reverse("admin:sending_test", args=[draft.pk]),
        {"emails": "gone@example.org, reader@example.org", "segment": "free"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "gone@example.org" in page and "reader@example.org" in page
    assert "is not the address of a staff member" in page
    assert sent_to(settings) == []


def test_test_emails_are_limited_per_staff_member_per_hour(editor_client, settings):
    settings.QUIRE_TEST_SENDS_PER_HOUR = 3
    draft = IssueFactory(title="Draft")
    url = reverse("admin:sending_test", args=[draft.pk])
    answers = [
        editor_client.post(
            url, {"emails": "editor@example.org", "segment": "free"}
        ).status_code
        for _ in range(4)
    ]
    assert answers == [302, 302, 302, 429]
    assert sent_to(settings) == ["editor@example.org"] * 3


def test_the_test_email_limit_holds_for_each_staff_member_apart(
    editor_client, client, superuser, settings
):
    settings.QUIRE_TEST_SENDS_PER_HOUR = 1
    draft = IssueFactory(title="Draft")
    url = reverse("admin:sending_test", args=[draft.pk])
    data = {"emails": "editor@example.org", "segment": "free"}
    assert editor_client.post(url, data).status_code == 302
    assert editor_client.post(url, data).status_code == 429
    other = Client()
    other.force_login(superuser)
    assert other.post(url, data).status_code == 302
    assert sent_to(settings) == ["editor@example.org"] * 2
