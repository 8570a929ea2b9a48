from datetime import timedelta

import pytest
from django.utils import timezone

from newsletter import services
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


def test_healthz_is_503_naming_the_worker_when_no_worker_has_reported(client):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["worker"]
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True


def test_healthz_is_200_after_a_recent_heartbeat(client):
    services.record_heartbeat(hostname="worker@test")

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_healthz_calls_a_stale_heartbeat_dead(client, settings):
    services.record_heartbeat(
        now=timezone.now() - timedelta(seconds=settings.QUIRE_HEARTBEAT_MAX_AGE + 5)
    )

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]


def test_healthz_names_an_unreachable_broker(client, settings):
    services.record_heartbeat()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


def test_a_real_worker_turns_healthz_green(celery_worker, client):
    assert client.get("/healthz").status_code == 503

    wait_for(
        lambda: client.get("/healthz").status_code == 200,
        timeout=30,
        message="the worker's first heartbeat",
    )
    assert client.get("/healthz").json()["worker"]["ok"] is True


def test_a_check_another_app_registers_is_run_and_a_broken_one_fails(client):
    from newsletter import health

    services.record_heartbeat(hostname="worker@test")

    def broken():
        raise RuntimeError("cannot tell")

    health.register_check("extra", lambda: (True, "fine"))
    health.register_check("broken", broken)
    try:
        body = client.get("/healthz").json()
    finally:
        health.unregister_check("extra")
        health.unregister_check("broken")

    assert body["extra"] == {"ok": True, "detail": "fine"}
    assert body["broken"] == {"ok": False, "detail": "RuntimeError: cannot tell"}
    assert body["failing"] == ["broken"]
