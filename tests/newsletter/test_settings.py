import email
import email.policy
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def _django(env_overrides: dict, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        # DJANGO_ALLOW_ASYNC_UNSAFE: set by tests/browser/conftest.py for Playwright.
        if k
        not in {
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DEBUG",
            "DATABASE_URL",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"ALLOWED_HOSTS": "news.example.org"}, "SECRET_KEY"),
        ({"SECRET_KEY": "x" * 50}, "ALLOWED_HOSTS"),
    ],
)
def test_debug_off_without_a_required_variable_stops_naming_it(given, missing):
    result = _django({"DEBUG": "false", **given}, "check")

    assert result.returncode != 0
    assert f"Set the environment variable {missing}" in result.stderr


# The deploy warnings that remain by choice; the README explains each.
EXPLAINED_DEPLOY_WARNINGS = {"security.W005", "security.W021"}


def _deploy_warnings(output: str) -> set[str]:
    return {
        word.rstrip(":").strip("()")
        for word in output.split()
        if word.startswith("(security.") or word.startswith("?: (security.")
    }


def test_check_deploy_warns_only_about_what_the_readme_explains():
    result = _django(
        {
            "DEBUG": "false",
            "SECRET_KEY": "k3y-" + "a8Zq" * 16,
            "ALLOWED_HOSTS": "news.example.org",
        },
        "check",
        "--deploy",
    )

    output = result.stdout + result.stderr
    assert _deploy_warnings(output) <= EXPLAINED_DEPLOY_WARNINGS, output
    readme = (settings.BASE_DIR / "README.md").read_text()
    for warning in EXPLAINED_DEPLOY_WARNINGS:
        assert warning in readme


def _env_file(path) -> dict[str, str]:
    """Read an env file as docker compose does: KEY=VALUE lines, # comments."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _compose_environment() -> dict[str, str]:
    """Return what docker-compose.yml adds for the app, its defaults filled in."""
    import re

    import yaml

    compose = yaml.safe_load((settings.BASE_DIR / "docker-compose.yml").read_text())
    return {
        key: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
        for key, value in compose["x-app"]["environment"].items()
    }


def _production_env() -> dict[str, str]:
    env = {"DEBUG": "", **_env_file(settings.BASE_DIR / ".env.example")}
    env.update(_compose_environment())
    del env["DEBUG"]  # neither file sets it: services mode turns it off
    return env


def test_env_example_as_it_is_refuses_to_start_until_the_secret_key_is_set():
    result = _django(_production_env(), "check", "--deploy")

    assert result.returncode != 0
    assert "Set the environment variable SECRET_KEY" in result.stderr
    assert "placeholder" in result.stderr


def test_check_deploy_with_env_example_warns_only_about_what_the_readme_explains():
    env = _production_env()
    # What .env.example asks for: a long random secret in place of the placeholder.
    env["SECRET_KEY"] = "k3y-" + "a8Zq" * 16

    result = _django(env, "check", "--deploy")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert _deploy_warnings(output) <= EXPLAINED_DEPLOY_WARNINGS, output
    assert "DEBUG" not in env


def test_outbox_backend_writes_one_eml_file_per_message(settings, tmp_path):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"

    mail.send_mail("Hello", "Body text", "from@example.org", ["a@example.org"])
    mail.send_mail("Again", "More", "from@example.org", ["b@example.org"])

    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    parsed = {
        email.message_from_bytes(f.read_bytes(), policy=email.policy.default)["To"]
        for f in files
    }
    assert parsed == {"a@example.org", "b@example.org"}


def test_ensure_admin_creates_one_admin_and_prints_its_login(monkeypatch, capsys):
    from django.contrib.auth import get_user_model

    monkeypatch.setenv("QUIRE_ADMIN_PASSWORD", "correct-horse-battery")
    call_command("ensure_admin")
    call_command("ensure_admin")

    out = capsys.readouterr().out
    assert out.count("password correct-horse-battery") == 2
    admins = get_user_model().objects.filter(is_superuser=True)
    assert admins.count() == 1
    assert admins.get().check_password("correct-horse-battery")


def test_the_running_banner_repeats_the_generated_admin_login_next_to_the_address(
    monkeypatch, capsys, settings, tmp_path
):
    from newsletter.management.commands.runall import banner

    monkeypatch.delenv("QUIRE_ADMIN_PASSWORD", raising=False)
    settings.VAR_DIR = tmp_path
    call_command("ensure_admin")
    printed = capsys.readouterr().out.strip()
    password = (tmp_path / "admin-password").read_text()

    text = banner(addr="127.0.0.1", port=8000)

    assert printed == f"Admin login: username admin  password {password}"
    assert "Quire is running at http://127.0.0.1:8000/" in text
    assert "admin: http://127.0.0.1:8000/admin/" in text
    assert printed in text.splitlines()


def test_the_running_banner_says_when_the_admin_password_was_changed(
    monkeypatch, capsys, settings, tmp_path
):
    from django.contrib.auth import get_user_model

    from newsletter.management.commands.runall import banner

    monkeypatch.setenv("QUIRE_ADMIN_PASSWORD", "correct-horse-battery")
    settings.VAR_DIR = tmp_path
    call_command("ensure_admin")
    admin = get_user_model().objects.get()
    admin.set_password("something-else-now")
    admin.save()
    capsys.readouterr()

    call_command("ensure_admin")
    printed = capsys.readouterr().out.strip()
    text = banner(addr="127.0.0.2", port=9000)

    assert "correct-horse-battery" not in text
    assert printed in text.splitlines()
    assert "Admin login: username admin (password changed since" in text
    assert "http://127.0.0.2:9000/" in text


def test_the_running_banner_without_an_admin_prints_no_login(settings, tmp_path):
    from newsletter.management.commands.runall import banner

    settings.VAR_DIR = tmp_path

    text = banner(addr="127.0.0.1", port=8000)

    assert "Quire is running at http://127.0.0.1:8000/" in text
    assert "Admin login" not in text


def _database_options(**env: str) -> dict:
    # Settings only: `shell` connects to no database.
    result = _django(
        {"DEBUG": "true", **env},
        "shell",
        "-c",
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_postgresql_sessions_of_a_vanished_host_end_on_both_sides():
    options = _database_options(
        DATABASE_URL="postgres://quire@db.example:5432/quire",
        DATABASE_KEEPALIVE_SECONDS="30",
    )

    # The worker's end gives up on a dead server...
    assert options["keepalives"] == 1
    assert options["keepalives_idle"] == 15
    assert options["keepalives_interval"] == 5
    assert options["keepalives_count"] == 3
    assert options["tcp_user_timeout"] == 30000
    # ...and the server ends the session of a dead host (tests/scale shows it does).
    assert options["options"].split(" -c ") == [
        "-c tcp_keepalives_idle=15",
        "tcp_keepalives_interval=5",
        "tcp_keepalives_count=3",
        "tcp_user_timeout=30000",
    ]


def test_database_keepalives_keep_options_of_the_database_url_and_can_be_off():
    kept = _database_options(
        DATABASE_URL="postgres://quire@db/quire?options=-c%20statement_timeout%3D5000",
    )
    off = _database_options(
        DATABASE_URL="postgres://quire@db/quire", DATABASE_KEEPALIVE_SECONDS="0"
    )

    assert kept["options"].startswith(
        "-c statement_timeout=5000 -c tcp_keepalives_idle"
    )
    assert "keepalives" not in off
    assert "options" not in off
