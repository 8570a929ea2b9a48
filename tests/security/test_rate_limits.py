"""Signup and sign-in limits hold against forged headers, aliases and a dead cache.

And the subscribe answer does the same work whatever the address's state: the view
only queues a task, so neither its answer nor its queries tell who subscribes.
"""

import logging
import re
import socket

import pytest
from celery.signals import before_task_publish
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from subscribers.models import Subscriber, Suppression, hash_email
from subscribers.throttling import client_ip, mailbox_key
from tests.factories.subscribers import PendingSubscriberFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

SUBSCRIBE = "/subscribe/"
LOGIN = "/account/login/"


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def subscribe(client, email, *, ip="203.0.113.7", **headers):
    return client.post(
        SUBSCRIBE,
        {"email": email, "name": "", "page": "/"},
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT="Mozilla/5.0 test",
        **headers,
    )


# --- who the client is -----------------------------------------------------------


def test_forged_forwarded_headers_from_an_untrusted_client_share_its_limit(
    client, commit, mailoutbox
):
    with commit():
        answers = [
            subscribe(
                client,
                f"victim{n}@example.org",
                HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
            ).status_code
            for n in range(25)
        ]
    assert answers == [200] * 20 + [429] * 5
    assert len(mailoutbox) == 20


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    client, commit, settings, mailoutbox
):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    with commit():
        first = [
            subscribe(
                client, f"a{n}@example.org", ip="127.0.0.1",
                HTTP_X_FORWARDED_FOR="198.51.100.1",
            ).status_code
            for n in range(21)
        ]  # fmt: skip
        other = subscribe(
            client, "b@example.org", ip="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.2"
        )
    assert first == [200] * 20 + [429]
    assert other.status_code == 200
    assert len(mailoutbox) == 21


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        # No trusted proxy: the header is the client's own words.
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # From the proxy: the address it appended, whatever came before it.
        ("192.0.2.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        # Two proxies deep: skip every trusted hop from the right.
        ("192.0.2.1", "6.6.6.6, 198.51.100.1, 192.0.2.77", "198.51.100.1"),
        # Garbage where a proxy would write: the last address a proxy vouched for.
        ("192.0.2.1", "198.51.100.1, not-an-ip", "192.0.2.1"),
        # A proxy with no header at all.
        ("192.0.2.1", "", "192.0.2.1"),
    ],
)
def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(
    settings, remote, forwarded, client
):
    settings.TRUSTED_PROXIES = ["192.0.2.0/24"]
    request = RequestFactory().get(
        "/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded
    )
    assert client_ip(request) == client


def test_an_untrusted_proxy_setting_is_refused_at_start():
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {**os.environ, "TRUSTED_PROXIES": "192.0.2.1,proxy.local"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Set the environment variable TRUSTED_PROXIES" in result.stderr
    assert "'proxy.local'" in result.stderr


# --- one mailbox, many spellings ------------------------------------------------


def test_plus_aliases_of_one_mailbox_share_the_confirmation_limit(
    client, commit, mailoutbox
):
    with commit():
        for n in range(8):
            # A different address each time, as a botnet would.
            assert subscribe(client, f"ada+{n}@example.org", ip=f"203.0.113.{n}")
    assert len(mailoutbox) == 5
    # The rows keep each address exactly as typed.
    assert Subscriber.objects.filter(email="ada+0@example.org").exists()


def test_dots_in_a_gmail_address_reach_one_inbox_and_share_its_limit(
    client, commit, mailoutbox
):
    spellings = ["a.da@gmail.com", "ad.a@gmail.com", "ada@googlemail.com",
                 "a.d.a+x@gmail.com", "ada.@gmail.com", "a..da@gmail.com",
                 "ada+y@gmail.com"]  # fmt: skip
    with commit():
        for n, address in enumerate(spellings):
            subscribe(client, address, ip=f"203.0.113.{n}")
    assert {mailbox_key(a) for a in spellings} == {"ada@gmail.com"}
    assert len(mailoutbox) == 5


def test_dots_elsewhere_are_different_mailboxes():
    assert mailbox_key("a.da@example.org") != mailbox_key("ada@example.org")
    assert mailbox_key("Ada+News@Example.org") == "ada@example.org"


def test_sign_in_links_are_limited_per_mailbox_across_aliases(
    client, commit, mailoutbox
):
    for n in range(5):
        SubscriberFactory(email=f"ada+{n}@example.org")
    with commit():
        for n in range(5):
            client.post(
                LOGIN, {"email": f"ada+{n}@example.org"}, REMOTE_ADDR=f"203.0.113.{n}"
            )
    assert len(mailoutbox) == 3


# --- the cache down ---------------------------------------------------------------


@pytest.fixture
def cache_down(settings):
    """Point the cache at a closed port on this machine (Redis not running)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    working = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }
    yield port
    # Back before the other fixtures clear the cache.
    settings.CACHES = working


def test_with_the_cache_down_subscribing_says_try_again_and_keeps_the_address(
    client, commit, cache_down, mailoutbox, caplog
):
    caplog.set_level(logging.ERROR, logger="subscribers.throttling")
    with commit():
        response = client.post(
            SUBSCRIBE,
            {"email": "ada@example.org", "name": "Ada", "page": "/issues/x/"},
            REMOTE_ADDR="203.0.113.7",
        )
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    page = response.content.decode()
    assert "Try again in a minute" in page
    # The form is there again with what they typed: one press sends it again.
    assert 'value="ada@example.org"' in page and 'value="Ada"' in page
    assert 'value="/issues/x/"' in page
    assert not Subscriber.objects.exists()
    assert mailoutbox == []
    assert "Rate limit cache unavailable" in caplog.text


def test_with_the_cache_down_signing_in_says_try_again(
    client, commit, cache_down, mailoutbox
):
    SubscriberFactory(email="ada@example.org")
    with commit():
        response = client.post(LOGIN, {"email": "ada@example.org"})
    assert response.status_code == 503
    assert "Try again in a minute" in response.content.decode()
    assert mailoutbox == []


def test_with_the_cache_down_resubscribing_from_an_email_says_try_again(
    client, commit, cache_down, mailoutbox
):
    left = SubscriberFactory(
        email="ada@example.org", status=Subscriber.Status.UNSUBSCRIBED
    )
    with commit():
        response = client.post(f"/unsubscribe/{left.token}/resubscribe/")
    assert response.status_code == 503
    left.refresh_from_db()
    assert left.status == Subscriber.Status.UNSUBSCRIBED
    assert mailoutbox == []


BROKER_DOWN_SCRIPT = """
from django.test import Client
from django.test.utils import setup_test_environment

setup_test_environment()
response = Client().post(
    "/subscribe/", {"email": "ada@example.org", "page": "/"}, REMOTE_ADDR="203.0.113.7"
)
print(response.status_code, response["Retry-After"])
print("Try again in a minute" in response.content.decode())
"""


def test_with_the_broker_down_subscribing_says_try_again(transactional_db, tmp_path):
    """A real request in a process whose broker (Redis) does not answer."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    from tests.conftest import database_url

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "true",
        "QUIRE_VAR_DIR": str(tmp_path),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    env.pop("CACHE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", BROKER_DOWN_SCRIPT],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-2:] == ["503 60", "True"], result.stderr
    assert "Task broker unavailable for /subscribe/" in result.stderr
    assert not Subscriber.objects.exists()


