"""Signup to welcome through the real parts: a Celery worker process and SMTP."""

import pytest

from subscribers.models import Subscriber
from tests.conftest import wait_for

from .conftest import link_in


@pytest.mark.django_db(transaction=True)
def test_confirmation_email_travels_through_smtp_and_its_link_confirms(
    client, smtp_server, celery_worker_factory
):
    celery_worker_factory(
        extra_env={"EMAIL_URL": f"smtp://{smtp_server.host}:{smtp_server.port}"}
    )

    response = client.post(
        "/subscribe/", {"email": "Ada@Example.org", "name": "Ada", "page": "/"}
    )
    assert response.status_code == 200

    received = wait_for(lambda: smtp_server.messages, timeout=60, message="email")
    assert len(received) == 1
    confirmation = received[0]
    assert confirmation.rcpt_tos == ["ada@example.org"]
    assert "Confirm" in confirmation.message["Subject"]
    text = confirmation.message.get_body(preferencelist=("plain",)).get_content()
    html = confirmation.message.get_body(preferencelist=("html",)).get_content()
    path = link_in(text, r"/subscribe/confirm/\S+/")
    assert path in html

    assert b"Confirm" in client.get(path).content
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    assert client.post(path).status_code == 200

    assert Subscriber.objects.receiving().get().email == "ada@example.org"
    wait_for(lambda: len(smtp_server.messages) == 2, timeout=60, message="welcome")
    welcome = smtp_server.messages[1]
    assert "Welcome" in welcome.message["Subject"]
    assert welcome.rcpt_tos == ["ada@example.org"]
