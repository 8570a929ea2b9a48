"""Response headers (Content-Security-Policy) and email headers (From, names)."""

import hashlib
from base64 import b64encode
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse

from issues.demo import load_demo
from issues.models import Issue, Paper, Tag
from newsletter.models import Newsletter, Publication
from subscribers.billing.emails import send_billing_email
from subscribers.billing.models import Tier
from subscribers.models import Subscriber
from subscribers.tokens import make_confirmation_token, make_login_token
from tests.factories.billing import MembershipFactory, TierFactory
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import PendingSubscriberFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def author_client() -> Client:
    client = Client()
    client.force_login(
        get_user_model().objects.create_superuser("author", "a@example.org", "pw")
    )
    return client


def _publish(author_client, django_capture_on_commit_callbacks, **issue_fields):
    issue = IssueFactory(**issue_fields)
    with django_capture_on_commit_callbacks(execute=True):
        response = author_client.post(reverse("admin:sending_publish", args=[issue.pk]))
    assert response.status_code == 302
    return issue


# --- Email senders -----------------------------------------------------------------


def test_default_from_email_is_the_sender_until_the_publication_names_one(
    author_client, settings, smtp_settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "Research Notes <news@example.org>"
    SubscriberFactory(email="reader@example.org")

    _publish(author_client, django_capture_on_commit_callbacks, title="First")

    (received,) = smtp_settings.messages
    assert received.message["From"] == "Research Notes <news@example.org>"
    assert received.mail_from == "news@example.org"
    assert "<mailto:news@example.org?" in received.message["List-Unsubscribe"]


def test_a_sender_set_in_the_admin_replaces_default_from_email(
    author_client, settings, smtp_settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "Research Notes <news@example.org>"
    Publication.objects.update_or_create(
        pk=1, defaults={"sender_name": "Ada", "sender_email": "ada@papers.example"}
    )
    SubscriberFactory(email="reader@example.org")

    _publish(author_client, django_capture_on_commit_callbacks, title="First")

    (received,) = smtp_settings.messages
    assert received.message["From"] == "Ada <ada@papers.example>"
    assert received.mail_from == "ada@papers.example"


def test_without_a_name_in_default_from_email_mail_carries_the_publications(
    author_client, settings, smtp_settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "quire@localhost"
    Publication.objects.update_or_create(pk=1, defaults={"name": "Gradient Notes"})
    SubscriberFactory(email="reader@example.org")

    _publish(author_client, django_capture_on_commit_callbacks, title="First")

    (received,) = smtp_settings.messages
    assert received.message["From"] == "Gradient Notes <quire@localhost>"


def test_a_new_publication_has_no_sender_address_of_its_own():
    assert Publication.load().sender_email == ""


def _publication_form(**overrides) -> dict:
    data = {
        "name": "Papers Weekly",
        "description": "",
        "sender_name": "",
        "sender_email": "",
        "postal_address": "",
        "welcome_email": "",
        "consent_text": Publication.load().consent_text,
    }
    data.update(overrides)
    return data


def _change_publication(author_client, **fields):
    url = reverse("admin:newsletter_publication_change", args=[Publication.load().pk])
    return author_client.post(url, _publication_form(**fields))


def test_a_sender_address_with_non_ascii_before_the_at_is_refused(author_client):
    before = Publication.load().sender_email

    response = _change_publication(author_client, sender_email="ünï@exämple.org")

    assert response.status_code == 200
    assert "only plain letters, digits and . _ + - before the @" in (
        response.content.decode()
    )
    assert Publication.load().sender_email == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Papers Weekly\r\nBcc: everyone@example.org"),
        ("sender_name", "Ada\nBcc: everyone@example.org"),
    ],
)
def test_a_publication_name_on_two_lines_is_refused(author_client, field, value):
    response = _change_publication(author_client, **{field: value})

    assert response.status_code == 200
    assert "Write it on one line" in response.content.decode()
    assert getattr(Publication.load(), field) != value


def test_a_tier_name_on_two_lines_is_refused(author_client):
    response = author_client.post(
        reverse("admin:billing_tier_add"),
        {
            "name": "Supporter\r\nBcc: everyone@example.org",
            "slug": "supporter",
            "description": "",
            "benefits": "",
            "position": "0",
            "currency": "usd",
            "monthly_amount": "800",
            "yearly_amount": "",
            "trial_days": "0",
            "active": "on",
        },
    )

    assert response.status_code == 200
    assert "Write it on one line" in response.content.decode()
    assert not Tier.objects.exists()


def test_an_international_domain_is_sent_from_in_its_ascii_form(
    author_client, smtp_settings, django_capture_on_commit_callbacks
):
    response = _change_publication(
        author_client, sender_name="Zoë", sender_email="ada@exämple.org"
    )
    assert response.status_code == 302
    SubscriberFactory(email="reader@example.org")

    _publish(author_client, django_capture_on_commit_callbacks, title="First")

    (received,) = smtp_settings.messages
    assert received.mail_from == "ada@xn--exmple-cua.org"
    assert received.message["From"].addresses[0].display_name == "Zoë"
    assert received.message["From"].addresses[0].addr_spec == ("ada@xn--exmple-cua.org")
    assert b"=?utf-8?" in received.raw.split(b"\r\n\r\n")[0]  # RFC 2047, not raw


HOSTILE = {
    "name": "Papers\r\nBcc: everyone@example.org",
    "sender_name": "Ünï Nämé\nBcc: everyone@example.org",
    "sender_email": "ünï@exämple.org\r\nBcc: everyone@example.org",
}


def test_mail_still_goes_out_with_hostile_sender_values_stored_in_the_database(
    author_client, settings, smtp_settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "Research Notes <news@example.org>"
    Publication.objects.update_or_create(pk=1, defaults=HOSTILE)
    # The newsletter's own name is the List-Id's; stored as typed into the database.
    Newsletter.objects.filter(pk=Newsletter.default().pk).update(
        name=HOSTILE["name"], list_id="x>\r\nBcc: everyone@example.org"
    )
    SubscriberFactory(email="reader@example.org")

    _publish(author_client, django_capture_on_commit_callbacks, title="First")

    (received,) = smtp_settings.messages
    assert received.rcpt_tos == ["reader@example.org"]
    assert received.mail_from == "news@example.org"
    sender = received.message["From"].addresses[0]
    assert sender.addr_spec == "news@example.org"
    assert sender.display_name == "Ünï Nämé Bcc: everyone@example.org"
    assert received.message["Bcc"] is None
    # Quoted: the name holds a colon and an @; the identifier keeps only what an
    # identifier may hold.
    assert received.message["List-Id"] == (
        '"Papers Bcc: everyone@example.org" <x-bcc-everyone-example.org>'
    )


def test_account_emails_still_go_out_with_hostile_values_stored(
    client, settings, smtp_settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "Research Notes <news@example.org>"
    Publication.objects.update_or_create(pk=1, defaults=HOSTILE)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("subscribers:subscribe"), {"email": "new@example.org"})

    (received,) = smtp_settings.messages
    assert received.rcpt_tos == ["new@example.org"]
    assert received.message["Subject"] == (
        "Confirm your subscription to Papers Bcc: everyone@example.org"
    )
    assert received.message["From"].addresses[0].addr_spec == "news@example.org"
    assert received.message["Bcc"] is None
    assert Subscriber.objects.get(email="new@example.org").status == "pending"


def test_billing_emails_still_go_out_with_a_hostile_tier_name_stored(smtp_settings):
    tier = TierFactory(name="Supporter")
    Tier.objects.filter(pk=tier.pk).update(name="Supporter\r\nBcc: all@example.org")
    member = SubscriberFactory(email="member@example.org")
    membership = MembershipFactory(subscriber=member, tier=tier)

    send_billing_email(membership_pk=membership.pk, kind="welcome", extra={})

    (received,) = smtp_settings.messages
    assert received.rcpt_tos == ["member@example.org"]
    assert received.message["Subject"] == (
        "Welcome to Supporter Bcc: all@example.org: thank you for your support"
    )
    assert received.message["Bcc"] is None


def test_a_pending_subscriber_can_still_be_confirmed_by_email_after_a_bad_save(
    settings, smtp_settings
):
    settings.DEFAULT_FROM_EMAIL = "quire@localhost"
    Publication.objects.update_or_create(pk=1, defaults={"sender_email": "not an @"})
    pending = PendingSubscriberFactory(email="pending@example.org")
    from subscribers.services import send_confirmation_email

    assert send_confirmation_email(subscriber_id=pending.pk)

    (received,) = smtp_settings.messages
    assert received.message["From"].addresses[0].addr_spec == "quire@localhost"


# --- Content-Security-Policy ------------------------------------------------------


def _policy(response) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy")
    assert header, f"{response.request['PATH_INFO']} has no Content-Security-Policy"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def _style_hash(value: str) -> str:
    digest = b64encode(hashlib.sha256(value.encode()).digest()).decode()
    return f"'sha256-{digest}'"


class _InlineCode(HTMLParser):
    """Collect what a strict policy would block: inline scripts, styles, handlers."""

    def __init__(self, allowed_styles: set[str]) -> None:
        super().__init__()
        self.allowed_styles = allowed_styles
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        # A data block (the issue's JSON-LD, a chart's json_script) is never run,
        # so the policy does not govern it; any other inline <script> would be
        # code the policy blocks.
        if tag == "script" and not attrs.get("src"):
            self._in_script = attrs.get("type") not in (
                "application/ld+json",
                "application/json",
            )
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs.items():
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if name == "style" and _style_hash(value or "") not in self.allowed_styles:
                self.found.append(f'<{tag} style="{value}">')
            if name in ("href", "src", "action") and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value}>")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append(f"inline <script>: {data.strip()[:60]}")


def _inline_code(response, allowed_styles: set[str]) -> list[str]:
    scanner = _InlineCode(allowed_styles)
    scanner.feed(response.content.decode())
    return scanner.found


@pytest.fixture
def site(paid_enabled):
    """The demo publication, a signed-in reader, and one sent issue."""
    load_demo()
    reader = SubscriberFactory(email="reader@example.org")
    pending = PendingSubscriberFactory(email="pending@example.org")
    return {"reader": reader, "pending": pending}


def _reader_pages(site) -> list[str]:
    issue = Issue.objects.published().first()
    paper = Paper.objects.first()
    tag = Tag.objects.first()
    return [
        "/",
        reverse("issues:archive"),
        issue.get_absolute_url(),
        reverse("issues:papers"),
        paper.get_absolute_url(),
        reverse("issues:top_papers", args=[paper.year]),
        reverse("issues:tag", args=[tag.slug]),
        reverse("issues:search") + "?q=attention",
        reverse("subscribers:subscribe"),
        reverse("subscribers:confirm", args=[make_confirmation_token(site["pending"])]),
        reverse("subscribers:unsubscribe", args=[site["reader"].token]),
        reverse("subscribers:login"),
        reverse("billing:pricing"),
        reverse("billing:success") + "?session_id=cs_unknown",
        reverse("billing:cancel"),
    ]


EXPECTED = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def _assert_policy(response, path: str) -> dict[str, list[str]]:
    policy = _policy(response)
    for name, values in EXPECTED.items():
        assert policy.get(name) == values, (path, name, policy.get(name))
    assert set(policy["img-src"]) == {"'self'", "data:", "https:"}, path
    assert policy["form-action"][0] == "'self'", path
    assert "https://checkout.stripe.com" in policy["form-action"], path
    # Inline style attributes: only the table alignments the Markdown renderer writes.
    assert policy["style-src-attr"][0] == "'unsafe-hashes'", path
    allowed = set(policy["style-src-attr"][1:])
    assert _style_hash("text-align:right") in allowed
    assert _style_hash("color:red") not in allowed
    return policy


def _assert_strict(response, path: str) -> None:
    policy = _assert_policy(response, path)
    allowed = set(policy["style-src-attr"][1:])
    assert _inline_code(response, allowed) == [], path


def test_every_reader_page_has_a_strict_policy_and_no_inline_code(client, site):
    pages = _reader_pages(site)
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        _assert_strict(response, path)
    not_found = client.get("/no-such-page/")
    assert not_found.status_code == 404
    _assert_strict(not_found, "/no-such-page/")
    signed_in = Client()
    link = reverse("subscribers:login_link", args=[make_login_token(site["reader"])])
    _assert_strict(signed_in.get(link), link)
    signed_in.post(link)
    response = signed_in.get(reverse("subscribers:account"))
    assert response.status_code == 200
    _assert_strict(response, "/account/")


def test_a_table_with_aligned_columns_needs_no_inline_style_beyond_the_policy(client):
    issue = IssueFactory(
        published=True, body="| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n"
    )

    response = client.get(issue.get_absolute_url())

    assert 'style="text-align:center"' in response.content.decode()
    _assert_strict(response, issue.get_absolute_url())


def _admin_pages(user) -> list[str]:
    """Every admin list, add and change page, and the custom issue pages."""
    pages = [reverse("admin:index")]
    request = RequestFactory().get("/admin/")
    request.user = user
    for model in apps.get_models():
        if not admin.site.is_registered(model):
            continue
        model_admin = admin.site.get_model_admin(model)
        meta = model._meta
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        if model_admin.has_add_permission(request):
            pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        row = model._default_manager.first()
        if row is not None:
            pages.append(
                reverse(
                    f"admin:{meta.app_label}_{meta.model_name}_change", args=[row.pk]
                )
            )
    draft = Issue.objects.filter(status=Issue.Status.DRAFT).first()
    sent = Issue.objects.published().first()
    for name in ("sending_publish", "sending_schedule", "sending_test"):
        pages.append(reverse(f"admin:{name}", args=[draft.pk]))
    pages.append(reverse("admin:sending_preview", args=[draft.pk]) + "?segment=paid")
    pages.append(reverse("admin:sending_unpublish", args=[sent.pk]))
    pages.append(reverse("admin:issues_issue_change", args=[sent.pk]))
    pages.append(reverse("admin:subscribers_subscriber_import"))
    return pages


def test_every_admin_page_has_a_strict_policy_and_no_inline_code(
    author_client, site, django_capture_on_commit_callbacks
):
    sent = Issue.objects.published().first()
    from issues.sending import services

    with django_capture_on_commit_callbacks(execute=True):
        services.publish_issue(issue=Issue.objects.get(pk=sent.pk))
    user = get_user_model().objects.get(username="author")
    for path in _admin_pages(user):
        response = author_client.get(path, follow=True)
        assert response.status_code == 200, path
        _assert_strict(response, path)
    anonymous = Client().get(reverse("admin:login"))
    _assert_strict(anonymous, "/admin/login/")


def _parameterless_admin_urls() -> list[str]:
    """Every admin URL that takes no argument, whoever added it to the admin site."""
    from django.urls import URLPattern, URLResolver

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and "<" not in route:
                yield "/admin/" + route.lstrip("^").rstrip("$")

    return sorted(set(walk(admin.site.get_urls())))


def test_every_parameterless_admin_url_answers_under_the_policy(author_client, site):
    urls = _parameterless_admin_urls()
    assert "/admin/subscribers/subscriber/import/" in urls
    allowed = set(_policy(author_client.get("/admin/"))["style-src-attr"][1:])
    for path in urls:
        response = author_client.get(path)
        # Whatever the answer (a page, a redirect, "use POST"), it carries the policy.
        _assert_policy(response, path)
        if response.get("Content-Type", "").startswith("text/html"):
            assert _inline_code(response, allowed) == [], path


def test_the_raw_email_preview_keeps_its_own_stricter_policy(author_client, site):
    draft = Issue.objects.filter(status=Issue.Status.DRAFT).first()

    response = author_client.get(
        reverse("admin:sending_preview_raw", args=[draft.pk]) + "?segment=free"
    )

    policy = _policy(response)
    assert policy["script-src"] == ["'none'"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_uploads_keep_their_own_sandboxing_policy(settings, tmp_path, client):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "chart.png").write_bytes(b"\x89PNG\r\n")

    response = client.get("/media/chart.png")

    assert _policy(response) == {"default-src": ["'none'"], "sandbox": []}


def test_forms_may_go_on_to_a_stripe_address_set_by_stripe_api_base(settings, client):
    settings.STRIPE_API_BASE = "http://127.0.0.1:12111/v1"

    response = client.get(reverse("billing:pricing"))

    assert "http://127.0.0.1:12111" in _policy(response)["form-action"]
    assert "'self'" in _policy(response)["form-action"]
