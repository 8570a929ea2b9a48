"""Lighthouse on every reader page: `make lighthouse`.

Or `python -m tests.browser.lighthouse [page ...]`.

Sets up a throwaway SQLite database with the demo content under var/lighthouse (or
QUIRE_VAR_DIR), starts gunicorn with DEBUG off, as in production, on a free port, and
runs Lighthouse on each page of tests/browser/reader_pages.py, one after another.
Prints the four category scores per page, with the audits that cost points, and
exits non-zero when any score is below 100.

Lighthouse is not a Python package: LIGHTHOUSE names its command (e.g. a copy
installed with `npm install --prefix /opt/lighthouse lighthouse@12.8.2`); without
it, `npx --yes lighthouse@12.8.2` fetches that version from the npm registry.
Chromium is CHROME_PATH, /usr/bin/chromium by default. LIGHTHOUSE_ARGS adds
options (e.g. `--preset=desktop`; the default is Lighthouse's mobile run).
Name pages to score only those (`home tag`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.browser.reader_pages import READER_PAGES

ROOT = Path(__file__).resolve().parent.parent.parent
VERSION = "12.8.2"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
RETRIED_ERRORS = {"NO_NAVSTART", "NO_FCP"}
RUNS = 3


def _var_dir() -> Path:
    var = Path(os.environ.get("QUIRE_VAR_DIR", "var/lighthouse"))
    return var if var.is_absolute() else ROOT / var


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(var: Path, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # The embedded default, whatever services this shell points at.
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "EMAIL_URL")
    }
    env.update(
        {
            "QUIRE_VAR_DIR": str(var),
            "DEBUG": "false",
            "SECRET_KEY": "lighthouse-only-not-a-secret",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SITE_URL": f"http://127.0.0.1:{port}",
            # Plain http on the loopback address, which browsers treat as secure.
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "newsletter.settings",
        }
    )
    return env


# Run in the server's environment: the demo content and a signed-in reader's session.
SETUP = """
import django
django.setup()
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from subscribers.models import Subscriber
from subscribers.sessions import SESSION_KEY
call_command("migrate", "--noinput", verbosity=0)
call_command("collectstatic", "--noinput", verbosity=0)
call_command("seed_demo", verbosity=0)
reader, _ = Subscriber.objects.get_or_create(
    email="reader@example.org",
    defaults={"status": Subscriber.Status.ACTIVE, "name": "A Reader"},
)
session = SessionStore()
session[SESSION_KEY] = reader.pk
session.save()
print(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
"""


def _prepare(var: Path, env: dict[str, str]) -> str:
    """Create the database with the demo content; return a signed-in cookie."""
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-c", SETUP], cwd=ROOT, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode:
        raise SystemExit(f"setting up the demo site failed:\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def _start_server(var: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    log = open(var / "gunicorn.log", "ab")  # noqa: SIM115 - lives with the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "newsletter.wsgi", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"gunicorn did not start; see {var / 'gunicorn.log'}")


def _lighthouse_command() -> list[str]:
    if os.environ.get("LIGHTHOUSE"):
        return shlex.split(os.environ["LIGHTHOUSE"])
    return ["npx", "--yes", f"lighthouse@{VERSION}"]


def score_page(url: str, report: Path, cookie: str | None) -> dict:
    """Run Lighthouse on one page; return its JSON report."""
    command = [
        *_lighthouse_command(), url,
        "--output=json", f"--output-path={report}", "--quiet",
        f"--only-categories={','.join(CATEGORIES)}",
        "--chrome-flags=--headless --no-sandbox --disable-gpu",
        *shlex.split(os.environ.get("LIGHTHOUSE_ARGS", "")),
    ]  # fmt: skip
    if cookie:
        command.append("--extra-headers=" + json.dumps({"Cookie": cookie}))
    chrome = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
    env = {**os.environ, "CHROME_PATH": chrome}
    for _attempt in range(RUNS):
        report.unlink(missing_ok=True)
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        # A run that lost the page's navigation (NO_NAVSTART, NO_FCP: Chromium's
        # trace missed the load) scores nothing; it says nothing of the page.
        # Lighthouse reports it in the JSON, or exits with it on stderr.
        lost = [code for code in RETRIED_ERRORS if code in result.stderr]
        if (result.returncode or not report.exists()) and not lost:
            raise SystemExit(f"lighthouse failed on {url}:\n{result.stderr[-3000:]}")
        if not lost:
            data = json.loads(report.read_text())
            code = data.get("runtimeError", {}).get("code")
            if code not in RETRIED_ERRORS:
                return data
            lost = [code]
        print(f"  {url}: {lost[0]}, scoring again", flush=True)
    raise SystemExit(f"lighthouse lost the navigation of {url} {RUNS} times")


def shortfalls(report: dict) -> list[str]:
    """Return the audits that cost a category points, as 'category: audit (score)'."""
    found = []
    for name in CATEGORIES:
        for ref in report["categories"][name]["auditRefs"]:
            audit = report["audits"][ref["id"]]
            score = audit.get("score")
            if ref["weight"] and score is not None and score < 1:
                found.append(f"{name}: {audit['id']} ({score:.2f}) {audit['title']}")
    return found


def main(argv: list[str]) -> int:
    pages = {name: READER_PAGES[name] for name in argv} if argv else READER_PAGES
    var, port = _var_dir(), _free_port()
    env = _environment(var, port)
    cookie = _prepare(var, env)
    server = _start_server(var, env, port)
    failed = []
    try:
        print(f"Lighthouse {VERSION}, DEBUG off, gunicorn on 127.0.0.1:{port}")
        print(f"{'page':<18} {'perf':>5} {'a11y':>5} {'best':>5} {'seo':>5}  path")
        for name, (path, signed_in) in pages.items():
            url = f"http://127.0.0.1:{port}{path}"
            report = score_page(
                url, var / f"{name}.json", cookie if signed_in else None
            )
            scores = [report["categories"][c]["score"] for c in CATEGORIES]
            shown = [f"{s * 100:>5.0f}" if s is not None else "    -" for s in scores]
            print(f"{name:<18} {' '.join(shown)}  {path}", flush=True)
            if any(s is None or s < 1 for s in scores):
                failed.append(name)
                for line in shortfalls(report):
                    print(f"{'':<18}   {line}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"reports in {var}")
    if failed:
        print(f"below 100: {', '.join(failed)}")
        return 1
    print(f"all {len(pages)} pages score 100 in all four categories")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
