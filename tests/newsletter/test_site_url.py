"""Links point where the site runs: SITE_URL, or the address `make run` binds."""

import email
import email.policy
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest
from django.conf import settings

from tests.conftest import wait_for

# Variables that would point a child process at this test run's services.
TEST_ENVIRONMENT = (
    "SITE_URL", "QUIRE_ADDR", "QUIRE_PORT", "QUIRE_VAR_DIR", "DATABASE_URL",
    "CELERY_BROKER_URL", "CACHE_URL", "REDIS_URL", "EMAIL_URL", "EMAIL_HOST",
    "EMAIL_BACKEND", "CELERY_TASK_ALWAYS_EAGER", "DEBUG", "SECRET_KEY",
    "ALLOWED_HOSTS",
)  # fmt: skip


def embedded_env(var_dir, **extra) -> dict:
    """Return the environment of a fresh embedded default, as `make run` sees it."""
    env = {k: v for k, v in os.environ.items() if k not in TEST_ENVIRONMENT}
    env.update({"QUIRE_VAR_DIR": str(var_dir), **extra})
    return env


def site_url_with(tmp_path, **extra) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from django.conf import settings; print(settings.SITE_URL)"],
        cwd=settings.BASE_DIR, env=embedded_env(tmp_path / "var", **extra),
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


def test_site_url_defaults_to_the_address_and_port_make_run_binds(tmp_path):
    assert site_url_with(tmp_path) == "http://127.0.0.1:8000"
    assert site_url_with(tmp_path, QUIRE_PORT="8150") == "http://127.0.0.1:8150"
    assert (
        site_url_with(tmp_path, QUIRE_ADDR="localhost", QUIRE_PORT="8150")
        == "http://localhost:8150"
    )
    # Bound to every interface, links use the loopback address that answers.
    everywhere = "0.0.0.0"  # noqa: S104 - what runserver is told, not a bind here
    assert site_url_with(tmp_path, QUIRE_ADDR=everywhere) == "http://127.0.0.1:8000"
    assert site_url_with(tmp_path, QUIRE_ADDR="::1") == "http://[::1]:8000"
    # SITE_URL, when set, wins.
    assert (
        site_url_with(tmp_path, QUIRE_PORT="8150", SITE_URL="https://news.example/")
        == "https://news.example"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _outbox_messages(folder):
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


@pytest.fixture
def running_quire(tmp_path):
    """Run `manage.py runall` (what `make run` runs) with QUIRE_PORT on a free port."""
    port = _free_port()
    var_dir = tmp_path / "var"
    env = embedded_env(var_dir, QUIRE_PORT=str(port))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, timeout=300, check=True,
    )  # fmt: skip
    log = open(tmp_path / "runall.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runall"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: _listening(port), timeout=60, message="the web server")
        yield port, var_dir
    finally:
        # runall stops the web server, the worker and beat on SIGTERM.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def test_make_run_on_another_port_emails_links_to_that_port(running_quire):
    port, var_dir = running_quire
    site = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    form = opener.open(f"{site}/subscribe/").read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": csrf, "email": "reader@example.org", "page": "/"}
    ).encode()
    request = urllib.request.Request(
        f"{site}/subscribe/", data=data, headers={"Referer": f"{site}/subscribe/"}
    )
    assert opener.open(request).status == 200

    # The worker, a separate process, writes the confirmation email.
    (message,) = wait_for(
        lambda: _outbox_messages(var_dir / "outbox"), timeout=60, message="email"
    )
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    links = re.findall(r"https?://[^\s\"<>]+", text + html)
    assert links
    assert all(link.startswith(f"{site}/") for link in links), links
    confirm = re.search(rf"{re.escape(site)}/subscribe/confirm/\S+/", text).group(0)
    with opener.open(confirm) as response:
        assert response.status == 200
        assert "Confirm" in response.read().decode()