# --- the same work whatever the state -------------------------------------------


@pytest.fixture
def published_tasks(settings):
    """Queue tasks for real (to the test broker) and record what was queued."""
    from newsletter.celery import app
    from tests.conftest import empty_broker

    published = []

    def record(sender=None, body=None, **kwargs):
        published.append((sender, body[1]))

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    before_task_publish.connect(record, weak=False)
    try:
        yield published
    finally:
        before_task_publish.disconnect(record)
        app.conf.task_always_eager = eager
        empty_broker()


ADDRESSES = [
    "new@example.org",
    "pending@example.org",
    "active@example.org",
    "gone@example.org",
]
CSRF_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def test_the_subscribe_view_queues_the_same_task_for_any_address(
    client, published_tasks
):
    SubscriberFactory(email="active@example.org")
    PendingSubscriberFactory(email="pending@example.org")
    Suppression.objects.create(email_hash=hash_email("gone@example.org"))

    # The first request of a process reads what later ones find cached.
    subscribe(client, "warm-up@example.org", ip="203.0.113.99")
    before = sorted(Subscriber.objects.values_list("email", "status"))
    seen = []
    for n, address in enumerate(ADDRESSES):
        published_tasks.clear()
        with CaptureQueriesContext(connection) as queries:
            response = subscribe(client, address, ip=f"203.0.113.{n}")
        assert response.status_code == 200
        [(task, kwargs)] = published_tasks
        seen.append((task, sorted(kwargs), len(queries), response.content))
        assert kwargs["email"] == address

    assert {task for task, *_ in seen} == {"subscribers.tasks.subscribe"}
    assert len({(tuple(keys), count) for _, keys, count, _ in seen}) == 1
    pages = {
        CSRF_TOKEN.sub(b"", page.replace(kwargs_email.encode(), b""))
        for (*_, page), kwargs_email in zip(seen, ADDRESSES, strict=True)
    }
    assert len(pages) == 1
    # The view itself changed nothing: the task does the work.
    assert sorted(Subscriber.objects.values_list("email", "status")) == before


def test_the_subscribe_task_does_what_the_form_used_to(commit, mailoutbox):
    from subscribers import tasks

    with commit():
        tasks.subscribe.delay(
            email="ada@example.org",
            name="Ada",
            ip="203.0.113.7",
            user_agent="Mozilla/5.0 test",
            form="form:/",
        )
    ada = Subscriber.objects.get()
    assert (ada.status, ada.name, ada.consent_ip) == (
        Subscriber.Status.PENDING,
        "Ada",
        "203.0.113.7",
    )
    assert len(mailoutbox) == 1
